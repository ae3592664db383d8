import {
  currencyCode,
  dayOrMonth,
  digitsPhone,
  fourDigitYear,
  metaCity,
  metaCountry,
  metaDateOfBirth,
  metaEmail,
  metaExternalId,
  metaGender,
  metaName,
  metaState,
  metaZip,
  namePrefix,
  trimOnly,
} from '../rules';
import { clear, type FieldRule, hashed, type VendorProfile } from './profile';

/**
 * Meta Conversions API `user_data`. Hashed fields follow capi-param-builder; Meta's own normaliser treats a
 * 64- or 32-hex input as already hashed, so MD5 pass-through is kept for Meta only.
 */
export const metaProfile: VendorProfile = () => {
  const h = (rule: FieldRule['normalize']) => hashed(rule, 'sha256-or-md5');
  return new Map<string, FieldRule>([
    ['em', h(metaEmail)],
    ['ph', h(digitsPhone)],
    ['fn', h(metaName)],
    ['ln', h(metaName)],
    ['ct', h(metaCity)],
    ['st', h(metaState)],
    ['zp', h(metaZip)],
    ['country', h(metaCountry)],
    ['db', h(metaDateOfBirth)],
    ['ge', h(metaGender)],
    ['external_id', h(metaExternalId)],
    // Fields only the legacy SDK normaliser defines (still accepted by the API).
    ['f5first', h(namePrefix(5))],
    ['f5last', h(namePrefix(5))],
    ['fi', h(namePrefix(1))],
    ['dobd', h(dayOrMonth(31))],
    ['dobm', h(dayOrMonth(12))],
    ['doby', h(fourDigitYear)],
    // Sent in clear.
    ['client_ip_address', clear(trimOnly)],
    ['client_user_agent', clear(trimOnly)],
    ['fbc', clear(trimOnly)],
    ['fbp', clear(trimOnly)],
    ['currency', clear(currencyCode)],
  ]);
};
