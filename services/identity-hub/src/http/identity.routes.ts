import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  anonymousIdSetCookie,
  HttpError,
  type Router,
  readAnonymousIdCookie,
  readJsonBody,
  sendError,
  sendHttpError,
  sendJson,
} from '@signal/http';
import type { Metrics } from '@signal/telemetry';
import { z } from 'zod';
import type { IdentityHubSettings } from '../config';
import { isIdentityHubError } from '../errors';
import type { IdentityHubLogger, LinkedDomainSource, PipelineRef, PipelineResolver } from '../ports';
import { checkDestination, type DestinationRefusal, withToken } from '../tokens/destination';
import { isLinkedOrigin, type LinkedDomain, parseLinkedDomains, servesAudience } from '../tokens/hosts';
import type { TokenRejection, TokenService } from '../tokens/token-service';
import { cookieDomainFor } from './cookie';
import type { IdentityRateLimits, RateLimitScope, RateVerdict } from './rate-limits';
import { arrivalHost, corsHeaders, header, parseOrigin } from './request';

export interface IdentityRoutesDeps {
  readonly settings: IdentityHubSettings;
  readonly tokens: TokenService;
  readonly pipelines: PipelineResolver;
  readonly linkedDomains: LinkedDomainSource;
  readonly rateLimits: IdentityRateLimits;
  readonly logger: IdentityHubLogger;
  readonly metrics: Metrics;
}

/** The one answer to every refused token: which check failed is logged and counted, never told. */
export const INVALID_TOKEN_BODY = {
  error: { code: 'invalid_token', message: 'the token is invalid or has expired' },
} as const;

const PIPELINE_KEY = /^dk_(live|test)_[A-Za-z0-9]{16,64}$/;
const BODY_LIMIT_BYTES = 8 * 1024;
const CONTENT_TYPES = ['application/json', 'text/plain'] as const;
const ALLOWED_HEADERS = 'Content-Type, X-Pipeline-Key';
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

const tokenRequestSchema = z.object({
  to: z.string().max(4096),
  pipelineKey: z.string().max(128).optional(),
});
const resolveRequestSchema = z.object({ token: z.unknown().optional() });

/**
 * The three public endpoints of the cross-domain flow:
 *
 * - `POST /v1/identity/token {to}` (page on site A, credentials): a fresh token for `to`, read from `_dfid`.
 * - `GET /v1/identity/redirect?to=…&pipelineKey=…`: the same, answered with a 302 to `to?…&_dftk=<token>`.
 * - `POST /v1/identity/resolve {token}` (page on site B): the anonymous id, and `_dfid` set on site B.
 *
 * Each is rate limited per client address first (before any other work) and per pipeline once the pipeline
 * is known (from the key, or from the opened token's claims): 429 with Retry-After (`http/rate-limits.ts`).
 */
