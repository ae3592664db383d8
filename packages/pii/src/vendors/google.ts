import { e164Phone, googleEmail, googleName, googleStreet, isoCountryUpper, trimOnly } from '../rules';
import { clear, type FieldRule, hashed, type VendorProfile } from './profile';

/**
 * Google Ads API enhanced conversions (`userIdentifiers`, `OfflineUserAddressInfo`) and GA4 Measurement
 * Protocol `user_data` — GA4 "uses the same normalization and hashing as the Google Ads API". Field names
 * are neutral; the formatter maps them to `hashedEmail` / `sha256_email_address` and so on. City, region,
 * postal code and country travel in clear.
 */
export const googleProfile: VendorProfile = (options) =>
  new Map<string, FieldRule>([
    ['email', hashed(googleEmail(options.googleEmailRule))],
    ['phone_number', hashed(e164Phone)],
    ['first_name', hashed(googleName)],
    ['last_name', hashed(googleName)],
    ['street', hashed(googleStreet)],
    ['city', clear(googleName)],
    ['region', clear(googleName)],
    ['postal_code', clear(trimOnly)],
    ['country', clear(isoCountryUpper)],
  ]);
