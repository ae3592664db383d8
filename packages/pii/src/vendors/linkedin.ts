import { isoCountryUpper, plainEmail, trimOnly } from '../rules';
import { clear, type FieldRule, hashed, type VendorProfile } from './profile';

/**
 * LinkedIn Conversions API: `SHA256_EMAIL` is the only hashed identifier; `userInfo` goes in clear text.
 * (RudderStack hashes the email without normalising it, which does not match; not reproduced.)
 */
export const linkedinProfile: VendorProfile = () =>
  new Map<string, FieldRule>([
    ['SHA256_EMAIL', hashed(plainEmail)],
    ['userInfo.firstName', clear(trimOnly)],
    ['userInfo.lastName', clear(trimOnly)],
    ['userInfo.title', clear(trimOnly)],
    ['userInfo.companyName', clear(trimOnly)],
    ['userInfo.countryCode', clear(isoCountryUpper)],
  ]);
