import { type ConsentInput, type ConsentState, normaliseConsent } from '@signal/consent';
import type { CanonicalEvent } from '@signal/events';

/**
 * The canonical consent state of an event: `context.consent` as the gateway stamped it (categories, TCF, GPP
 * with its section ids, US Privacy, GPC), normalised by `@signal/consent`. The observation time is the event
 * time, but never later than when the gateway received it (a fast device clock must not make a stale choice
 * look newer than a later revocation).
 */
export function eventConsentState(event: CanonicalEvent): ConsentState {
  const consent = event.context.consent;
  const input: ConsentInput = {
    ...(consent.categories === undefined ? {} : { categories: consent.categories }),
    ...(consent.tcf === undefined ? {} : { tcf: consent.tcf }),
    ...(consent.gpp === undefined ? {} : { gpp: consent.gpp }),
    ...(consent.usPrivacy === undefined ? {} : { usPrivacy: consent.usPrivacy }),
    ...(consent.gpc === undefined ? {} : { gpc: consent.gpc }),
    ...(consent.gppSid === undefined ? {} : { cmp: { gppApplicableSections: consent.gppSid } }),
  };
  const received = Date.parse(event.receivedAt);
  const happened = Date.parse(event.timestamp);
  const observedAt = Number.isFinite(happened) ? Math.min(happened, received) : received;
  return normaliseConsent(input, { observedAt: Math.max(0, observedAt) });
}

/** True when the event reports any consent signal (an empty `context.consent` says nothing new). */
export function carriesConsent(event: CanonicalEvent): boolean {
  const c = event.context.consent;
  return (
    c.categories !== undefined ||
    c.tcf !== undefined ||
    c.gpp !== undefined ||
    c.usPrivacy !== undefined ||
    c.gpc !== undefined
  );
}
