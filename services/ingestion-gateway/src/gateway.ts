import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Bus, type OutgoingMessage, oversize } from '@signal/bus';
import { type Cache, isCacheError, RateLimiter } from '@signal/cache';
import {
  type CanonicalEvent,
  type Enrichment,
  type EventInput,
  type Provenance,
  parseEventInput,
  stampEvent,
  topics,
} from '@signal/events';
import {
  anonymousIdSetCookie,
  BodyBudget,
  clientBucket,
  err,
  HttpError,
  isValidAnonymousId,
  newAnonymousId,
  ok,
  parseJsonBytes,
  type Result,
  type Router,
  readAnonymousIdCookie,
  readJsonBodyBytes,
  sendError,
  sendHttpError,
  sendJson,
} from '@signal/http';
import type { Metrics } from '@signal/telemetry';
import type { z } from 'zod';
import { HMAC_MAX_SKEW_MS, verifyHmac } from './auth/hmac';
import { extractClickIds } from './collect/click-ids';
import { isOriginAllowed } from './collect/origin';
import { clientIp, trustedProxies } from './http/client-ip';
import {
  PIPELINE_KEY_PATTERN,
  type PipelineAuth,
  type PipelineDirectory,
} from './pipelines/pipeline-directory';

export interface GatewayConfig {
  readonly namespace: string;
  readonly cookieDomain: string | null;
  readonly corsOrigins: readonly string[];
  readonly maxBatchSize: number;
  readonly maxPayloadSize: number;
  readonly rateLimitRps: number;
  /** Reverse proxies in front of the gateway whose X-Forwarded-For entries are trusted (0 = none). */
  readonly trustedProxyHops: number;
  /** `TRUSTED_PROXY_CIDRS`: those proxies' addresses; a hop from elsewhere is the client. Absent: not checked. */
  readonly trustedProxyCidrs?: readonly string[];
  /**
   * `MAX_BUFFERED_BODY_BYTES`: request bodies held in memory at once, all connections together (503 with
   * Retry-After above; `BodyBudget`). Default `DEFAULT_MAX_BUFFERED_BODY_BYTES`, never below one body's limit.
   */
  readonly maxBufferedBodyBytes?: number;
}

export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 32 * 1024 * 1024;

export interface GatewayLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly directory: PipelineDirectory;
  readonly bus: Pick<Bus, 'publish' | 'maxMessageBytes'>;
  readonly cache: Pick<Cache, 'setIfAbsent' | 'get' | 'compareAndSet' | 'delete' | 'incrementWindow'>;
  /** Datafly.js, built once at start-up. */
  readonly sdk: { readonly code: string; readonly integrity: string };
  readonly logger: GatewayLogger;
  readonly metrics: Metrics;
  readonly now?: () => number;
}

/** The endpoints of the collection API, as metric label values. */
const BROWSER_ENDPOINTS = { t: 'track', p: 'page', i: 'identify', g: 'group' } as const;
type BrowserPath = keyof typeof BROWSER_ENDPOINTS;
type Endpoint = (typeof BROWSER_ENDPOINTS)[BrowserPath] | 'batch' | 'events' | 'pixel';

const BODY_CONTENT_TYPES = ['application/json', 'text/plain'] as const; // text/plain: sendBeacon bodies
const ALLOWED_HEADERS = 'Content-Type, X-Pipeline-Key, X-Signature, X-Timestamp';
const PREFLIGHT_MAX_AGE_SECONDS = 7200;
/** A signature is remembered a little longer than it can be valid, so a replay is refused for its whole life. */
const SIGNATURE_MEMORY_MS = 2 * HMAC_MAX_SKEW_MS + 60_000;
/**
 * Lookups of unknown keys (the database found none) per client address and second. Real senders use keys
 * that exist; a client that has tried this many made-up keys within a second is refused (429) for the rest
 * of it, before the database is asked again. Lookups that find a pipeline never count: the first burst of
 * a busy site's visitors, all asking for the same key before it is cached, is never refused.
 */
const UNKNOWN_KEY_LOOKUPS_PER_CLIENT = 20;
const UNKNOWN_KEY_WINDOW_MS = 1000;
/**
 * A signature's claim (`hmac-seen:`) holds `pending:<ms>` from the moment its request is accepted; once the
 * bus took it, a second key (`hmac-done:`) says so. Both are written with set-if-absent, which the embedded
 * cache never evicts before they expire. A pending claim older than this, with no done marker, was left by
 * a process that died mid-publish: a retry may take it over.
 */
