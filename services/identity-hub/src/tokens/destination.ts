import { isLinkedOrigin, type LinkedDomain } from './hosts';

/** Longest `to` accepted. Browsers cope with far longer URLs; a cross-site link needs far less. */
export const MAX_DESTINATION_LENGTH = 2048;

/** The query parameter that carries a token to the destination. */
export const TOKEN_PARAM = '_dftk';

/** Why a destination was refused (metric label values: bounded, never the URL). */
export type DestinationRefusal =
  | 'missing'
  | 'too_long'
  | 'forbidden_characters'
  | 'not_absolute'
  | 'credentials'
  | 'not_linked';

export type DestinationVerdict =
  | { readonly ok: true; readonly url: URL; readonly host: string }
  | { readonly ok: false; readonly reason: DestinationRefusal };

/**
 * Control characters, every kind of whitespace, format characters (zero-width and bidi controls) and
 * backslashes. The WHATWG parser silently drops tabs and newlines and reads `\` as `/`, and other parsers
 * do not: a destination that could mean two different things is refused instead of normalised.
 */
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Z}\\]/u;
const ABSOLUTE_HTTP = /^https?:\/\/[^/]/i;

/**
 * Checks `to` for the token and redirect endpoints. The only accepted shape is an absolute `https://` URL
 * (`http://` on development hosts) whose host, after WHATWG parsing (lower case, punycode, IPv4 forms
 * normalised), equals one of the pipeline's linked domains exactly, on the entry's port, without any
 * userinfo. Everything else (relative and protocol-relative URLs, other schemes, `user@host` tricks,
 * look-alike or suffix hosts, trailing dots, encoded separators) is refused. Callers redirect to the
 * returned `url`'s serialisation, never to the input text.
 */
export function checkDestination(to: unknown, domains: readonly LinkedDomain[]): DestinationVerdict {
  if (typeof to !== 'string' || to === '') return refuse('missing');
  if (to.length > MAX_DESTINATION_LENGTH) return refuse('too_long');
  if (FORBIDDEN.test(to)) return refuse('forbidden_characters');
  if (!ABSOLUTE_HTTP.test(to)) return refuse('not_absolute');
  // `@` anywhere in the authority is userinfo, even when the parser would drop an empty one (`https://@x`).
  const authorityEnd = to.slice(to.indexOf('//') + 2).search(/[/?#]/);
  const authority = to.slice(to.indexOf('//') + 2).slice(0, authorityEnd === -1 ? undefined : authorityEnd);
  if (authority.includes('@')) return refuse('credentials');
  let url: URL;
  try {
    url = new URL(to);
  } catch {
    return refuse('not_absolute');
  }
  if (url.username !== '' || url.password !== '') return refuse('credentials');
  if (!isLinkedOrigin(url, domains)) return refuse('not_linked');
  return { ok: true, url, host: url.hostname };
}

function refuse(reason: DestinationRefusal): DestinationVerdict {
  return { ok: false, reason };
}

/**
 * The destination with `_dftk=<token>` as its last query parameter (replacing any `_dftk` already there).
 * Other parameters are kept byte for byte (no re-encoding through URLSearchParams); the fragment stays last.
 */
export function withToken(url: URL, token: string): string {
  const pairs = url.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '' && parameterName(pair) !== TOKEN_PARAM);
  pairs.push(`${TOKEN_PARAM}=${token}`);
  return `${url.origin}${url.pathname}?${pairs.join('&')}${url.hash}`;
}

function parameterName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = (eq === -1 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
