import { createHash, timingSafeEqual } from 'node:crypto';
import { type Logger, silentLogger } from './logger';
import { sendError } from './respond';
import type { RouteHandler } from './router';

/** What `/metrics` needs from a registry; prom-client's `Registry` satisfies it. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsHandlerOptions {
  readonly logger?: Logger;
  /**
   * `METRICS_TOKEN`: when set, a scrape must send `Authorization: Bearer <token>`; anything else gets 401.
   * The metrics name key ids, integrations and volumes, and `/metrics` shares its port with the public
   * endpoints (the gateway's, the identity hub's, the all-in-one's): an ingress that forwards every path
   * would publish them.
   */
  readonly token?: string | null;
}

/** A `GET /metrics` handler over an injected registry (there is no global registry). */
export function metricsHandler(source: MetricsSource, options: MetricsHandlerOptions = {}): RouteHandler {
  const logger = options.logger ?? silentLogger;
  const authorized = bearerCheck(options.token ?? null);
  return async (req, res) => {
    if (!authorized(req.headers.authorization)) {
      sendError(res, 401, 'unauthorized', 'metrics need Authorization: Bearer <METRICS_TOKEN>', {
        'www-authenticate': 'Bearer realm="metrics"',
      });
      return;
    }
    let text: string;
    try {
      text = await source.metrics();
    } catch (cause) {
      logger.error({ err: cause }, 'collecting metrics failed');
      sendError(res, 500, 'internal', 'metrics collection failed');
      return;
    }
    const body = Buffer.from(text, 'utf8');
    res.statusCode = 200;
    res.setHeader('content-type', source.contentType);
    res.setHeader('content-length', body.byteLength);
    res.setHeader('cache-control', 'no-store');
    res.end(body);
  };
}

/**
 * Whether an Authorization header carries `token` as a bearer credential (RFC 6750: scheme case-insensitive).
 * Compared as SHA-256 digests in constant time, so neither the token's bytes nor its length leak through
 * timing. No token configured: everything passes.
 */
function bearerCheck(token: string | null): (header: string | undefined) => boolean {
  if (token === null) return () => true;
  const expected = sha256(token);
  return (header) => {
    const match = header === undefined ? null : /^bearer +(\S+) *$/i.exec(header);
    return match?.[1] !== undefined && timingSafeEqual(sha256(match[1]), expected);
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