const IN_FLIGHT_MS = 30_000;
const seenKeyOf = (signatureHex: string) => `hmac-seen:${signatureHex}`;
const doneKeyOf = (signatureHex: string) => `hmac-done:${signatureHex}`;
/** Transparent 1×1 GIF. */
const PIXEL_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

type Rejection = { readonly index: number; readonly code: string; readonly message: string };

/** What one request is allowed to put on the bus, once authenticated. */
interface Caller {
  readonly pipeline: PipelineAuth;
  readonly provenance: Provenance;
}

/**
 * The Ingestion Gateway's HTTP surface. Every request is authenticated (pipeline key, HMAC or pixel key),
 * bounded, validated and stamped; a 2xx is sent only after the bus acknowledged a durable write, so an
 * accepted event is never lost. Errors are `{"error":{"code","message"}}` and never echo secrets.
 */
export function createGateway(deps: GatewayDeps) {
  const { config, directory, bus, cache, logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const rawTopic = topics.rawEvents(config.namespace);
  const proxies = trustedProxies(config.trustedProxyCidrs);
  // One client address (an IPv6 client by its /64) may hold a quarter of it: a sender trickling slow bodies
  // cannot take it all. Behind a proxy that TRUSTED_PROXY_HOPS does not name, every client is the proxy and
  // shares that quarter: set it.
  const bodyBudgetBytes = Math.max(
    config.maxPayloadSize,
    config.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES,
  );
  const bodies = new BodyBudget(
    bodyBudgetBytes,
    Math.max(config.maxPayloadSize, Math.floor(bodyBudgetBytes / 4)),
  );

  const received = metrics.counter('signal_events_received_total', 'Events accepted onto the bus', [
    'endpoint',
  ]);
  const rejected = metrics.counter('signal_events_rejected_total', 'Events or requests refused', ['reason']);
  const publishSeconds = metrics.histogram(
    'signal_gateway_publish_duration_seconds',
    'Time from request to durable bus acknowledgement',
    [],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  const cacheErrors = metrics.counter(
    'signal_gateway_cache_errors_total',
    'Cache failures by what the gateway did about them',
    ['operation'],
  );

  const limiters = new Map<number, RateLimiter>();
  // Lookups of made-up keys are limited per client address: the key format is public, and each new one would
  // otherwise cost the database a query. Counted when a lookup finds nothing, checked before the next one.
  const unknownKeysOf = (req: IncomingMessage): string =>
    `gateway-unknown-keys:${clientBucket(clientIp(req, config.trustedProxyHops, proxies))}`;

  async function unknownKeysExceeded(counter: string): Promise<boolean> {
    try {
      return Number((await cache.get(counter)) ?? 0) >= UNKNOWN_KEY_LOOKUPS_PER_CLIENT;
    } catch {
      // Fail open like the pipeline limit: the counter store being down must not refuse real senders.
      cacheErrors.inc({ operation: 'rate_limit_fail_open' });
      return false;
    }
  }

  async function countUnknownKey(counter: string): Promise<void> {
    try {
      await cache.incrementWindow(counter, UNKNOWN_KEY_WINDOW_MS);
    } catch {
      cacheErrors.inc({ operation: 'rate_limit_fail_open' });
    }
  }

  function limiterFor(limit: number): RateLimiter {
    let limiter = limiters.get(limit);
    if (!limiter) {
      limiter = new RateLimiter(cache, { name: `gateway-${limit}`, limit, windowMs: 1000 });
      limiters.set(limit, limiter);
    }
    return limiter;
  }

  function reject(
    res: ServerResponse,
    error: HttpError,
    reason: string,
    cors?: Record<string, string>,
  ): void {
    rejected.inc({ reason });
    sendHttpError(res, cors ? withHeaders(error, cors) : error);
  }

  function corsHeaders(origin: string | undefined): Record<string, string> {
    if (!origin) return {};
    return {
      'access-control-allow-origin': origin,
      'access-control-allow-credentials': 'true',
      vary: 'Origin',
    };
  }

  /**
   * Resolves and checks the pipeline key; `undefined` means a response was sent. `signed`: the caller will
   * verify an HMAC over the body. A server pipeline's key alone authenticates nothing — it is a name, sent
   * next to every signed request — so it is refused on the key-only routes (browser endpoints, the pixel,
   * an unsigned /v1/batch).
   */
  async function authenticateKey(
    req: IncomingMessage,
    res: ServerResponse,
    key: string | undefined,
    origin: string | undefined,
    signed: boolean,
    cors: Record<string, string>,
  ): Promise<PipelineAuth | undefined> {
    if (!key) {
      reject(
        res,
        new HttpError('unauthorized', 'a pipeline key is required (X-Pipeline-Key)'),
        'missing_key',
        cors,
      );
      return undefined;
    }
    if (!PIPELINE_KEY_PATTERN.test(key)) {
      reject(res, new HttpError('unauthorized', 'the pipeline key is not valid'), 'invalid_key', cors);
      return undefined;
    }
    const counter = directory.knows?.(key) === false ? unknownKeysOf(req) : undefined;
    if (counter !== undefined && (await unknownKeysExceeded(counter))) {
      reject(
        res,
        new HttpError('rate_limited', 'too many lookups of unknown pipeline keys from this address', {
          headers: { 'retry-after': '1' },
        }),
        'key_lookups_limited',
        cors,
      );
      return undefined;
    }
    let pipeline: PipelineAuth | null;
    try {
      pipeline = await directory.findPipelineByKey(key);
    } catch (cause) {
      logger.error({ err: cause }, 'pipeline lookup failed');
      reject(
        res,
        unavailable('pipeline lookup is unavailable, retry shortly'),
        'directory_unavailable',
        cors,
      );
      return undefined;
    }
    if (pipeline === null && counter !== undefined) await countUnknownKey(counter);
    if (!pipeline?.enabled) {
      reject(res, new HttpError('unauthorized', 'the pipeline key is not valid'), 'invalid_key', cors);
      return undefined;
    }
    if (!signed && pipeline.type === 'server') {
      reject(
        res,
        new HttpError(
          'unauthorized',
          'this pipeline accepts only signed requests (X-Signature and X-Timestamp, to /v1/events or /v1/batch)',
        ),
        'unsigned_server_key',
        cors,
      );
      return undefined;
    }
    if (origin !== undefined && !isOriginAllowed(origin, pipeline.allowedDomains, config.corsOrigins)) {
      reject(
        res,
        new HttpError('forbidden', 'this origin may not send events to this pipeline'),
        'origin',
        cors,
      );
      return undefined;
    }
    return pipeline;
  }

  async function withinRateLimit(res: ServerResponse, pipeline: PipelineAuth, cors: Record<string, string>) {
    const limit = pipeline.rateLimitRps ?? config.rateLimitRps;
    try {
      const decision = await limiterFor(limit).check(pipeline.pipelineId);
      if (decision.allowed) return true;
      const retryAfter = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
      reject(
        res,
        new HttpError('rate_limited', `more than ${limit} requests per second for this pipeline`, {
          headers: { 'retry-after': retryAfter },
        }),
        'rate_limited',
        cors,
      );
      return false;
    } catch (cause) {
      // Fail open: refusing events because the rate-limit counter is unreachable would lose data, and the
      // bus is the component that must not be overrun (it has its own back-pressure).
      cacheErrors.inc({ operation: 'rate_limit_fail_open' });
      logger.warn({ err: cause }, 'rate limiter unavailable; admitting the request');
      return true;
    }
  }

  /**
   * Validates, stamps and publishes; answers 202 (some or all accepted) or an error. True when the bus
   * acknowledged the events.
   */
  async function accept(
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: Endpoint,
    caller: Caller,
    inputs: readonly unknown[],
    extra: {
      cors: Record<string, string>;
      sentAt?: string | undefined;
      forcedType?: EventInput['type'];
      /** A signed request's signature: its events' default messageIds derive from it (see `signedMessageId`). */
      signatureHex?: string;
      /** Neither read the visitor's `_dfid` nor set it (a pixel opened as a page: see `pixel`). */
      leaveCookie?: boolean;
    },
  ): Promise<boolean> {
    const receivedAtMs = now();
    const receivedAt = new Date(receivedAtMs).toISOString();
    const browser = caller.provenance !== 'hmac';
    const useCookie = browser && extra.leaveCookie !== true;
    const cookieId = useCookie ? readAnonymousIdCookie(req.headers.cookie) : undefined;
    const gpc = req.headers['sec-gpc'] === '1';
    const ip = browser ? clientIp(req, config.trustedProxyHops, proxies) : undefined;
    const userAgent = browser ? headerValue(req.headers['user-agent'])?.slice(0, 1024) : undefined;
    const skewMs = clockSkew(extra.sentAt, receivedAtMs);

    const events: CanonicalEvent[] = [];
    const messages: OutgoingMessage[] = [];
    const rejections: Rejection[] = [];
    let anonymousId = cookieId;

    inputs.forEach((raw, index) => {
      const candidate = extra.forcedType && isRecord(raw) ? { ...raw, type: extra.forcedType } : raw;
      const parsed = parseEventInput(candidate);
      if (!parsed.success) {
        rejections.push({ index, code: 'validation_failed', message: firstIssue(parsed.error) });
        return;
      }
      const input = parsed.data;
      if (browser && anonymousId === undefined) {
        anonymousId = isValidAnonymousId(input.anonymousId) ? input.anonymousId : newAnonymousId();
      }
      const stamped = stampEvent(
        input,
        {
          org: caller.pipeline.orgId,
          pipelineId: caller.pipeline.pipelineId,
          provenance: caller.provenance,
          receivedAt,
          messageId:
            extra.signatureHex === undefined ? randomUUID() : signedMessageId(extra.signatureHex, index),
          ...(anonymousId !== undefined ? { anonymousId } : {}),
          ...(ip !== undefined ? { ip } : {}),
          ...(userAgent !== undefined ? { userAgent } : {}),
        },
        enrichment(input, { gpc, skewMs, receivedAtMs }),
      );
      if (!stamped.success) {
        rejections.push({ index, code: 'validation_failed', message: firstIssue(stamped.error) });
        return;
      }
      const message = { key: rawTopic.key(stamped.data), value: JSON.stringify(stamped.data) };
      // What the bus cannot carry is refused here, as the sender's error: accepted, it would stop the
      // processor on it (a publish holding it fails the same way every time). Room is kept for its dead letter.
      const over = oversize(message, bus.maxMessageBytes);
      if (over !== undefined) {
        rejections.push({
          index,
          code: 'payload_too_large',
          message: `the event is ${over.bytes} bytes once stamped; the event bus carries at most ${over.room}`,
        });
        return;
      }
      events.push(stamped.data);
      messages.push(message);
    });

    for (const r of rejections) {
      rejected.inc({ reason: r.code === 'payload_too_large' ? 'payload_too_large' : 'validation' });
    }
    if (events.length === 0) {
      const first = rejections[0];
      const message = first
        ? `${inputs.length > 1 ? `event ${first.index}: ` : ''}${first.message}`
        : 'no events';
      const code = first?.code === 'payload_too_large' ? 'payload_too_large' : 'validation_failed';
      sendHttpError(res, withHeaders(new HttpError(code, message), extra.cors));
      return false;
    }

    const stop = publishSeconds.startTimer();
    try {
      // Durable before 2xx: publish resolves after the bus committed the write (PostgreSQL COMMIT of the
      // group-commit segment, or Kafka acks=all). Answering earlier would let a crash lose accepted events.
      // One request's events: a visitor's batch may be compressed inside its sealed segment (ADR 0011).
      await bus.publish(rawTopic.name, messages, { compressible: true });
    } catch (cause) {
      logger.error({ err: cause, count: events.length }, 'publishing to raw-events failed');
      reject(res, unavailable('the event bus is unavailable, retry shortly'), 'bus_unavailable', extra.cors);
      return false;
    } finally {
      stop();
    }
    received.inc({ endpoint }, events.length);

    const headers: Record<string, string> = { ...extra.cors };
    if (useCookie && anonymousId !== undefined) {
      headers['set-cookie'] = anonymousIdSetCookie(anonymousId, config.cookieDomain);
    }
    if (endpoint === 'pixel') {
      res.writeHead(200, {
        ...headers,
        'content-type': 'image/gif',
        'content-length': String(PIXEL_GIF.length),
        'cache-control': 'no-store',
      });
      res.end(PIXEL_GIF);
      return true;
    }
    sendJson(
      res,
      202,
      { accepted: events.length, messageIds: events.map((e) => e.messageId), rejected: rejections },
      headers,
    );
    return true;
  }

  async function readBody(req: IncomingMessage, res: ServerResponse, cors: Record<string, string>) {
    const bytes = await readJsonBodyBytes(req, {
      limitBytes: config.maxPayloadSize,
      contentTypes: BODY_CONTENT_TYPES,
      budget: {
        budget: bodies,
        holder: clientBucket(clientIp(req, config.trustedProxyHops, proxies)),
        until: res,
      },
    });
    if (!bytes.ok) {
      reject(res, withHeaders(bytes.error, cors), bodyReason(bytes.error));
      return undefined;
    }
    return bytes.value;
  }

  function parseBody(res: ServerResponse, bytes: Buffer, cors: Record<string, string>): unknown {
    const parsed = parseJsonBytes(bytes, {});
    if (!parsed.ok) {
      reject(res, withHeaders(parsed.error, cors), bodyReason(parsed.error));
      return undefined;
    }
    if (!isRecord(parsed.value)) {
      reject(
        res,
        new HttpError('validation_failed', 'the request body must be a JSON object'),
        'validation',
        cors,
      );
      return undefined;
    }
    return parsed.value;
  }

  /**
   * Browser endpoints: pipeline key in X-Pipeline-Key or the body's `pipelineKey` (sendBeacon cannot set
   * headers). A key in the header is checked, and the pipeline's rate limit taken, before the body is read:
   * a refused request then holds no body in memory (`bodies`), so a flood with bad keys cannot crowd out
   * senders with good ones.
   */
  async function browserRequest(
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: Endpoint,
    type?: EventInput['type'],
  ) {
    const origin = headerValue(req.headers.origin);
    const provisionalCors = corsHeaders(origin);
    const admit = async (key: string | undefined): Promise<PipelineAuth | undefined> => {
      const found = await authenticateKey(req, res, key, origin, false, provisionalCors);
      return found && (await withinRateLimit(res, found, provisionalCors)) ? found : undefined;
    };
    const headerKey = headerValue(req.headers['x-pipeline-key']);
    let pipeline = headerKey === undefined ? undefined : await admit(headerKey);
    if (headerKey !== undefined && pipeline === undefined) return;
    const bytes = await readBody(req, res, provisionalCors);
    if (!bytes) return;
    const body = parseBody(res, bytes, provisionalCors) as Record<string, unknown> | undefined;
    if (!body) return;
    pipeline ??= await admit(stringField(body, 'pipelineKey'));
    if (!pipeline) return;
    const caller: Caller = { pipeline, provenance: 'pipeline_key' };
    if (endpoint === 'batch') {
      const batch = batchOf(res, body, provisionalCors);
      if (!batch) return;
      await accept(req, res, 'batch', caller, batch, {
        cors: provisionalCors,
        sentAt: stringField(body, 'sentAt'),
      });
      return;
    }
    await accept(req, res, endpoint, caller, [body], {
      cors: provisionalCors,
      ...(type ? { forcedType: type } : {}),
    });
  }

  function batchOf(res: ServerResponse, body: Record<string, unknown>, cors: Record<string, string>) {
    const batch = body.batch;
    if (!Array.isArray(batch) || batch.length === 0) {
      reject(
        res,
        new HttpError('validation_failed', 'batch: must be a non-empty array of events'),
        'validation',
        cors,
      );
      return undefined;
    }
    if (batch.length > config.maxBatchSize) {
      reject(
        res,
        new HttpError('payload_too_large', `batch: at most ${config.maxBatchSize} events per request`),
        'batch_too_large',
        cors,
      );
      return undefined;
    }
    return batch as unknown[];
  }

  /** Server sources: pipeline key in X-Pipeline-Key plus an HMAC over the raw body. */
  async function serverRequest(req: IncomingMessage, res: ServerResponse, endpoint: 'events' | 'batch') {
    // The key (always a header here) is checked before the body is read, as on the browser endpoints.
    const key = headerValue(req.headers['x-pipeline-key']);
    const pipeline = await authenticateKey(req, res, key, undefined, true, {});
    if (!pipeline) return;
    const bytes = await readBody(req, res, {});
    if (!bytes) return;
    const verdict = verifyHmac({
      signature: headerValue(req.headers['x-signature']),
      timestamp: headerValue(req.headers['x-timestamp']),
      rawBody: bytes,
      secrets: pipeline.hmacSecrets,
      nowMs: now(),
    });
    if (!verdict.ok) {
      const message =
        verdict.reason === 'timestamp_skew'
          ? 'X-Timestamp is more than 5 minutes from the server clock'
          : 'the request signature is missing or invalid';
      reject(res, new HttpError('unauthorized', message), `hmac_${verdict.reason}`);
      return;
    }
    // The signature is claimed before anything else can refuse the request, so a replay is told 409 at once
    // and costs the pipeline nothing (a replay loop must not spend the sender's rate limit). The claim is
    // given back when nothing was published: a sender retrying after a 429 or 503 (both invite a retry)
    // must not be refused as a replay of a request that put nothing on the bus. While the first copy is
    // still being published the claim is pending, and a retry (a sender that timed out waiting) gets 503,
    // not 409: a 409 is final, and if that publish then failed the event would be lost.
    const signature = verdict.signatureHex;
    let claimed: 'claimed' | 'in_flight' | 'replay';
    try {
      claimed = await claimSignature(signature);
    } catch (cause) {
      // Fail closed: without the replay store a captured request could be replayed at will.
      cacheErrors.inc({ operation: 'replay_check_fail_closed' });
      logger.error(
        { err: cause, code: isCacheError(cause) ? cause.code : undefined },
        'replay check unavailable',
      );
      reject(res, unavailable('replay protection is unavailable, retry shortly'), 'replay_store_unavailable');
      return;
    }
    if (claimed === 'replay') {
      reject(res, new HttpError('conflict', 'this signature was already used (replay)'), 'hmac_replay');
      return;
    }
    if (claimed === 'in_flight') {
      reject(
        res,
        unavailable('this signed request is still being accepted; retry shortly'),
        'hmac_in_flight',
      );
      return;
    }
    let published = false;
    try {
      published = await acceptSigned(req, res, endpoint, pipeline, bytes, verdict.signatureHex);
    } finally {
      if (published) await markSignatureDone(signature);
      else await releaseSignature(signature);
    }
  }

  /**
   * Claims a signature for this request: `claimed` (new, or a pending claim abandoned for IN_FLIGHT_MS by a
   * process that died mid-publish), `in_flight` (another copy is being accepted right now) or `replay` (the
   * bus already took it). Cache failures throw.
   */
  async function claimSignature(signature: string): Promise<'claimed' | 'in_flight' | 'replay'> {
    const seenKey = seenKeyOf(signature);
    const claim = `pending:${now()}`;
    if (await cache.setIfAbsent(seenKey, claim, SIGNATURE_MEMORY_MS)) return 'claimed';
    if ((await cache.get(doneKeyOf(signature))) !== null) return 'replay';
    const held = await cache.get(seenKey);
    if (held === null) return 'in_flight'; // released or expired this instant: the sender's retry will know
    if (!held.startsWith('pending:')) return 'replay';
    const since = Number(held.slice('pending:'.length));
    if (Number.isFinite(since) && now() - since < IN_FLIGHT_MS) return 'in_flight';
    return (await cache.compareAndSet(seenKey, held, claim, SIGNATURE_MEMORY_MS)) ? 'claimed' : 'in_flight';
  }

  /** The bus took the request: from now on a copy of it is a replay. */
  async function markSignatureDone(signature: string): Promise<void> {
    try {
      await cache.setIfAbsent(doneKeyOf(signature), '1', SIGNATURE_MEMORY_MS);
    } catch (cause) {
      // Still pending: a copy gets 503 until IN_FLIGHT_MS, then is accepted again with the same message ids
      // (derived from the signature), which consumers deduplicate.
      cacheErrors.inc({ operation: 'replay_mark_failed' });
      logger.warn({ err: cause }, 'could not mark a published signature as used');
    }
  }

  /** A signed request past its replay check: rate limit, body, events. True when the bus took them. */
  async function acceptSigned(
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: 'events' | 'batch',
    pipeline: PipelineAuth,
    bytes: Buffer,
    signatureHex: string,
  ): Promise<boolean> {
    if (!(await withinRateLimit(res, pipeline, {}))) return false;
    const body = parseBody(res, bytes, {}) as Record<string, unknown> | undefined;
    if (!body) return false;
    const inputs = endpoint === 'batch' ? batchOf(res, body, {}) : [body];
    if (!inputs) return false;
    return accept(req, res, endpoint, { pipeline, provenance: 'hmac' }, inputs, { cors: {}, signatureHex });
  }

  async function releaseSignature(signature: string): Promise<void> {
    try {
      await cache.delete(seenKeyOf(signature));
    } catch (cause) {
      // The sender's retry will be refused as a replay until the claim expires; say so, it cannot be undone.
      cacheErrors.inc({ operation: 'replay_release_failed' });
      logger.warn({ err: cause }, 'could not release the signature of an unpublished request');
    }
  }

  function preflight(req: IncomingMessage, res: ServerResponse): void {
    const origin = headerValue(req.headers.origin);
    // The pipeline is unknown at preflight (browsers send no custom header values), so the answer only says
    // which methods and headers may be used; the actual request is checked against the pipeline's allowlist
    // and gets no CORS headers when its origin is not on it.
    res.writeHead(204, {
      ...corsHeaders(origin),
      'access-control-allow-methods': 'POST, OPTIONS',
      'access-control-allow-headers': ALLOWED_HEADERS,
      'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
    });
    res.end();
  }

  /** The pixel's checks, short of publishing; `undefined` means a response was sent. */
  async function pixelRequest(
    req: IncomingMessage,
    res: ServerResponse,
    type: string,
    query: URLSearchParams,
  ) {
    const eventType = PIXEL_TYPES[type];
    if (!eventType) {
      reject(
        res,
        new HttpError('not_found', 'pixel types are track, page, identify and group'),
        'validation',
      );
      return undefined;
    }
    const pipeline = await authenticateKey(
      req,
      res,
      query.get('pipelineKey') ?? undefined,
      undefined,
      false,
      {},
    );
    if (!pipeline) return undefined;
    return { eventType, pipeline };
  }

  async function pixel(req: IncomingMessage, res: ServerResponse, type: string, query: URLSearchParams) {
    const checked = await pixelRequest(req, res, type, query);
    if (!checked) return;
    const { eventType, pipeline } = checked;
    if (!(await withinRateLimit(res, pipeline, {}))) return;
    const input = pixelEvent(eventType, query, headerValue(req.headers.referer));
    if (!input.ok) {
      reject(res, input.error, input.error.code === 'validation_failed' ? 'validation' : 'malformed_body');
      return;
    }
    // A pixel is an image. Opened as a page instead (a link someone sent: the browser reports a navigation),
    // it is the one request another site can make carry the visitor's SameSite=Lax `_dfid` and set it: its
    // query could then plant an id of the sender's choosing (`anonymousId`) or tie the visitor's id to the
    // sender's account (`userId`). Such a request is counted, but the visitor's cookie is neither read nor
    // set. (A cross-site image carries no Lax cookie and cannot set one.)
    const navigation =
      headerValue(req.headers['sec-fetch-mode']) === 'navigate' ||
      headerValue(req.headers['sec-fetch-dest']) === 'document';
    await accept(req, res, 'pixel', { pipeline, provenance: 'pixel' }, [input.value], {
      cors: {},
      ...(navigation ? { leaveCookie: true } : {}),
    });
  }

  /**
   * HEAD is safe by definition: link scanners and mail proxies send it to probe a pixel, and it must not
   * count as an open. Same checks and headers as GET, nothing published, no cookie.
   */
  async function pixelHead(req: IncomingMessage, res: ServerResponse, type: string, query: URLSearchParams) {
    if (!(await pixelRequest(req, res, type, query))) return;
    res.writeHead(200, {
      'content-type': 'image/gif',
      'content-length': String(PIXEL_GIF.length),
      'cache-control': 'no-store',
    });
    res.end();
  }

  function serveSdk(req: IncomingMessage, res: ServerResponse): void {
    const etag = `"${deps.sdk.integrity}"`;
    const headers = {
      'content-type': 'application/javascript; charset=utf-8',
      'cache-control': 'public, max-age=300, stale-while-revalidate=86400',
      etag,
      'x-content-type-options': 'nosniff',
      'cross-origin-resource-policy': 'cross-origin',
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(deps.sdk.code)) });
    res.end(req.method === 'HEAD' ? undefined : deps.sdk.code);
  }

  return {
    register(router: Router): void {
      for (const [path, type] of Object.entries(BROWSER_ENDPOINTS) as [BrowserPath, Endpoint][]) {
        const eventType = type as EventInput['type'];
        router.on('OPTIONS', `/v1/${path}`, preflight);
        router.on('POST', `/v1/${path}`, (req, res) => browserRequest(req, res, type, eventType));
      }
      router.on('OPTIONS', '/v1/batch', preflight);
      router.on('POST', '/v1/batch', (req, res) =>
        req.headers['x-signature'] !== undefined
          ? serverRequest(req, res, 'batch')
          : browserRequest(req, res, 'batch'),
      );
      router.on('POST', '/v1/events', (req, res) => serverRequest(req, res, 'events'));
      // HEAD first: a GET route answers HEAD too unless HEAD is routed already.
      router.on('HEAD', '/v1/pixel/:type', (req, res, ctx) =>
        pixelHead(req, res, ctx.params.type ?? '', ctx.query),
      );
      router.on('GET', '/v1/pixel/:type', (req, res, ctx) =>
        pixel(req, res, ctx.params.type ?? '', ctx.query),
      );
      router.on('GET', '/d.js', serveSdk);
    },
  };
}

