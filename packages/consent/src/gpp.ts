import { GppModel, HeaderV1, Sections } from '@iabgpp/cmpapi';
import { z } from 'zod';
import { BitReader } from './bit-reader';
import { err, ok, type Result } from './result';
import type { OptOutStatus, UsOptOut, UsSectionView } from './state';
import { MAX_RAW_GPP_LENGTH } from './state';
import type { TcfDecoded } from './tcf';
import { checkTcStringWork } from './tcf-guard';

/**
 * GPP strings are decoded with the IAB's own `@iabgpp/cmpapi` (its `GppModel` encoder/decoder). Only the
 * model is used: it is plain TypeScript with no DOM access, so it runs in Node as is; the `CmpApi` class in
 * the same package is the in-page CMP API (it needs `window`) and is never constructed here.
 */

export const MAX_GPP_STRING_LENGTH = MAX_RAW_GPP_LENGTH;

export interface GppDecoded {
  /** Section ids from the header, in order (2 = tcfeuv2, 5 = tcfcav1, 6 = uspv1, 7 = usnat, 8+ = US states). */
  readonly sectionIds: readonly number[];
  /** Decoded sections' fields as the IAB decoder names them, keyed by section name; dates as ISO strings. */
  readonly sections: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /**
   * Sections listed but deliberately not decoded: `tcfcav1` (Canada; no decision here depends on it, and its
   * Fibonacci-coded vendor ranges expand without bound in the decoder) and ids the library does not know.
   */
  readonly skippedSections: readonly number[];
}

export type GppDecodeErrorCode = 'gpp_undecodable' | 'gpp_too_long';

export interface GppDecodeError {
  readonly code: GppDecodeErrorCode;
  readonly message: string;
}

const TCF_EU_V2_ID = 2;
const TCF_CA_V1_ID = 5;

const sectionFieldsSchema = z.record(z.string(), z.unknown());
const sectionIdsSchema = z.array(z.number().int().min(0));

/** Section id → name, as the IAB library knows them (`usnat`, `usca`, …). */
export function gppSectionName(sectionId: number): string | undefined {
  return Sections.SECTION_ID_NAME_MAP.get(sectionId);
}

/**
 * How many section ids the header's Fibonacci-coded range list expands to, or null when it cannot be read.
 * The IAB decoder expands ranges id by id before it checks them against the sections present, so a
 * ten-character header claiming ids 1…10^8 would exhaust memory; we count first and refuse anything larger
 * than the number of sections the string actually carries.
 */
function headerSectionCount(header: string, sectionsPresent: number): number | null {
  const reader = new BitReader(header);
  if (!reader.valid) return null;
  reader.skip(6 + 6); // header id (3), version (1)
  const groups = reader.read(12);
  if (groups === null) return null;
  let count = 0;
  let offset = 0;
  const limit = 1 << 20;
  for (let i = 0; i < groups; i++) {
    const isRange = reader.read(1);
    if (isRange === null) return null;
    const first = reader.readFibonacci(limit);
    if (first === null) return null;
    const start = first + offset;
    offset = start;
    if (isRange === 1) {
      const delta = reader.readFibonacci(limit);
      if (delta === null) return null;
      offset = start + delta;
      count += delta + 1;
    } else {
      count += 1;
    }
    if (count > sectionsPresent) return count;
  }
  return count;
}

function undecodable(message: string): { readonly ok: false; readonly error: GppDecodeError } {
  return err({ code: 'gpp_undecodable', message });
}

/**
 * Decode a GPP string section by section with the IAB decoder. Never throws: malformed strings, and strings
 * whose expansion would be unbounded, come back as an error value.
 */
