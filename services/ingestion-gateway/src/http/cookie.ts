import { randomUUID } from 'node:crypto';

export const ANONYMOUS_ID_COOKIE = '_dfid';
/** 400 days: the longest lifetime browsers honour for a cookie (RFC 6265bis). */
export const ANONYMOUS_ID_MAX_AGE_SECONDS = 400 * 24 * 60 * 60;

const ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** Reads `_dfid` from a Cookie header; anything that isn't one of our ids is ignored. */
export function readAnonymousIdCookie(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() !== ANONYMOUS_ID_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (ID_PATTERN.test(value)) return value;
  }
  return undefined;
}

/** An anonymous id we would set ourselves: accepted from a client only in the same shape. */
export function isValidAnonymousId(value: string | undefined | null): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

export function newAnonymousId(): string {
  return randomUUID();
}

/**
 * The first-party `_dfid` cookie: server-set, so it is not capped like script-written cookies (Safari ITP),
 * HttpOnly so page scripts cannot read or exfiltrate it, Secure, SameSite=Lax, on COOKIE_DOMAIN so every
 * subdomain of the customer's site shares it.
 */
export function anonymousIdSetCookie(id: string, cookieDomain: string | null): string {
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
