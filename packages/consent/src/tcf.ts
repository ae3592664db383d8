import { TCString, type Vector } from '@iabtcf/core';
import { err, ok, type Result } from './result';
import { checkTcStringWork } from './tcf-guard';

/** Longest TC string we decode; real ones (with a disclosed-vendors segment) stay well under 3,000 characters. */
export const MAX_TC_STRING_LENGTH = 8192;

export interface TcfPublisherRestriction {
  readonly purposeId: number;
  /** 0 = purpose not allowed for these vendors, 1 = require consent, 2 = require legitimate interest. */
  readonly restrictionType: number;
  readonly vendors: readonly number[];
}

/**
 * Everything a TC string carries, as `@iabtcf/core` decodes it. Id sets are ascending id lists. Field names
 * follow the decoder (and the shared test vectors); `tcfPolicyVersion` is 2 for TCF 2.0/2.1, 4 for 2.2, 5 for 2.3.
 */
export interface TcfDecoded {
  readonly version: number;
  readonly created: string;
  readonly lastUpdated: string;
  readonly cmpId: number;
  readonly cmpVersion: number;
  readonly consentScreen: number;
  readonly consentLanguage: string;
  readonly vendorListVersion: number;
  readonly tcfPolicyVersion: number;
  readonly isServiceSpecific: boolean;
  readonly purposeOneTreatment: boolean;
  readonly publisherCountryCode: string;
  readonly specialFeatureOptins: readonly number[];
  readonly purposeConsents: readonly number[];
  readonly purposeLegitimateInterests: readonly number[];
  readonly vendorConsents: readonly number[];
  readonly vendorLegitimateInterests: readonly number[];
  readonly vendorConsentsMaxId: number;
  readonly vendorLegitimateInterestsMaxId: number;
  readonly publisherRestrictions: readonly TcfPublisherRestriction[];
  readonly publisherConsents: readonly number[];
  readonly publisherLegitimateInterests: readonly number[];
  readonly numCustomPurposes: number;
  readonly publisherCustomConsents: readonly number[];
  readonly publisherCustomLegitimateInterests: readonly number[];
  readonly vendorsDisclosed: readonly number[];
  readonly vendorsAllowed: readonly number[];
}

export type TcfDecodeErrorCode = 'tcf_undecodable' | 'tcf_too_long' | 'tcf_too_complex';

export interface TcfDecodeError {
  readonly code: TcfDecodeErrorCode;
  /** The decoder's reason; never contains the string itself. */
  readonly message: string;
}

function ids(vector: Vector): number[] {
  const out: number[] = [];
  vector.forEach((value, id) => {
    if (value) out.push(id);
  });
  return out;
}

/**
 * Decode a TC string (TCF v2; `@iabtcf/core` also recognises legacy v1 `B…` strings and reports version 1).
 * Needs no Global Vendor List and makes no network call. Never throws: anything the decoder rejects, and
 * strings too long or too costly to expand, come back as an error value.
 */
export function decodeTcString(tcString: string): Result<TcfDecoded, TcfDecodeError> {
  if (tcString.length > MAX_TC_STRING_LENGTH) {
    return err({ code: 'tcf_too_long', message: `longer than ${MAX_TC_STRING_LENGTH} characters` });
  }
  const work = checkTcStringWork(tcString);
  if (!work.acceptable) return err({ code: 'tcf_too_complex', message: work.detail });
  try {
    const model = TCString.decode(tcString);
    // The model's integer getters are typed string | number (its setters accept both); decoding yields numbers.
    const restrictions: TcfPublisherRestriction[] = [];
    for (const restriction of model.publisherRestrictions.getRestrictions()) {
      restrictions.push({
        purposeId: restriction.purposeId,
        restrictionType: restriction.restrictionType,
        vendors: model.publisherRestrictions.getVendors(restriction),
      });
    }
    return ok({
      version: Number(model.version),
      created: model.created.toISOString(),
      lastUpdated: model.lastUpdated.toISOString(),
      cmpId: Number(model.cmpId),
      cmpVersion: Number(model.cmpVersion),
      consentScreen: Number(model.consentScreen),
      consentLanguage: model.consentLanguage,
      vendorListVersion: Number(model.vendorListVersion),
      tcfPolicyVersion: Number(model.policyVersion),
      isServiceSpecific: model.isServiceSpecific,
      purposeOneTreatment: model.purposeOneTreatment,
      publisherCountryCode: model.publisherCountryCode,
      specialFeatureOptins: ids(model.specialFeatureOptins),
      purposeConsents: ids(model.purposeConsents),
      purposeLegitimateInterests: ids(model.purposeLegitimateInterests),
      vendorConsents: ids(model.vendorConsents),
      vendorLegitimateInterests: ids(model.vendorLegitimateInterests),
      vendorConsentsMaxId: model.vendorConsents.maxId,
      vendorLegitimateInterestsMaxId: model.vendorLegitimateInterests.maxId,
      publisherRestrictions: restrictions,
      publisherConsents: ids(model.publisherConsents),
      publisherLegitimateInterests: ids(model.publisherLegitimateInterests),
      numCustomPurposes: Number(model.numCustomPurposes),
      publisherCustomConsents: ids(model.publisherCustomConsents),
      publisherCustomLegitimateInterests: ids(model.publisherCustomLegitimateInterests),
      vendorsDisclosed: ids(model.vendorsDisclosed),
      vendorsAllowed: ids(model.vendorsAllowed),
    });
  } catch (cause) {
    // The decoder throws DecodingError, TCModelError and, on some malformed segments, plain TypeErrors.
    const message = cause instanceof Error ? cause.message : 'decoder failed';
    return err({ code: 'tcf_undecodable', message: message.slice(0, 200) });
  }
}
