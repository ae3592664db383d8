import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { HttpError, readJsonBody } from '@signal/http';
import type { z } from 'zod';

/** Admin request bodies are small JSON documents. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface RequestInfo {
  /** The peer address of the connection (a proxy's, behind one); null if unknown. */
  readonly ip: string | null;
  readonly userAgent: string | null;
}

export function requestInfo(req: IncomingMessage): RequestInfo {
  let ip = req.socket.remoteAddress ?? null;
  if (ip?.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
  const ua = req.headers['user-agent'];
  return { ip: ip !== null && isIP(ip) !== 0 ? ip : null, userAgent: typeof ua === 'string' ? ua : null };
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
