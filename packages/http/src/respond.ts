import type { ServerResponse } from 'node:http';
import type { HttpError } from './errors';

type Headers = Readonly<Record<string, string>>;

/**
 * Writes a JSON response with a fixed set of safe headers: API responses are never cached by shared caches
 * and never sniffed as another type.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Headers = {}): void {
  if (res.headersSent) {
    // A handler already started the response; writing a second one would corrupt the stream.
    res.destroy();
    return;
  }
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (status === 204 || status === 304) {
    // These statuses carry no body by definition.
    res.end();
    return;
  }
  const payload = Buffer.from(JSON.stringify(body) ?? 'null', 'utf8');
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', payload.byteLength);
  res.setHeader('x-content-type-options', 'nosniff');
  if (!res.hasHeader('cache-control')) res.setHeader('cache-control', 'no-store');
  res.end(payload);
}

/** Writes exactly `{"error":{"code","message"}}` (the API's error contract). */
export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Headers = {},
): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** Answers with an `HttpError`'s status, code, message and headers. */
export function sendHttpError(res: ServerResponse, error: HttpError): void {
  sendError(res, error.status, error.code, error.message, error.headers);
}
