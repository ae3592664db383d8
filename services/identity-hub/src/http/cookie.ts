import { isWithin } from '../tokens/hosts';

/**
 * The first-party `_dfid` cookie, with the same rules as the Ingestion Gateway's helpers
 * (`services/ingestion-gateway/src/http/cookie.ts`): same name, id shape, lifetime and attributes. Services
 * cannot import each other, so this is a small equivalent; both should move to a shared package.
 */
export const ANONYMOUS_ID_COOKIE = '_dfid';
/** 400 days: the longest lifetime browsers honour for a cookie (RFC 6265bis). */
export const ANONYMOUS_ID_MAX_AGE_SECONDS = 400 * 24 * 60 * 60;
/** The ids the gateway issues and accepts (UUIDs and similar): never anything that needs escaping. */
export const ANONYMOUS_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export function isValidAnonymousId(value: unknown): value is string {
  return typeof value === 'string' && ANONYMOUS_ID_PATTERN.test(value);
}

/** `_dfid` from a Cookie header; values that are not one of our ids are ignored. */
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
 * `Set-Cookie` for `_dfid`: server-set (not capped like script-written cookies under ITP), HttpOnly, Secure,
 * SameSite=Lax, 400 days; `Domain` only when one is given (host-only otherwise).
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
  if (cookieDomain !== null) parts.splice(3, 0, `Domain=${cookieDomain}`);
  return parts.join('; ');
}

/**
 * The configured cookie domain that covers `host` (the longest one, so `shop.example.co.uk` wins over a
 * broader entry), or null for a host-only cookie. A browser ignores a Domain attribute that does not cover
 * the responding host, so only a covering domain is ever sent.
 */
export function cookieDomainFor(host: string, cookieDomains: readonly string[]): string | null {
  let best: string | null = null;
  for (const domain of cookieDomains) {
    if (isWithin(host, domain) && (best === null || domain.length > best.length)) best = domain;
  }
  return best;
}
