import { accept, type Outcome } from '../outcome';
import {
  digitsPhone,
  metaCity,
  metaCountry,
  metaDateOfBirth,
  metaGender,
  metaName,
  metaState,
  metaZip,
  plainEmail,
  type Rule,
  trimLower,
  trimOnly,
} from '../rules';

/**
 * Field types for Org Data Layer hashing. The canonical plain form of each type, before the digest, is the
 * Meta rule for it (the best-specified and most tested), except that emails are only trimmed + lowercased,
 * external ids are only trimmed (lowercasing could merge distinct ids), and `generic` is trim + lowercase as
 * the product documents say of hashed fields in general.
 */
export const FIELD_TYPES = [
  'email',
  'phone',
  'name',
  'city',
  'state',
  'zip',
  'country',
  'dob',
  'gender',
  'external_id',
  'generic',
] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

const emailLoose: Rule = (raw, ctx): Outcome => {
  const strict = plainEmail(raw, ctx);
  return strict.ok ? strict : accept(raw.trim().toLowerCase());
};

export const TYPE_RULES: Readonly<Record<FieldType, Rule>> = {
  email: emailLoose,
  phone: digitsPhone,
  name: metaName,
  city: metaCity,
  state: metaState,
  zip: metaZip,
  country: metaCountry,
  dob: metaDateOfBirth,
  gender: metaGender,
  external_id: trimOnly,
  generic: trimLower,
};

// Keyed by the segment lowercased with every non-alphanumeric removed ("first_name", "firstName" → firstname).
const NAME_TO_TYPE: ReadonlyMap<string, FieldType> = new Map(
  (
    [
      ['email', 'email emailaddress mail em useremail'],
      ['phone', 'phone phonenumber mobile mobilephone mobilenumber tel telephone ph cell cellphone'],
      ['name', 'name fullname firstname lastname middlename givenname familyname surname fn ln'],
      ['city', 'city town ct'],
      ['state', 'state province region st'],
      ['zip', 'zip zipcode postalcode postcode zp'],
      ['country', 'country countrycode'],
      ['dob', 'dob db birthday birthdate dateofbirth'],
      ['gender', 'gender sex ge'],
      ['external_id', 'externalid userid customerid'],
    ] as const
  ).flatMap(([type, names]) => names.split(' ').map((name) => [name, type] as const)),
);

/** The type implied by a path's last named segment (`traits.phone_number` → phone), else `generic`. */
export function inferFieldType(segments: readonly string[]): FieldType {
  const named = segments.findLast((s) => s !== '*');
  if (named === undefined) return 'generic';
  return NAME_TO_TYPE.get(named.toLowerCase().replace(/[^a-z0-9]/g, '')) ?? 'generic';
}
