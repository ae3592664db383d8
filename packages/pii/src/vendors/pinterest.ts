import {
  digitsOnly,
  digitsPhone,
  metaDateOfBirth,
  pinterestGender,
  plainEmail,
  trimLower,
  trimOnly,
  zipBeforeDash,
} from '../rules';
import { clear, type FieldRule, hashed, type VendorProfile } from './profile';

/**
 * Pinterest Conversions API `user_data` (every hashed field is sent as an array by the formatter).
 * `documented` follows Pinterest's docs for ge (f/m/n) and zp (ZIP before "-"); `rudderstack` reproduces
 * RudderStack's transformer (hashes the lowercased gender word, digits-only zp) for hash continuity when
 * migrating from it.
 */
export const pinterestProfile: VendorProfile = (options) => {
  const documented = options.pinterestRules === 'documented';
  return new Map<string, FieldRule>([
    ['em', hashed(plainEmail)],
    ['ph', hashed(digitsPhone)],
    ['fn', hashed(trimLower)],
    ['ln', hashed(trimLower)],
    ['ct', hashed(trimLower)],
    ['st', hashed(trimLower)],
    ['country', hashed(trimLower)],
    ['zp', hashed(documented ? zipBeforeDash : digitsOnly)],
    ['ge', hashed(documented ? pinterestGender : trimLower)],
    ['db', hashed(metaDateOfBirth)],
    ['external_id', hashed(trimOnly)],
    ['hashed_maids', hashed(trimLower)],
    ['client_ip_address', clear(trimOnly)],
    ['client_user_agent', clear(trimOnly)],
    ['click_id', clear(trimOnly)],
  ]);
};
