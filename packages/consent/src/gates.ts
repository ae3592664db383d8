import { idSetHas } from './id-set';
import type { ConsentRegime } from './jurisdiction';
import type { TcfPurposeRule } from './requirements';
import type { ConsentCategory, ConsentSignals, SignalErrorCode, TcfValidState } from './state';

/** Why a decision came out the way it did. Bounded set: safe as a log field or metric label. */
export const CONSENT_REASONS = [
  'essential',
  'granted',
  'not_opted_out',
  'state_unreadable',
  'signal_invalid',
  'category_denied',
  'category_not_set',
  'gpc_opt_out',
  'us_opt_out',
  'tcf_publisher_restriction',
  'tcf_purpose_denied',
  'tcf_vendor_denied',
  'tcf_legal_basis_invalid',
] as const;
export type ConsentReason = (typeof CONSENT_REASONS)[number];

export interface GateDetail {
  readonly category?: ConsentCategory;
  readonly purpose?: number;
  readonly vendorId?: number;
  readonly signalError?: SignalErrorCode;
}

export type Gate =
  | { readonly pass: true; readonly reason: ConsentReason }
  | { readonly pass: false; readonly reason: ConsentReason; readonly detail: GateDetail };

const pass = (reason: ConsentReason): Gate => ({ pass: true, reason });
const fail = (reason: ConsentReason, detail: GateDetail): Gate => ({ pass: false, reason, detail });

/** Purposes TCF 2.2 forbids to rest on legitimate interest (1 has never allowed it). */
const CONSENT_ONLY_PURPOSES = new Set([1, 3, 4, 5, 6]);

/** The decoded TC data when the TCF is in force: a valid v2 string and the CMP did not say GDPR is out of scope. */
export function tcfInForce(state: ConsentSignals): TcfValidState | undefined {
  const tcf = state.tcf;
  return tcf?.status === 'valid' && tcf.gdprApplies !== false ? tcf : undefined;
}

/**
 * What a TC string says about a canonical category, for vendors outside the IAB framework (Meta, TikTok, …)
 * and pages whose CMP speaks only TCF. Our mapping, not the IAB's (see README): undefined = TCF has no say.
 */
export function tcfCategory(tcf: TcfValidState, category: ConsentCategory): boolean | undefined {
  const consent = (purpose: number): boolean => tcf.purposeConsents.includes(purpose);
  const consentOrLi = (purpose: number): boolean =>
    consent(purpose) || tcf.purposeLegitimateInterests.includes(purpose);
  switch (category) {
    case 'essential':
      return true;
    case 'functional':
      return consent(1);
    case 'analytics':
      return consent(1) && consentOrLi(8);
    case 'marketing':
      return consent(1) && consent(3) && consent(4) && consentOrLi(7);
    case 'personalization':
      return consent(1) && consent(5) && consent(6);
  }
}

/**
 * Category gate. `deferToTcf`: the requirement names an IAB vendor with purposes and the TCF is in force, so an
 * unset category is left to the (more specific) TCF gate instead of our purpose→category mapping.
 */
export function categoryGate(
  state: ConsentSignals,
  category: ConsentCategory,
  regime: ConsentRegime,
  deferToTcf: boolean,
): Gate {
  if (category === 'essential') return pass('essential');
  const choice = state.categories[category];
  if (choice === false) return fail('category_denied', { category });
  if (choice === true) return pass('granted');
  const tcf = tcfInForce(state);
  if (tcf !== undefined) {
    if (deferToTcf) return pass('granted');
    const fromTcf = tcfCategory(tcf, category);
    if (fromTcf !== undefined) return fromTcf ? pass('granted') : fail('tcf_purpose_denied', { category });
  }
  if (regime === 'opt-out') return pass('not_opted_out');
  return fail('category_not_set', { category });
}

/**
 * US opt-out gate for sales, sharing and targeted advertising: GPC, the US Privacy string and the applicable
 * GPP US sections. Applies where US law may govern (regime `opt-out` or `unknown`), not in `opt-in`
 * jurisdictions, where consent comes from the CMP and GPC is not a recognised signal.
 */
