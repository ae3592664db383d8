/**
 * Host names as the cross-domain checks compare them: lower case, ASCII (IDNs in their punycode form, as the
 * WHATWG URL parser produces them), no trailing dot, no wildcard. Every comparison here is exact; nothing
 * is matched by suffix except where a function says so.
 */

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST = new RegExp(`^(?:${LABEL}\\.)*${LABEL}$`);
const PORT = /^[1-9][0-9]{0,4}$/;

/** One entry of a pipeline's linked-domain allowlist: an exact host, optionally pinned to one port. */
export interface LinkedDomain {
  readonly host: string;
  /** `null`: the scheme's default port (any port for development hosts, see `isDevelopmentHost`). */
  readonly port: string | null;
}

/** A syntactically valid host name (lower case, no port, no trailing dot, labels of 1-63 characters). */
export function isHostName(value: string): boolean {
  return value.length <= 253 && HOST.test(value);
}

/**
 * `localhost` and `*.localhost` (RFC 6761: always loopback). The only hosts allowed over plain HTTP and on
 * any port, so the embedded demo (`http://site-a.localhost:8080`) works without certificates.
 */
export function isDevelopmentHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

/**
 * Parses a configured linked domain (`shop.example`, `shop.example:8443`). Entries that are not a plain host
 * name (wildcards, schemes, paths, trailing dots) are ignored rather than guessed at: an allowlist entry
 * that cannot be compared exactly must not widen it.
 */
export function parseLinkedDomain(entry: string): LinkedDomain | null {
  const value = entry.trim().toLowerCase();
  const colon = value.lastIndexOf(':');
  const host = colon === -1 ? value : value.slice(0, colon);
  const port = colon === -1 ? null : value.slice(colon + 1);
  if (!isHostName(host)) return null;
  if (port !== null && (!PORT.test(port) || Number(port) > 65_535)) return null;
  return { host, port };
}

export function parseLinkedDomains(entries: readonly string[]): LinkedDomain[] {
  const out: LinkedDomain[] = [];
  for (const entry of entries) {
    const parsed = parseLinkedDomain(entry);
    if (parsed !== null) out.push(parsed);
  }
  return out;
}

/**
 * Whether a parsed URL's origin (`protocol`, `hostname`, `port` as WHATWG URL reports them) is one of the
 * linked domains: exact host; the entry's port, or the default port when the entry names none (any port on
 * development hosts); HTTPS, or HTTP on development hosts only.
 */
export function isLinkedOrigin(
  origin: { readonly protocol: string; readonly hostname: string; readonly port: string },
  domains: readonly LinkedDomain[],
): boolean {
  const dev = isDevelopmentHost(origin.hostname);
  if (origin.protocol !== 'https:' && !(dev && origin.protocol === 'http:')) return false;
  return domains.some(
    (domain) =>
      domain.host === origin.hostname &&
      (domain.port === null ? origin.port === '' || dev : domain.port === origin.port),
  );
}

/** True when `host` equals `domain` or is a subdomain of it (`data.shop.example` within `shop.example`). */
export function isWithin(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

/**
 * Whether a hub reached on `arrival` may redeem tokens for `audience`: the same host; a host under it
 * (`data.shop.example` serves `shop.example`); or both under one configured cookie domain
 * (`data.shop.example` serves `www.shop.example` when `shop.example` is a cookie domain, because the `_dfid`
 * cookie it sets there is the one every host of that domain sees).
 */
export function servesAudience(arrival: string, audience: string, cookieDomains: readonly string[]): boolean {
  if (isWithin(arrival, audience)) return true;
  return cookieDomains.some((domain) => isWithin(arrival, domain) && isWithin(audience, domain));
}
