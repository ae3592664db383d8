import type { CanonicalEvent } from '@signal/events';
import { compact } from '../compact';

/**
 * The person an event is about, read from the places clients put it: `traits` first (Segment's identify
 * convention, also carried on track calls), then `properties` (server sources often send the buyer's e-mail
 * with the order). Values are raw here; each adapter normalises and hashes them with its vendor's profile,
 * and a value the Org Data Layer already hashed (64 hex) passes through unchanged.
 */
export interface Person {
  readonly email?: string;
  readonly phone?: string;
  readonly firstName?: string;
  readonly lastName?: string;
  readonly gender?: string;
  readonly birthday?: string;
  readonly street?: string;
  readonly city?: string;
  readonly state?: string;
  readonly postalCode?: string;
  readonly country?: string;
  readonly title?: string;
  readonly company?: string;
}

type Bag = Readonly<Record<string, unknown>>;

const KEYS = {
  email: ['email', 'email_address', 'emailAddress'],
  phone: ['phone', 'phone_number', 'phoneNumber', 'mobile'],
  firstName: ['firstName', 'first_name', 'firstname'],
  lastName: ['lastName', 'last_name', 'lastname'],
  gender: ['gender', 'sex'],
  birthday: ['birthday', 'dateOfBirth', 'date_of_birth', 'dob', 'birthdate'],
  title: ['title', 'jobTitle', 'job_title'],
} as const;

const ADDRESS_KEYS = {
  street: ['street', 'street_address', 'streetAddress', 'line1', 'address1'],
  city: ['city'],
  state: ['state', 'region', 'province'],
  postalCode: ['postalCode', 'postal_code', 'zip', 'zipCode', 'zip_code', 'postcode'],
  country: ['country', 'countryCode', 'country_code'],
} as const;

function isBag(value: unknown): value is Bag {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A usable scalar: a non-blank string, or a finite number (phone numbers and postcodes arrive as numbers). */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function pick(bags: readonly Bag[], keys: readonly string[]): string | undefined {
  for (const bag of bags) {
    for (const key of keys) {
      if (!Object.hasOwn(bag, key)) continue;
      const value = text(bag[key]);
      if (value !== undefined) return value;
    }
  }
  return undefined;
}

export function readPerson(event: Pick<CanonicalEvent, 'traits' | 'properties'>): Person {
  const bags: Bag[] = [event.traits, event.properties];
  const addresses: Bag[] = [];
  for (const bag of bags) {
    const address = bag.address;
    if (isBag(address)) addresses.push(address);
  }
  // An `address` object wins over flat fields; flat `city`/`country` on traits are the fallback.
  const addressBags = [...addresses, ...bags];

  let firstName = pick(bags, KEYS.firstName);
  let lastName = pick(bags, KEYS.lastName);
  if (firstName === undefined && lastName === undefined) {
    // Only traits: `properties.name` is a page or product name.
    const full = pick([event.traits], ['name'])?.trim();
    const space = full?.indexOf(' ') ?? -1;
    if (full !== undefined && space > 0) {
      firstName = full.slice(0, space);
      lastName = full.slice(space + 1).trim();
    }
  }
  const companyValue = event.traits.company;
  const company = isBag(companyValue) ? text(companyValue.name) : text(companyValue);

  return compact({
    email: pick(bags, KEYS.email),
    phone: pick(bags, KEYS.phone),
    firstName,
    lastName,
    gender: pick(bags, KEYS.gender),
    birthday: pick(bags, KEYS.birthday),
    title: pick([event.traits], KEYS.title),
    company,
    street: pick(addressBags, ADDRESS_KEYS.street),
    city: pick(addressBags, ADDRESS_KEYS.city),
    state: pick(addressBags, ADDRESS_KEYS.state),
    postalCode: pick(addressBags, ADDRESS_KEYS.postalCode),
    country: pick(addressBags, ADDRESS_KEYS.country),
  });
}

/** The person's country as an ISO alpha-2 hint for phone parsing, when it looks like one. */
export function countryHint(person: Person): { country: string } | undefined {
  const country = person.country?.trim();
  return country !== undefined && /^[A-Za-z]{2}$/.test(country)
    ? { country: country.toUpperCase() }
    : undefined;
}