export function registerIdentityRoutes(router: Router, deps: IdentityRoutesDeps): void {
  const { settings, tokens, pipelines, linkedDomains, rateLimits, logger, metrics } = deps;

  const issued = metrics.counter('signal_identity_tokens_issued_total', 'Cross-domain tokens issued', [
    'endpoint',
  ]);
  const resolved = metrics.counter('signal_identity_tokens_resolved_total', 'Cross-domain tokens redeemed');
  const rejections = metrics.counter(
    'signal_identity_token_rejections_total',
    'Cross-domain tokens refused at resolve, by reason',
    ['reason'],
  );
  const refusals = metrics.counter(
    'signal_identity_request_refusals_total',
    'Token, redirect (and, when rate limited, resolve) requests refused, by reason',
    ['endpoint', 'reason'],
  );
  const storeFailures = metrics.counter(
    'signal_identity_single_use_unavailable_total',
    'Resolves answered 503 because the single-use store did not answer',
  );

  type Endpoint = 'token' | 'redirect' | 'resolve';

  function refuse(res: ServerResponse, endpoint: Endpoint, reason: string, error: HttpError): void {
    refusals.inc({ endpoint, reason });
    sendHttpError(res, error);
  }

  /**
   * True to go on; false when the request was over a limit and answered 429 with Retry-After and the
   * standard error body (counted as `rate_limited_client` / `rate_limited_pipeline`).
   */
  function within(
    res: ServerResponse,
    endpoint: Endpoint,
    scope: RateLimitScope,
    verdict: RateVerdict,
    headers: Record<string, string> = {},
  ): boolean {
    if (verdict.allowed) return true;
    const who = scope === 'client' ? 'from this address' : 'for this pipeline';
    refuse(
      res,
      endpoint,
      `rate_limited_${scope}`,
      new HttpError('rate_limited', `more than ${verdict.limit} requests per second ${who}, retry shortly`, {
        headers: { ...headers, 'retry-after': String(verdict.retryAfterSeconds) },
      }),
    );
    return false;
  }

  /** The pipeline and its parsed allowlist; `undefined` means an answer was sent. */
  async function pipelineFor(
    res: ServerResponse,
    endpoint: Endpoint,
    key: string | undefined,
  ): Promise<{ pipeline: PipelineRef; domains: LinkedDomain[] } | undefined> {
    if (key === undefined || !PIPELINE_KEY.test(key)) {
      refuse(res, endpoint, 'invalid_key', new HttpError('unauthorized', 'a valid pipeline key is required'));
      return undefined;
    }
    try {
      const pipeline = await pipelines.byKey(key);
      if (pipeline === null) {
        refuse(
          res,
          endpoint,
          'invalid_key',
          new HttpError('unauthorized', 'a valid pipeline key is required'),
        );
        return undefined;
      }
      return {
        pipeline,
        domains: parseLinkedDomains(await linkedDomains.linkedDomains(pipeline.pipelineId)),
      };
    } catch (cause) {
      logger.error({ err: cause, endpoint }, 'pipeline lookup failed');
      refuse(
        res,
        endpoint,
        'directory_unavailable',
        unavailable('pipeline lookup is unavailable, retry shortly'),
      );
      return undefined;
    }
  }

  /**
   * Why the redirect must not put the `_dfid` it was sent into a token for this pipeline, or null.
   *
   * The redirect is a top-level GET, so the browser sends the SameSite=Lax `_dfid` of the data host even when
   * a page of any other site started the navigation, with any pipeline's key. That cookie is the visitor's
   * identity on the sites the arrival host serves, and only a pipeline linking one of them may carry it
   * (`host_not_linked`); otherwise any pipeline (another org's included) could mint a token for the visitor
   * of site A to a domain it lists and redeem it there. Linked domains are each pipeline's own say, so a
   * navigation the browser reports as started by another site (`Sec-Fetch-Site: cross-site`) carries nothing
   * either (`cross_site`): a link on the customer's site to its own data host is same-site. Nor does one no
   * page started (`Sec-Fetch-Site: none`, `no_initiator`): a typed, bookmarked or pasted URL, a link in an
   * email or a chat, a QR code. Datafly.js only ever sends the visitor through from a click on a linked
   * page, so such a navigation is someone else's link, which would otherwise hand the visitor's id to
   * whatever pipeline it names. Browsers that send no Fetch Metadata get the host check alone.
   */
  function identityWithheld(
    req: IncomingMessage,
    arrival: string,
    domains: readonly LinkedDomain[],
  ): 'host_not_linked' | 'cross_site' | 'no_initiator' | null {
    if (!domains.some((d) => servesAudience(arrival, d.host, settings.cookieDomains))) {
      return 'host_not_linked';
    }
    const site = header(req, 'sec-fetch-site')?.toLowerCase();
    if (site === 'cross-site') return 'cross_site';
    return site === 'none' ? 'no_initiator' : null;
  }

  function destinationError(reason: DestinationRefusal, headers: Record<string, string>): HttpError {
    return new HttpError(
      'validation_failed',
      reason === 'missing'
        ? 'to: required'
        : "to: must be an https URL on one of this pipeline's linked domains",
      { headers },
    );
  }

  function preflight(req: IncomingMessage, res: ServerResponse): void {
    // The pipeline is unknown at preflight (browsers send no header values), so this only names methods and
    // headers; the actual request is checked against the pipeline's linked domains and gets no CORS headers
    // when its origin is not one of them.
    const origin = header(req, 'origin');
    res.writeHead(204, {
      ...(origin !== undefined && parseOrigin(origin) !== null ? corsHeaders(origin) : {}),
      'access-control-allow-methods': 'POST, OPTIONS',
      'access-control-allow-headers': ALLOWED_HEADERS,
      'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
    });
    res.end();
  }

  async function issueToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Before any other work (the pipeline lookup is a database query). No CORS headers yet: which origins
    // may read answers depends on the pipeline, unknown at this point.
    if (!within(res, 'token', 'client', await rateLimits.byClient(req, 'token'))) return;
    const body = await readJsonBody(req, {
      limitBytes: BODY_LIMIT_BYTES,
      contentTypes: CONTENT_TYPES,
      schema: tokenRequestSchema,
    });
    if (!body.ok) {
      refuse(res, 'token', 'malformed_body', body.error);
      return;
    }
    const found = await pipelineFor(res, 'token', header(req, 'x-pipeline-key') ?? body.value.pipelineKey);
    if (found === undefined) return;
    // Only pages ask for a token (a credentialed fetch, which always carries Origin). Without one the caller is
    // not a browser, and the `_dfid` it sends is whatever it chose: a token for it would make a visitor who
    // follows the link adopt that id (identity injection).
    const origin = header(req, 'origin');
    const page = origin === undefined ? null : parseOrigin(origin);
    if (page === null || !isLinkedOrigin(page, found.domains)) {
      // No CORS headers: the page must not be able to read even the refusal.
      refuse(
        res,
        'token',
        'origin',
        new HttpError(
          'forbidden',
          origin === undefined
            ? 'an Origin is required: tokens are issued to pages of a linked domain'
            : 'this origin is not a linked domain of the pipeline',
        ),
      );
      return;
    }
    const cors = corsHeaders(page.origin);
    const destination = checkDestination(body.value.to, found.domains);
    if (!destination.ok) {
      refuse(res, 'token', destination.reason, destinationError(destination.reason, cors));
      return;
    }
    const arrival = arrivalHost(req, settings.publicHosts);
    if (arrival === null) {
      refuse(
        res,
        'token',
        'untrusted_host',
        new HttpError('bad_request', 'this host is not served', { headers: cors }),
      );
      return;
    }
    const anonymousId = readAnonymousIdCookie(header(req, 'cookie'));
    if (anonymousId === undefined) {
      refusals.inc({ endpoint: 'token', reason: 'no_identity' });
      sendError(res, 409, 'no_identity', 'no _dfid cookie: there is no identity to carry', cors);
      return;
    }
    // Counted only for a request that would mint, so junk requests with the public key cannot use it up.
    const perPipeline = await rateLimits.byPipeline(found.pipeline.pipelineId, 'token');
    if (!within(res, 'token', 'pipeline', perPipeline, cors)) return;
    const { token, claims } = tokens.issue({
      anonymousId,
      org: found.pipeline.orgId,
      pipeline: found.pipeline.pipelineId,
      from: page.hostname,
      aud: destination.host,
    });
    issued.inc({ endpoint: 'token' });
    sendJson(
      res,
      200,
      { token, url: withToken(destination.url, token), expiresAt: new Date(claims.exp * 1000).toISOString() },
      cors,
    );
  }

  async function redirect(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (!within(res, 'redirect', 'client', await rateLimits.byClient(req, 'redirect'))) return;
    const found = await pipelineFor(res, 'redirect', query.get('pipelineKey') ?? undefined);
    if (found === undefined) return;
    const destination = checkDestination(query.get('to') ?? undefined, found.domains);
    if (!destination.ok) {
      refuse(res, 'redirect', destination.reason, destinationError(destination.reason, {}));
      return;
    }
    const arrival = arrivalHost(req, settings.publicHosts);
    if (arrival === null) {
      refuse(res, 'redirect', 'untrusted_host', new HttpError('bad_request', 'this host is not served'));
      return;
    }
    const anonymousId = readAnonymousIdCookie(header(req, 'cookie'));
    let location = destination.url.href;
    let withheld: string | null =
      anonymousId === undefined ? 'no_identity' : identityWithheld(req, arrival, found.domains);
    // The per-pipeline limit counts only navigations that would carry an identity, and one over it still
    // gets where it was going (without a token): anyone holding the public key could otherwise use the
    // limit up with junk and break every visitor's links to the customer's other sites.
    if (withheld === null && !(await rateLimits.byPipeline(found.pipeline.pipelineId, 'redirect')).allowed) {
      withheld = 'rate_limited_pipeline';
    }
    if (anonymousId === undefined || withheld !== null) {
      // Nothing to carry, or not this pipeline's to carry: the visitor still gets where the link pointed
      // (an allowlisted destination), without a token.
      refusals.inc({ endpoint: 'redirect', reason: withheld ?? 'no_identity' });
    } else {
      const { token } = tokens.issue({
        anonymousId,
        org: found.pipeline.orgId,
        pipeline: found.pipeline.pipelineId,
        from: arrival,
        aud: destination.host,
      });
      issued.inc({ endpoint: 'redirect' });
      location = withToken(destination.url, token);
    }
    res.writeHead(302, { location, 'cache-control': 'no-store', 'content-length': '0' });
    res.end();
  }

  async function resolve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!within(res, 'resolve', 'client', await rateLimits.byClient(req, 'resolve'))) return;
    const body = await readJsonBody(req, {
      limitBytes: BODY_LIMIT_BYTES,
      contentTypes: CONTENT_TYPES,
      schema: resolveRequestSchema,
    });
    if (!body.ok) {
      sendHttpError(res, body.error);
      return;
    }
    const origin = header(req, 'origin');
    let cors: Record<string, string> = {};
    const reject = (reason: TokenRejection, extra: object = {}): void => {
      rejections.inc({ reason });
      logger.warn({ reason, ...extra }, 'cross-domain token refused');
      sendJson(res, 400, INVALID_TOKEN_BODY, cors);
    };
    const token = body.value.token;
    if (typeof token !== 'string') return reject('malformed');
    const arrival = arrivalHost(req, settings.publicHosts);
    if (arrival === null) return reject('untrusted_host');
    // The audience asked for: the page's host when a browser says which page is asking (Origin cannot be
    // set by scripts), else the host the request arrived on.
    const page = origin === undefined ? null : parseOrigin(origin);
    if (origin !== undefined && page === null) return reject('audience_not_served');
    const audience = page?.hostname ?? arrival;
    if (!servesAudience(arrival, audience, settings.cookieDomains)) return reject('audience_not_served');

    const opened = tokens.open(token, audience);
    if (!opened.ok) {
      return reject(opened.reason, opened.cryptoCode === undefined ? {} : { cryptoCode: opened.cryptoCode });
    }
    const { claims } = opened;
    let domains: LinkedDomain[];
    try {
      domains = parseLinkedDomains(await linkedDomains.linkedDomains(claims.pipeline));
    } catch (cause) {
      logger.error({ err: cause }, 'linked domain lookup failed');
      sendHttpError(res, unavailable('pipeline lookup is unavailable, retry shortly'));
      return;
    }
    const linked = page === null ? domains.some((d) => d.host === audience) : isLinkedOrigin(page, domains);
    if (!linked) return reject('audience_not_linked', { pipeline: claims.pipeline });
    // The page's own pipeline key, when its Datafly.js sends one: the token must be of that pipeline's org.
    // Linked domains are not verified, so without this an org listing another org's site could plant a
    // token (for an id it chose) in a link to that site and set the visitor's `_dfid` there.
    const resolverKey = header(req, 'x-pipeline-key');
    if (resolverKey !== undefined) {
      let resolver: PipelineRef | null = null;
      try {
        if (PIPELINE_KEY.test(resolverKey)) resolver = await pipelines.byKey(resolverKey);
      } catch (cause) {
        logger.error({ err: cause, endpoint: 'resolve' }, 'pipeline lookup failed');
        sendHttpError(res, unavailable('pipeline lookup is unavailable, retry shortly'));
        return;
      }
      if (resolver === null || resolver.orgId !== claims.org) {
        return reject('pipeline_mismatch', { pipeline: claims.pipeline });
      }
    }
    if (origin !== undefined) cors = corsHeaders(origin);
    // Before the consume, so a limited request does not use the token up: the page may retry it. The
    // pipeline comes from the opened (authenticated) claims, so a forged token cannot spend another's budget.
    const perPipeline = await rateLimits.byPipeline(claims.pipeline, 'resolve');
    if (!within(res, 'resolve', 'pipeline', perPipeline, cors)) return;

    let first: boolean;
    try {
      first = await tokens.consume(claims);
    } catch (cause) {
      // Fail closed: without the single-use check a captured token could be replayed at will.
      storeFailures.inc();
      logger.error(
        { err: cause, code: isIdentityHubError(cause) ? cause.code : undefined },
        'single-use store unavailable; token refused',
      );
      sendHttpError(res, unavailable('token redemption is unavailable, retry shortly', cors));
      return;
    }
    if (!first) return reject('replayed', { pipeline: claims.pipeline });

    resolved.inc();
    sendJson(
      res,
      200,
      { anonymousId: claims.anonymous_id },
      {
        ...cors,
        'set-cookie': anonymousIdSetCookie(
          claims.anonymous_id,
          cookieDomainFor(arrival, settings.cookieDomains),
        ),
      },
    );
  }

  router.on('OPTIONS', '/v1/identity/token', preflight);
  router.on('POST', '/v1/identity/token', issueToken);
  router.on('GET', '/v1/identity/redirect', (req, res, ctx) => redirect(req, res, ctx.query));
  router.on('OPTIONS', '/v1/identity/resolve', preflight);
  router.on('POST', '/v1/identity/resolve', resolve);
}

function unavailable(message: string, headers: Record<string, string> = {}): HttpError {
  return new HttpError('unavailable', message, { headers: { ...headers, 'retry-after': '1' } });
}
