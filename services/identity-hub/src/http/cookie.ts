import { isWithin } from '../tokens/hosts';

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