export function decodeGpp(gppString: string): Result<GppDecoded, GppDecodeError> {
  if (gppString.length > MAX_GPP_STRING_LENGTH) {
    return err({ code: 'gpp_too_long', message: `longer than ${MAX_GPP_STRING_LENGTH} characters` });
  }
  const [header = '', ...encodedSections] = gppString.split('~');
  if (!header.startsWith('DB')) return undecodable('not a GPP v1 header');
  const listed = headerSectionCount(header, encodedSections.length);
  if (listed === null) return undecodable('unreadable header');
  if (listed !== encodedSections.length) {
    return undecodable(`header lists ${listed} sections, the string carries ${encodedSections.length}`);
  }
  try {
    const sectionIds = sectionIdsSchema.parse(new HeaderV1(header).getFieldValue('SectionIds'));
    if (sectionIds.length !== encodedSections.length) return undecodable('section count mismatch');
    const sections: Record<string, Record<string, unknown>> = {};
    const skippedSections: number[] = [];
    for (const [index, id] of sectionIds.entries()) {
      const encoded = encodedSections[index] ?? '';
      if (encoded.trim() === '') return undecodable(`section ${index + 1} is blank`);
      const name = gppSectionName(id);
      if (name === undefined || id === TCF_CA_V1_ID) {
        skippedSections.push(id);
        continue;
      }
      if (id === TCF_EU_V2_ID) {
        const work = checkTcStringWork(encoded);
        if (!work.acceptable) return undecodable(`tcfeuv2 section: ${work.detail}`);
      }
      const model = new GppModel();
      model.decodeSectionById(id, encoded);
      // JSON round trip: dates become ISO strings, the decoder's RangeEntry objects plain {key, type, ids}.
      sections[name] = sectionFieldsSchema.parse(JSON.parse(JSON.stringify(model.getSection(name))));
    }
    return ok({ sectionIds, sections, skippedSections });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message.split(gppString).join('<gpp>') : 'decoder failed';
    return undecodable(message.slice(0, 200));
  }
}

const usStateFieldsSchema = z.object({
  SaleOptOut: z.number().int().optional(),
  SharingOptOut: z.number().int().optional(),
  TargetedAdvertisingOptOut: z.number().int().optional(),
  Gpc: z.boolean().optional(),
});

const uspV1FieldsSchema = z.object({ OptOutSale: z.string() });

/** GPP opt-out fields: 0 = not applicable, 1 = opted out, 2 = did not opt out. Anything else fails closed. */
function gppOptOut(value: number | undefined): OptOutStatus {
  if (value === undefined || value === 0) return 'not_applicable';
  if (value === 2) return 'not_opted_out';
  return 'opted_out';
}

/** US Privacy / uspv1 `OptOutSale`: Y = opted out, N = not, - = not applicable. Anything else fails closed. */
export function uspOptOut(flag: string): OptOutStatus {
  if (flag === 'N') return 'not_opted_out';
  if (flag === '-') return 'not_applicable';
  return 'opted_out';
}

/**
 * The sale / sharing / targeted-advertising opt-out view of one decoded US section (`uspv1`, `usnat`, `usca`,
 * `usva`, …); undefined for non-US sections (`tcfeuv2`, `tcfcav1`). Sections without a field (usca has no
 * targeted-advertising opt-out, most states no sharing opt-out) report `not_applicable` for it.
 */
export function usSectionView(
  section: string,
  fields: Readonly<Record<string, unknown>>,
): UsSectionView | undefined {
  if (section === 'uspv1') {
    const parsed = uspV1FieldsSchema.safeParse(fields);
    const sale = parsed.success ? uspOptOut(parsed.data.OptOutSale) : 'opted_out';
    return { section, sale, sharing: 'not_applicable', targetedAdvertising: 'not_applicable', gpc: false };
  }
  if (!section.startsWith('us')) return undefined;
  const parsed = usStateFieldsSchema.safeParse(fields);
  if (!parsed.success) {
    return { section, sale: 'opted_out', sharing: 'opted_out', targetedAdvertising: 'opted_out', gpc: false };
  }
  return {
    section,
    sale: gppOptOut(parsed.data.SaleOptOut),
    sharing: gppOptOut(parsed.data.SharingOptOut),
    targetedAdvertising: gppOptOut(parsed.data.TargetedAdvertisingOptOut),
    gpc: parsed.data.Gpc === true,
  };
}

/** The US views of the sections that apply (all of them when `applicableSections` is absent). */
export function gppUsViews(decoded: GppDecoded, applicableSections?: readonly number[]): UsSectionView[] {
  const views: UsSectionView[] = [];
  for (const id of decoded.sectionIds) {
    if (applicableSections !== undefined && !applicableSections.includes(id)) continue;
    const name = gppSectionName(id);
    const fields = name === undefined ? undefined : decoded.sections[name];
    if (name === undefined || fields === undefined) continue;
    const view = usSectionView(name, fields);
    if (view !== undefined) views.push(view);
  }
  return views;
}

