const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLocalHost(host: string): boolean {
  return LOCAL_HOSTS.has(host) || host.endsWith('.localhost');
}

/** Parses an `Origin` header into its host, or undefined for `null`, opaque or malformed origins. */
export function originHost(origin: string): { host: string; secure: boolean } | undefined {
  if (origin === 'null') return undefined;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
    if (url.origin !== origin) return undefined; // paths, credentials or trailing junk: not an origin
    return { host: url.hostname.toLowerCase(), secure: url.protocol === 'https:' };
  } catch {
    return undefined;
  }
}

/**
 * Whether a page at `origin` may send events: its host equals an allowed domain or is a subdomain of one
 * (`example.com` allows `www.example.com`, never `badexample.com` or `example.com.evil.net`), over HTTPS —
 * plain HTTP only for local development hosts. `corsOrigins` (CORS_ORIGINS) are exact origins allowed in
 * addition, for every pipeline.
 */
export function isOriginAllowed(
  origin: string,
  allowedDomains: readonly string[],
  corsOrigins: readonly string[],
): boolean {
  if (corsOrigins.includes(origin)) return true;
  const parsed = originHost(origin);
  if (!parsed) return false;
  if (!parsed.secure && !isLocalHost(parsed.host)) return false;
  return allowedDomains.some((raw) => {
    const domain = raw.toLowerCase().replace(/^\./, '');
    return parsed.host === domain || parsed.host.endsWith(`.${domain}`);
  });
}