const PIXEL_TYPES: Readonly<Record<string, EventInput['type']>> = {
  t: 'track',
  track: 'track',
  p: 'page',
  page: 'page',
  i: 'identify',
  identify: 'identify',
  g: 'group',
  group: 'group',
};

/**
 * The pixel's query parameters as an event input (validated by the same schema as every other event).
 * `properties` is JSON read with the body's checks: depth, `__proto__`/`constructor.prototype` keys.
 */
function pixelEvent(
  type: EventInput['type'],
  query: URLSearchParams,
  referer: string | undefined,
): Result<Record<string, unknown>, HttpError> {
  let properties: unknown;
  const rawProps = query.get('properties');
  if (rawProps !== null) {
    const parsed = parseJsonBytes(Buffer.from(rawProps, 'utf8'), {});
    if (!parsed.ok) {
      return err(new HttpError(parsed.error.code, `properties: ${parsed.error.message}`));
    }
    if (!isRecord(parsed.value)) {
      return err(new HttpError('validation_failed', 'properties: must be a JSON object'));
    }
    properties = parsed.value;
  }
  const url = query.get('url') ?? referer;
  return ok(
    dropUndefinedFields({
      type,
      event: query.get('event') ?? undefined,
      userId: query.get('userId') ?? undefined,
      anonymousId: query.get('anonymousId') ?? undefined,
      messageId: query.get('messageId') ?? undefined,
      properties,
      context: url ? { page: { url } } : undefined,
    }),
  );
}

