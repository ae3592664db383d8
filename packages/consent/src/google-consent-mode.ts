import { categoryGate, evaluateGates } from './gates';
import { consentRegime } from './jurisdiction';
import { IAB_VENDOR_IDS, type TcfPurposeRule } from './requirements';
import { err, ok, type Result } from './result';
import type { ConsentSignals, GoogleConsentMode, GoogleConsentValue } from './state';

export interface GoogleConsentModeError {
  readonly code: 'google_consent_mode_invalid';
  readonly message: string;
}

/** `gcs` = `G1` + ad_storage bit + analytics_storage bit (1 = granted), e.g. `G101`. Community-documented. */
export function parseGcs(
  gcs: string,
): Result<{ ad_storage: GoogleConsentValue; analytics_storage: GoogleConsentValue }, GoogleConsentModeError> {
  const match = /^G1([01])([01])$/.exec(gcs);
  if (match === null)
    return err({ code: 'google_consent_mode_invalid', message: 'gcs must be G1 and two bits' });
  const value = (bit: string | undefined): GoogleConsentValue => (bit === '1' ? 'granted' : 'denied');
  return ok({ ad_storage: value(match[1]), analytics_storage: value(match[2]) });
}

export type GcdState = 'granted' | 'denied' | 'not_set';

/** One signal of a `gcd` value: the page's default, the user's update, and which is in effect. */
export interface GcdSignal {
  readonly default: GcdState;
  readonly update: GcdState;
  /** The update when there is one, else the default. */
  readonly effective: GcdState;
}

export interface GcdSignals {
  readonly ad_storage: GcdSignal;
  readonly analytics_storage: GcdSignal;
  readonly ad_user_data: GcdSignal;
  readonly ad_personalization: GcdSignal;
}

const GCD_LETTERS: Readonly<Record<string, readonly [GcdState, GcdState]>> = {
  l: ['not_set', 'not_set'],
  p: ['denied', 'not_set'],
  q: ['denied', 'denied'],
  t: ['granted', 'not_set'],
  r: ['denied', 'granted'],
  m: ['not_set', 'denied'],
  n: ['not_set', 'granted'],
  u: ['granted', 'denied'],
  v: ['granted', 'granted'],
};

function gcdSignal(letter: string | undefined): GcdSignal | undefined {
  const states = letter === undefined ? undefined : GCD_LETTERS[letter];
  if (states === undefined) return undefined;
  const [defaultState, update] = states;
  return { default: defaultState, update, effective: update === 'not_set' ? defaultState : update };
}

/**
 * `gcd` = two digits, then ad_storage, analytics_storage, ad_user_data, ad_personalization letters each
 * followed by one digit (e.g. `11r1r1r1r5`). Community reverse-engineered, not a Google spec: any other shape
 * or letter is an error (and fails the state closed) rather than a guess.
 */
export function parseGcd(gcd: string): Result<GcdSignals, GoogleConsentModeError> {
  const match = /^\d\d([a-z])\d([a-z])\d([a-z])\d([a-z])\d$/.exec(gcd);
  const signals = match === null ? [] : [1, 2, 3, 4].map((group) => gcdSignal(match[group]));
  const [adStorage, analyticsStorage, adUserData, adPersonalization] = signals;
  if (!adStorage || !analyticsStorage || !adUserData || !adPersonalization) {
    return err({
      code: 'google_consent_mode_invalid',
      message: 'gcd must be 2 digits + 4 × (state letter, digit)',
    });
  }
  return ok({
    ad_storage: adStorage,
    analytics_storage: analyticsStorage,
    ad_user_data: adUserData,
    ad_personalization: adPersonalization,
  });
}

const consent = (purpose: number): TcfPurposeRule => ({ purpose, basis: 'consent' });
/** Google's TCF → Consent Mode mapping (vendor 755): ad_storage 1; ad_user_data 1 + 7; ad_personalization 3 + 4. */
const GOOGLE_TCF_RULES = {
  ad_storage: [consent(1)],
  ad_user_data: [consent(1), consent(7)],
  ad_personalization: [consent(3), consent(4)],
} as const;

/**
 * The four Consent Mode v2 signals for a state, in a jurisdiction. Advertising signals need marketing (with US
 * opt-outs and GPC), Google's TCF purposes and vendor 755 when the TCF is in force, and no `denied` reported by
 * the page for that signal; analytics_storage needs analytics. A state with an unreadable signal is all denied.
 */
export function deriveGoogleConsentMode(state: ConsentSignals, jurisdiction?: string): GoogleConsentMode {
  if (state.errors.length > 0) {
    return {
      ad_storage: 'denied',
      analytics_storage: 'denied',
      ad_user_data: 'denied',
      ad_personalization: 'denied',
    };
  }
  const regime = consentRegime(jurisdiction);
  const reported = state.reportedGoogleConsentMode ?? {};
  const value = (granted: boolean): GoogleConsentValue => (granted ? 'granted' : 'denied');
  const advertising = (signal: keyof typeof GOOGLE_TCF_RULES): GoogleConsentValue => {
    const gate = evaluateGates(state, regime, {
      category: 'marketing',
      vendorId: IAB_VENDOR_IDS.google,
      rules: GOOGLE_TCF_RULES[signal],
      saleOrSharing: true,
    });
    return value(gate.pass && reported[signal] !== 'denied');
  };
  return {
    ad_storage: advertising('ad_storage'),
    analytics_storage: value(
      categoryGate(state, 'analytics', regime, false).pass && reported.analytics_storage !== 'denied',
    ),
    ad_user_data: advertising('ad_user_data'),
    ad_personalization: advertising('ad_personalization'),
  };
}
