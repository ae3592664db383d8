import { randomUUID } from 'node:crypto';

/**
 * The first-party `_dfid` cookie that carries a visitor's anonymous id, shared by the Ingestion Gateway (which
 * issues it) and the Identity Hub (which re-issues it on linked sites): one name, id shape, lifetime and set
 * of attributes.
 */
export const ANONYMOUS_ID_COOKIE = '_dfid';
/** 400 days: the longest lifetime browsers honour for a cookie (RFC 6265bis). */
export const ANONYMOUS_ID_MAX_AGE_SECONDS = 400 * 24 * 60 * 60;
/** The ids we issue and accept (UUIDs and similar): never anything that needs escaping in a header. */
export const ANONYMOUS_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** An anonymous id we would set ourselves: accepted from a client only in the same shape. */
export function isValidAnonymousId(value: unknown): value is string {
  return typeof value === 'string' && ANONYMOUS_ID_PATTERN.test(value);
}

export function newAnonymousId(): string {
  return randomUUID();
}

/** `_dfid` from a Cookie header; anything that is not one of our ids is ignored. */
export function readAnonymousIdCookie(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== ANONYMOUS_ID_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (isValidAnonymousId(value)) return value;
  }
  return undefined;
}

/**
 * `Set-Cookie` for `_dfid`: server-set, so not capped like script-written cookies (Safari ITP); HttpOnly so
 * page scripts cannot read or exfiltrate it; Secure; SameSite=Lax; 400 days; `Domain` (e.g. COOKIE_DOMAIN,
 * so every subdomain of the site shares it) only when one is given, host-only otherwise. Refuses an id of
 * another shape, which could inject cookie attributes.
 */
export function anonymousIdSetCookie(id: string, cookieDomain: string | null): string {
  if (!isValidAnonymousId(id)) throw new TypeError('not an anonymous id');
  const parts = [
    `${ANONYMOUS_ID_COOKIE}=${id}`,
    `Max-Age=${ANONYMOUS_ID_MAX_AGE_SECONDS}`,
    'Path=/',
    'HttpOnly',
    'Secure',
    'SameSite=Lax',
  ];
  if (cookieDomain) parts.splice(3, 0, `Domain=${cookieDomain}`);
  return parts.join('; ');
}
