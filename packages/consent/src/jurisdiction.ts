/**
 * How the law of a visitor's jurisdiction treats non-essential processing:
 * - `opt-in`: nothing non-essential without a recorded choice (GDPR / ePrivacy, UK, and by default every
 *   jurisdiction we do not classify otherwise);
 * - `opt-out`: allowed until the visitor opts out (US federal and state laws: CCPA/CPRA, VCDPA, CPA, …);
 * - `unknown`: no jurisdiction given. Both rule sets apply at once (a choice is needed and US opt-outs are
 *   honoured), so not knowing where a visitor is never makes a decision more permissive.
 */
export type ConsentRegime = 'opt-in' | 'opt-out' | 'unknown';

const US_JURISDICTION = /^US(?:-[A-Z]{2})?$/;

/** `jurisdiction` is an ISO 3166-1 alpha-2 country or ISO 3166-2 subdivision code (`DE`, `US`, `US-CA`). */
export function consentRegime(jurisdiction?: string): ConsentRegime {
  if (jurisdiction === undefined || jurisdiction.trim() === '') return 'unknown';
  return US_JURISDICTION.test(jurisdiction.trim().toUpperCase()) ? 'opt-out' : 'opt-in';
}