export function usOptOutGate(state: ConsentSignals, regime: ConsentRegime, category: ConsentCategory): Gate {
  if (regime === 'opt-in') return pass('granted');
  if (state.gpc) return fail('gpc_opt_out', { category });
  const { sale, sharing, targetedAdvertising } = state.usOptOut;
  if (sale || sharing || targetedAdvertising) return fail('us_opt_out', { category });
  return pass('not_opted_out');
}

function restrictionTypes(tcf: TcfValidState, vendorId: number, purpose: number): Set<number> {
  const types = new Set<number>();
  for (const restriction of tcf.publisherRestrictions) {
    if (restriction.purposeId === purpose && idSetHas(restriction.vendors, vendorId)) {
      types.add(restriction.restrictionType);
    }
  }
  return types;
}

/**
 * TCF gate for one vendor (VENDORS.md §10.1): per purpose, no `not allowed` publisher restriction, then the
 * legal basis (declared, or switched by a restriction when the purpose is flexible) with both the purpose
 * signal and the vendor signal for that basis. A restriction demanding a basis the vendor cannot switch to, or
 * of an unknown type, fails closed.
 */
export function tcfGate(tcf: TcfValidState, vendorId: number, rules: readonly TcfPurposeRule[]): Gate {
  for (const rule of rules) {
    const { purpose } = rule;
    const detail = { purpose, vendorId };
    const types = restrictionTypes(tcf, vendorId, purpose);
    if (types.has(0) || types.has(3) || (types.has(1) && types.has(2))) {
      return fail('tcf_publisher_restriction', detail);
    }
    const demanded = types.has(1) ? 'consent' : types.has(2) ? 'legitimate_interest' : undefined;
    let basis = rule.basis;
    if (demanded !== undefined && demanded !== basis) {
      if (rule.flexible !== true) return fail('tcf_publisher_restriction', detail);
      basis = demanded;
    }
    if (basis === 'consent') {
      if (!tcf.purposeConsents.includes(purpose)) return fail('tcf_purpose_denied', detail);
      if (!idSetHas(tcf.vendorConsents, vendorId)) return fail('tcf_vendor_denied', detail);
    } else {
      if (CONSENT_ONLY_PURPOSES.has(purpose)) return fail('tcf_legal_basis_invalid', detail);
      if (!tcf.purposeLegitimateInterests.includes(purpose)) return fail('tcf_purpose_denied', detail);
      if (!idSetHas(tcf.vendorLegitimateInterests, vendorId)) return fail('tcf_vendor_denied', detail);
    }
  }
  return pass('granted');
}

/** Purposes assumed when a requirement names an IAB vendor but no purposes: storage and access (1), consent. */
export const DEFAULT_TCF_RULES: readonly TcfPurposeRule[] = Object.freeze([
  Object.freeze({ purpose: 1, basis: 'consent' as const }),
]);

export interface GateSpec {
  readonly category: ConsentCategory;
  readonly vendorId?: number | undefined;
  /** TCF purposes; undefined = none (the category alone decides). */
  readonly rules?: readonly TcfPurposeRule[] | undefined;
  readonly saleOrSharing: boolean;
}

/** Category, then US opt-outs (for sales/sharing), then TCF: the first failing gate is the answer. */
export function evaluateGates(state: ConsentSignals, regime: ConsentRegime, spec: GateSpec): Gate {
  const tcf = tcfInForce(state);
  const rules = tcf !== undefined && spec.vendorId !== undefined ? spec.rules : undefined;
  const category = categoryGate(state, spec.category, regime, rules !== undefined && rules.length > 0);
  if (!category.pass) return category;
  if (spec.saleOrSharing) {
    const us = usOptOutGate(state, regime, spec.category);
    if (!us.pass) return us;
  }
  if (tcf !== undefined && spec.vendorId !== undefined && rules !== undefined) {
    const tcfResult = tcfGate(tcf, spec.vendorId, rules);
    if (!tcfResult.pass) return tcfResult;
  }
  return category;
}
