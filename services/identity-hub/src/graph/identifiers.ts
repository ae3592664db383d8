import type { CanonicalEvent } from '@signal/events';

/** The identifiers that decide which profile an event belongs to. */
export const PRIMARY_KINDS = ['anonymous_id', 'user_id'] as const;
export type PrimaryKind = (typeof PRIMARY_KINDS)[number];

/**
 * Vendor cookie values and advertising click ids kept per profile for enrichment, under the names the
 * gateway and Datafly.js use in `context.clickIds`: Meta `fbp`/`fbc` (`_fbp`, `_fbc`), Google Analytics
 * `ga` (`_ga`), TikTok `ttp` (`_ttp`), and the click ids ad platforms append to landing URLs. They never
 * link profiles: a shared device's cookies must not merge two people.
 */
export const VENDOR_ID_KINDS = [
  'fbp',
  'fbc',
  'ga',
  'ttp',
  'gclid',
  'gbraid',
  'wbraid',
  'dclid',
  'fbclid',
  'ttclid',
  'msclkid',
  'li_fat_id',
  'ScCid',
  'epik',
  'twclid',
  'rdt_cid',
  'irclickid',
] as const;
export type VendorIdKind = (typeof VENDOR_ID_KINDS)[number];

export type IdentifierKind = PrimaryKind | VendorIdKind;
export const IDENTIFIER_KINDS: readonly IdentifierKind[] = Object.freeze([
  ...PRIMARY_KINDS,
  ...VENDOR_ID_KINDS,
]);

const VENDOR_KIND_SET: ReadonlySet<string> = new Set(VENDOR_ID_KINDS);

export function isIdentifierKind(value: string): value is IdentifierKind {
  return (IDENTIFIER_KINDS as readonly string[]).includes(value);
}

/** The vendor ids an event carries (already bounded and printable: the canonical event schema checked them). */
export function vendorIdentifiers(event: CanonicalEvent): { kind: VendorIdKind; value: string }[] {
  const out: { kind: VendorIdKind; value: string }[] = [];
  for (const [name, value] of Object.entries(event.context.clickIds ?? {})) {
    if (VENDOR_KIND_SET.has(name)) out.push({ kind: name as VendorIdKind, value });
  }
  return out;
}
