import type { IncomingMessage } from 'node:http';
import { clientIp, HttpError, readJsonBody, type TrustedProxies } from '@signal/http';
import type { z } from 'zod';

/** Admin request bodies are small JSON documents. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface RequestInfo {
  /**
   * The client's address: the connection's peer, or behind `trustedProxyHops` reverse proxies the entry that
   * many hops from the right of X-Forwarded-For, each hop checked against `proxies` when given (`clientIp`, as
   * the gateway and identity hub read it); null if unknown. It keys the per-client rate limit and login throttle and is what the audit log records.
   */
  readonly ip: string | null;
  readonly userAgent: string | null;
}

export function requestInfo(
  req: IncomingMessage,
  trustedProxyHops: number,
  proxies?: TrustedProxies,
): RequestInfo {
  const ua = req.headers['user-agent'];
  return {
    ip: clientIp(req, trustedProxyHops, proxies) ?? null,
    userAgent: typeof ua === 'string' ? ua : null,
  };
}

/** Reads and validates a JSON body; failures become `HttpError`s (400/413/415). */
export async function readBody<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const result = await readJsonBody(req, { limitBytes: BODY_LIMIT_BYTES, schema });
  if (!result.ok) throw result.error;
  return result.value;
}

/** Like `readBody`, but a request without a body counts as `{}` (POST actions whose options all default). */
export async function readOptionalBody<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const length = req.headers['content-length'];
  const hasBody = (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) {
    const parsed = schema.safeParse({});
    if (parsed.success) return parsed.data;
    throw new HttpError('validation_failed', 'a JSON body is required');
  }
  return readBody(req, schema);
}

/** Query `limit` and `cursor` for list endpoints. */
export function pageQuery(query: URLSearchParams): { limit: number | undefined; cursor: string | null } {
  const raw = query.get('limit');
  let limit: number | undefined;
  if (raw !== null) {
    if (!/^[0-9]{1,4}$/.test(raw))
      throw new HttpError('bad_request', 'limit must be a whole number from 1 to 100');
    limit = Number(raw);
  }
  return { limit, cursor: query.get('cursor') };
}
