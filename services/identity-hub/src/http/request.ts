import type { IncomingMessage } from 'node:http';
import { isHostName } from '../tokens/hosts';

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

const HOST_HEADER = /^([A-Za-z0-9.-]{1,253})(?::([0-9]{1,5}))?$/;

/**
 * The host this request arrived on, from the `Host` header: lower case, port dropped. Null for a malformed
 * header, an IP literal or a trailing dot, and, when `publicHosts` is configured, for any host not on it.
 *
 * Trust model: browsers set `Host` to the host they connected to and scripts cannot change it, so for a
 * browser request it is the site the visitor is on. A client outside a browser can send any Host, but it can
 * only redeem a token it already holds, for the audience it was issued to. Behind a reverse proxy, configure
 * `publicHosts` (IDENTITY_PUBLIC_HOSTS) and have the proxy pass the client's Host through; X-Forwarded-Host
 * is never read.
 */
export function arrivalHost(req: IncomingMessage, publicHosts: readonly string[]): string | null {
  const raw = header(req, 'host');
  if (raw === undefined) return null;
  const match = HOST_HEADER.exec(raw);
  const host = match?.[1]?.toLowerCase();
  if (host === undefined || !isHostName(host) || /^[0-9.]+$/.test(host)) return null;
  if (publicHosts.length > 0 && !publicHosts.includes(host)) return null;
  return host;
}

/** The parsed `Origin` header of a CORS request, or null for `null`, opaque or malformed origins. */
export function parseOrigin(origin: string): URL | null {
  if (origin === 'null') return null;
  try {
    const url = new URL(origin);
    return url.origin === origin ? url : null;
  } catch {
    return null;
  }
}

/** CORS response headers for a request from `origin` (credentials, the exact origin, never `*`). */
export function corsHeaders(origin: string): Record<string, string> {
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-credentials': 'true',
    vary: 'Origin',
  };
}