function dropUndefinedFields(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

/**
 * The default messageId of event `index` of a signed request: derived from its signature, so a retry of the
 * same request (same body, same signature) stamps the same ids. A publish whose outcome was unknown (a commit
 * that failed after it may have reached the disk) gives the signature back for the sender's retry; if the
 * first attempt was stored after all, the event processor drops the copy as a duplicate instead of delivering
 * it twice. Formatted as a version-4-shaped UUID, like the random ones.
 */
function signedMessageId(signatureHex: string, index: number): string {
  const bytes = createHash('sha256').update(`signal-message-id:${signatureHex}:${index}`).digest();
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Browser clocks are often wrong: shift client timestamps by (receivedAt − sentAt) when the SDK sent sentAt. */
function clockSkew(sentAt: string | undefined, receivedAtMs: number): number {
  if (!sentAt) return 0;
  const sent = Date.parse(sentAt);
  if (Number.isNaN(sent)) return 0;
  return receivedAtMs - sent;
}

/** 9999-12-31T23:59:59.999Z. */
const LAST_FOUR_DIGIT_YEAR_MS = 253_402_300_799_999;

/** Stage-1 consent tagging (`Sec-GPC`), click ids and clock-skew correction for a validated input. */
function enrichment(
  input: EventInput,
  opts: { gpc: boolean; skewMs: number; receivedAtMs: number },
): Enrichment {
  let timestamp: string | undefined;
  if (input.timestamp && opts.skewMs !== 0) {
    const corrected = Date.parse(input.timestamp) + opts.skewMs;
    // Only a correction that is still a four-digit-year date: a nonsense sentAt must not turn a valid event
    // into an invalid one, nor throw (toISOString throws beyond ±8.64e15 ms).
    if (corrected >= 0 && corrected <= LAST_FOUR_DIGIT_YEAR_MS) timestamp = new Date(corrected).toISOString();
  }
  return {
    clickIds: extractClickIds(input.context?.page?.url, opts.receivedAtMs),
    gpc: opts.gpc,
    ...(timestamp !== undefined ? { timestamp } : {}),
  };
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid event';
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

function bodyReason(error: HttpError): string {
  switch (error.code) {
    case 'payload_too_large':
      return 'payload_too_large';
    case 'unsupported_media_type':
      return 'content_type';
    case 'unavailable':
      return 'server_busy';
    default:
      return 'malformed_body';
  }
}

function unavailable(message: string): HttpError {
  return new HttpError('unavailable', message, { headers: { 'retry-after': '1' } });
}

function withHeaders(error: HttpError, headers: Record<string, string>): HttpError {
  if (Object.keys(headers).length === 0) return error;
  return new HttpError(error.code, error.message, { headers: { ...error.headers, ...headers } });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v;
}

function stringField(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  return typeof v === 'string' ? v : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export { sendError };
