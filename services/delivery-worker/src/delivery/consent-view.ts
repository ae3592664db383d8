import type { ConsentDecision, ConsentRequirement, ConsentState } from '@signal/consent';
import type { CanonicalEvent, ConsentCategories as Categories, Consent } from '@signal/events';

/** What a vendor is told when no readable consent is known: nothing beyond essential was granted. */
const NOTHING_GRANTED: Categories = Object.freeze({
  essential: true,
  functional: false,
  analytics: false,
  marketing: false,
  personalization: false,
});

/**
 * `context.consent` as stage 2 decided on it: the latest state known for the visitor (`resolveLatestConsent`),
 * not the one the event arrived with. Adapters derive the consent signals they send from it (GA4
 * `ad_user_data` / `ad_personalization`, Google Ads `adUserData`, whether user data is sent at all), and a
 * webhook receives it as it is, so a withdrawal after ingestion reaches the vendor as a withdrawal.
 *
 * - A state that cannot be read (`null`, or one with signal errors, which only an essential requirement lets
 *   through) fails closed: every category but essential is reported as not granted, and no raw string is passed.
 * - `strip` (the user-data gate failed): the gate's category is reported as not granted, so signals derived from
 *   it agree with the stripped payload (Google is not told `ad_user_data: GRANTED` for an event we kept the
 *   user data of).
 */
export function stageTwoConsent(
  state: ConsentState | null,
  decision: Pick<ConsentDecision, 'outcome'>,
  requirement: ConsentRequirement,
): Consent {
  if (state === null || state.errors.length > 0) return { categories: { ...NOTHING_GRANTED } };
  const categories: Categories = {};
  for (const [name, value] of Object.entries(state.categories) as [keyof Categories, boolean | undefined][]) {
    if (value !== undefined) categories[name] = value;
  }
  const gate = requirement.userData?.category;
  if (decision.outcome === 'strip' && gate !== undefined && gate !== 'essential') categories[gate] = false;
  const applicable =
    state.gpp?.status === 'valid' ? state.gpp.applicableSections?.filter((sid) => sid >= 0) : undefined;
  return {
    categories,
    ...(state.raw.tcf === undefined ? {} : { tcf: state.raw.tcf }),
    ...(state.raw.gpp === undefined ? {} : { gpp: state.raw.gpp }),
    ...(applicable === undefined ? {} : { gppSid: applicable }),
    ...(state.raw.usPrivacy === undefined ? {} : { usPrivacy: state.raw.usPrivacy }),
    gpc: state.gpc,
  };
}

/** The event with `context.consent` replaced by `stageTwoConsent` (a copy; the consumed value is untouched). */
export function withStageTwoConsent(
  event: CanonicalEvent,
  state: ConsentState | null,
  decision: Pick<ConsentDecision, 'outcome'>,
  requirement: ConsentRequirement,
): CanonicalEvent {
  return {
    ...event,
    context: { ...event.context, consent: stageTwoConsent(state, decision, requirement) },
  };
}
