import { type ConsentReason, DEFAULT_TCF_RULES, evaluateGates, type GateDetail } from './gates';
import { consentRegime } from './jurisdiction';
import type { ConsentRequirement } from './requirements';
import type { ConsentCategory, ConsentState } from './state';

export type ConsentOutcome = 'allow' | 'drop' | 'strip';

/**
 * Stage 1: the Event Processor, with the consent the event arrived with. Stage 2: the Delivery Worker, with
 * the latest consent known for the visitor (`resolveLatestConsent`). Same rules at both stages.
 */
export interface DecisionContext {
  readonly stage: 1 | 2;
  /** ISO 3166 code of the visitor's jurisdiction (`DE`, `US-CA`); absent = unknown (strictest of both regimes). */
  readonly jurisdiction?: string | undefined;
}

export interface ConsentDecision {
  /** `strip` = deliver without personal data (the delivery gate passed, the user-data gate did not). */
  readonly outcome: ConsentOutcome;
  readonly reason: ConsentReason;
  readonly stage: 1 | 2;
  /** The requirement's category, for metrics and logs. */
  readonly category: ConsentCategory;
  /** What failed (never personal data): the category, TCF purpose / vendor id, or the unreadable signal. */
  readonly detail?: GateDetail;
}

/**
 * Decide whether an event may reach an integration. Pure: same inputs, same answer; never throws.
 *
 * `state` null = the state could not be read (absent from a corrupt store, store unavailable): fail closed,
 * every non-essential delivery is dropped. Order (README "Decision rules"): essential → unreadable →
 * invalid signals → delivery gate (category, US opt-outs, TCF) → user-data gate (→ strip) → allow.
 */
export function decide(
  state: ConsentState | null,
  requirement: ConsentRequirement,
  context: DecisionContext,
): ConsentDecision {
  const { stage } = context;
  const category = requirement.category;
  if (category === 'essential') return { outcome: 'allow', reason: 'essential', stage, category };
  if (state === null) return { outcome: 'drop', reason: 'state_unreadable', stage, category };
  const signalError = state.errors[0];
  if (signalError !== undefined) {
    return { outcome: 'drop', reason: 'signal_invalid', stage, category, detail: { signalError } };
  }

  const regime = consentRegime(context.jurisdiction);
  const delivery = evaluateGates(state, regime, {
    category,
    vendorId: requirement.iabVendorId,
    rules: requirement.requiredPurposes ?? DEFAULT_TCF_RULES,
    saleOrSharing: requirement.saleOrSharing ?? category === 'marketing',
  });
  if (!delivery.pass)
    return { outcome: 'drop', reason: delivery.reason, stage, category, detail: delivery.detail };

  const userData = requirement.userData;
  if (userData !== undefined) {
    const gate = evaluateGates(state, regime, {
      category: userData.category,
      vendorId: requirement.iabVendorId,
      rules: userData.requiredPurposes,
      saleOrSharing: requirement.saleOrSharing === true || userData.category === 'marketing',
    });
    if (!gate.pass) return { outcome: 'strip', reason: gate.reason, stage, category, detail: gate.detail };
  }
  return { outcome: 'allow', reason: delivery.reason, stage, category };
}
