import { BitReader } from './bit-reader';

/**
 * Work bound for TC strings, checked before `@iabtcf/core` sees them.
 *
 * Why: `@iabtcf/core` 1.5.6 expands every range entry id by id, and stores publisher-restriction vendors in an
 * unbalanced binary search tree fed in ascending order, so the work is quadratic in the span of a restriction
 * range. Measured on this machine: a 60-character string with one restriction over vendors 1–65535 takes 3.4 s
 * to decode; a 164-character one over a minute. Consent strings arrive from the open internet on every event,
 * so we walk the range fields ourselves (cheap: they are only read, never expanded) and refuse strings whose
 * expansion would exceed bounds no real CMP comes near (the Global Vendor List's highest id is in the low
 * thousands).
 *
 * The walk only counts; anything it cannot parse is left for the decoder to reject.
 */

/** Most vendor ids one publisher restriction may cover. */
export const MAX_RESTRICTION_VENDORS = 4096;
/** Most vendor ids all publisher restrictions together may cover. */
export const MAX_TOTAL_RESTRICTION_VENDORS = 16384;
/** Most vendor ids all range-encoded vendor vectors (consent, LI, disclosed, allowed) together may expand to. */
export const MAX_TOTAL_RANGE_VENDORS = 4 * 65535;

// Bit offsets of the first vendor section, from the TCF v1.1 and v2 core string layouts.
const V1_VENDOR_SECTION_OFFSET = 6 + 36 + 36 + 12 + 12 + 6 + 12 + 12 + 24;
const V2_VENDOR_SECTION_OFFSET = 6 + 36 + 36 + 12 + 12 + 6 + 12 + 12 + 6 + 1 + 1 + 12 + 24 + 24 + 1 + 12;

interface Span {
  readonly span: number;
  /** False when the string ended inside the field: the decoder still expands what came before, then fails. */
  readonly complete: boolean;
}

/** Range span of one vendor vector (v2 layout, or v1 with its default-consent bit). */
function vendorVectorSpan(reader: BitReader, version: 1 | 2): Span {
  const maxId = reader.read(16);
  const isRange = reader.read(1);
  if (maxId === null || isRange === null) return { span: 0, complete: false };
  if (isRange === 0) {
    reader.skip(maxId);
    return { span: 0, complete: true };
  }
  if (version === 1) reader.skip(1);
  return rangeListSpan(reader);
}

export type TcfWorkVerdict =
  | { readonly acceptable: true }
  | { readonly acceptable: false; readonly detail: string };

/** Whether decoding `tcString` stays within the work bounds above. */
export function checkTcStringWork(tcString: string): TcfWorkVerdict {
  const segments = tcString.split('.');
  const core = segments[0] ?? '';
  const probe = new BitReader(core, 0);
  if (!probe.valid) return { acceptable: true };
  const version = probe.read(6);
  let rangeSpan = 0;

  if (version === 1 || version === 2) {
    const reader = new BitReader(core, version === 1 ? V1_VENDOR_SECTION_OFFSET : V2_VENDOR_SECTION_OFFSET);
    const consents = vendorVectorSpan(reader, version);
    rangeSpan += consents.span;
    if (version === 2 && consents.complete) {
      const legitimateInterests = vendorVectorSpan(reader, 2);
      rangeSpan += legitimateInterests.span;
      const restrictions = legitimateInterests.complete ? restrictionLoad(reader) : { largest: 0, total: 0 };
      if (restrictions.largest > MAX_RESTRICTION_VENDORS) {
        return { acceptable: false, detail: `publisher restriction covers ${restrictions.largest} vendors` };
      }
      if (restrictions.total > MAX_TOTAL_RESTRICTION_VENDORS) {
        return { acceptable: false, detail: `publisher restrictions cover ${restrictions.total} vendors` };
      }
    }
  }

  for (const segment of segments.slice(1)) {
    const reader = new BitReader(segment, 0);
    if (!reader.valid) continue;
    const type = reader.read(3);
    // 1 = disclosed vendors, 2 = allowed vendors: vendor vectors; 3 = publisher TC: fixed-size fields.
    if (type === 1 || type === 2) rangeSpan += vendorVectorSpan(reader, 2).span;
  }
  if (rangeSpan > MAX_TOTAL_RANGE_VENDORS) {
    return { acceptable: false, detail: `vendor ranges expand to ${rangeSpan} ids` };
  }
  return { acceptable: true };
}

function restrictionLoad(reader: BitReader): { largest: number; total: number } {
  const count = reader.read(12);
  if (count === null) return { largest: 0, total: 0 };
  let largest = 0;
  let total = 0;
  for (let r = 0; r < count; r++) {
    reader.skip(6 + 2); // purpose id, restriction type
    const covered = rangeListSpan(reader);
    largest = Math.max(largest, covered.span);
    total += covered.span;
    if (!covered.complete) break; // truncated: the decoder will reject the string
  }
  return { largest, total };
}

/** Span of a `NumEntries` + (IsRange, Start[, End]) list. */
function rangeListSpan(reader: BitReader): Span {
  const entries = reader.read(12);
  if (entries === null) return { span: 0, complete: false };
  let span = 0;
  for (let i = 0; i < entries; i++) {
    const isRange = reader.read(1);
    const start = reader.read(16);
    if (isRange === null || start === null) return { span, complete: false };
    if (isRange === 1) {
      const end = reader.read(16);
      if (end === null) return { span, complete: false };
      span += Math.max(0, end - start + 1);
    } else {
      span += 1;
    }
  }
  return { span, complete: true };
}
