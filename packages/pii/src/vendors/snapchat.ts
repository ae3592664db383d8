import { plainEmail, snapPhone, trimLower, trimOnly } from '../rules';
import { clear, type FieldRule, hashed, type VendorProfile } from './profile';

/**
 * Snap Conversions API v3 `user_data` (Meta-shaped), plus the v2 `hashed_ip_address`. Fields without a
 * dedicated rule use the SDK's generic string rule (trim + lowercase).
 */
export const snapchatProfile: VendorProfile = (options) =>
  new Map<string, FieldRule>([
    ['em', hashed(plainEmail)],
    ['ph', hashed(snapPhone(options.snapDefaultCallingCode))],
    ['madid', hashed(trimLower)],
    ['hashed_ip_address', hashed(trimLower)],
    ['fn', hashed(trimLower)],
    ['ln', hashed(trimLower)],
    ['ge', hashed(trimLower)],
    ['ct', hashed(trimLower)],
    ['st', hashed(trimLower)],
    ['zp', hashed(trimLower)],
    ['country', hashed(trimLower)],
    ['external_id', hashed(trimLower)],
    ['client_ip_address', clear(trimOnly)],
    ['client_user_agent', clear(trimOnly)],
    ['sc_click_id', clear(trimOnly)],
    ['sc_cookie1', clear(trimOnly)],
  ]);

/** The Snap fields that use the SDK's generic string rule. */
export const SNAP_GENERIC_FIELDS: readonly string[] = [
  'fn',
  'ln',
  'ge',
  'ct',
  'st',
  'zp',
  'country',
  'external_id',
];
