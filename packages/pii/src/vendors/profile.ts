import type { PassthroughHashed } from '../digest';
import type { GoogleEmailRule, Rule } from '../rules';

export type VendorId = 'meta' | 'google' | 'tiktok' | 'snapchat' | 'pinterest' | 'linkedin';

export const VENDOR_IDS: readonly VendorId[] = [
  'meta',
  'google',
  'tiktok',
  'snapchat',
  'pinterest',
  'linkedin',
];

/** How one field of a vendor's payload is prepared. */
export interface FieldRule {
  readonly normalize: Rule;
  /** `false` for fields the vendor takes in clear text (IP, user agent, click ids, Google's city/region…). */
  readonly hashed: boolean;
  /** Which already-hashed inputs are sent as they are (trimmed, lowercased) instead of hashed again. */
  readonly passthrough: PassthroughHashed;
}

/** Vendor-specific choices where sources disagree (see README.md, "Variants"). */
export interface ProfileOptions {
  readonly googleEmailRule: GoogleEmailRule;
  readonly pinterestRules: 'documented' | 'rudderstack';
  readonly snapDefaultCallingCode: string;
}

/** A vendor profile builds its field table once, from resolved options. */
export type VendorProfile = (options: ProfileOptions) => ReadonlyMap<string, FieldRule>;

export function hashed(normalize: Rule, passthrough: PassthroughHashed = 'sha256'): FieldRule {
  return { normalize, hashed: true, passthrough };
}

export function clear(normalize: Rule): FieldRule {
  return { normalize, hashed: false, passthrough: 'none' };
}