/** Opted out anywhere = opted out (several sections can apply at once, e.g. usnat and usca). */
export function aggregateUsOptOut(views: readonly UsSectionView[]): UsOptOut {
  return {
    sale: views.some((view) => view.sale === 'opted_out'),
    sharing: views.some((view) => view.sharing === 'opted_out'),
    targetedAdvertising: views.some((view) => view.targetedAdvertising === 'opted_out'),
  };
}

const booleanListSchema = z.array(z.boolean());
const idListSchema = z.array(z.number().int().min(1));
const tcfEuV2FieldsSchema = z.object({
  Version: z.number().int(),
  Created: z.string(),
  LastUpdated: z.string(),
  CmpId: z.number().int(),
  CmpVersion: z.number().int(),
  ConsentScreen: z.number().int(),
  ConsentLanguage: z.string(),
  VendorListVersion: z.number().int(),
  PolicyVersion: z.number().int(),
  IsServiceSpecific: z.boolean(),
  SpecialFeatureOptins: booleanListSchema,
  PurposeConsents: booleanListSchema,
  PurposeLegitimateInterests: booleanListSchema,
  PurposeOneTreatment: z.boolean(),
  PublisherCountryCode: z.string(),
  VendorConsents: idListSchema,
  VendorLegitimateInterests: idListSchema,
  PublisherRestrictions: z.array(
    z.object({ key: z.number().int(), type: z.number().int(), ids: idListSchema }),
  ),
  PublisherConsents: booleanListSchema.default([]),
  PublisherLegitimateInterests: booleanListSchema.default([]),
  NumCustomPurposes: z.number().int().default(0),
  PublisherCustomConsents: booleanListSchema.default([]),
  PublisherCustomLegitimateInterests: booleanListSchema.default([]),
  VendorsDisclosed: idListSchema.default([]),
  VendorsAllowed: idListSchema.default([]),
});

function maxId(ids: readonly number[]): number {
  return ids.reduce((max, id) => Math.max(id, max), 0);
}

function setBits(flags: readonly boolean[]): number[] {
  const out: number[] = [];
  flags.forEach((flag, index) => {
    if (flag) out.push(index + 1);
  });
  return out;
}

/** A decoded `tcfeuv2` GPP section in the same shape `decodeTcString` returns; undefined if malformed. */
export function tcfFromGppSection(fields: Readonly<Record<string, unknown>>): TcfDecoded | undefined {
  const parsed = tcfEuV2FieldsSchema.safeParse(fields);
  if (!parsed.success) return undefined;
  const f = parsed.data;
  return {
    version: f.Version,
    created: f.Created,
    lastUpdated: f.LastUpdated,
    cmpId: f.CmpId,
    cmpVersion: f.CmpVersion,
    consentScreen: f.ConsentScreen,
    consentLanguage: f.ConsentLanguage,
    vendorListVersion: f.VendorListVersion,
    tcfPolicyVersion: f.PolicyVersion,
    isServiceSpecific: f.IsServiceSpecific,
    purposeOneTreatment: f.PurposeOneTreatment,
    publisherCountryCode: f.PublisherCountryCode,
    specialFeatureOptins: setBits(f.SpecialFeatureOptins),
    purposeConsents: setBits(f.PurposeConsents),
    purposeLegitimateInterests: setBits(f.PurposeLegitimateInterests),
    vendorConsents: f.VendorConsents,
    vendorLegitimateInterests: f.VendorLegitimateInterests,
    vendorConsentsMaxId: maxId(f.VendorConsents),
    vendorLegitimateInterestsMaxId: maxId(f.VendorLegitimateInterests),
    publisherRestrictions: f.PublisherRestrictions.map((entry) => ({
      purposeId: entry.key,
      restrictionType: entry.type,
      vendors: entry.ids,
    })),
    publisherConsents: setBits(f.PublisherConsents),
    publisherLegitimateInterests: setBits(f.PublisherLegitimateInterests),
    numCustomPurposes: f.NumCustomPurposes,
    publisherCustomConsents: setBits(f.PublisherCustomConsents),
    publisherCustomLegitimateInterests: setBits(f.PublisherCustomLegitimateInterests),
    vendorsDisclosed: f.VendorsDisclosed,
    vendorsAllowed: f.VendorsAllowed,
  };
}
