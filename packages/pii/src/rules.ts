// The `max` metadata: with `min`, `isValid()` only checks the length (as `isPossible()` does), and telling an
// already international number from a national one needs the digit patterns.
import {
  getCountryCallingCode,
  isSupportedCountry,
  type PhoneNumber,
  parsePhoneNumberFromString,
} from 'libphonenumber-js/max';
import { accept, type Outcome, reject } from './outcome';
import { COUNTRY_NAMES, exactIndex, STATE_NAMES } from './regions';

/**
 * Field rules: pure functions from the raw text of one field to its normalised form. Vendor profiles and
 * the Org Data Layer rules are assembled from these. The `meta*` rules reproduce Meta's capi-param-builder
 * (the implementation behind `UserData.normalize()` in Meta's SDKs since 2026-06) and are pinned by its
 * test suite; the others follow each vendor's documentation (see README.md for the table).
 */

/** Per-call facts a rule may use. */
export interface RuleContext {
  /** Current time, for the date-of-birth year window. */
  readonly now: () => Date;
  /** ISO-3166 alpha-2 country of the person, used to complete national phone numbers. */
  readonly country?: string | undefined;
}

export type Rule = (raw: string, ctx: RuleContext) => Outcome;

// JavaScript's \s (and String#trim) cover Unicode spaces and line terminators, as Meta's regexes do.
const WHITESPACE = /\s+/g;
const ASCII_PUNCTUATION_OR_WHITESPACE = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~\s]+/g;
const NOT_LATIN_ALPHANUMERIC = /[^a-zA-Z0-9]+/g;
const NOT_DIGIT = /\D+/g;

// ── email ────────────────────────────────────────────────────────────────────────────────────────────

// An approximation of RFC 2822's addr-spec (dot-atom local part, LDH domain labels, at least one dot in
// the domain) — the grammar Meta validates with. Linear-time: no nested ambiguous quantifiers.
const ATOM = "[\\w!#$%&'*+/=?^`{|}~-]+";
const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
const RFC2822_EMAIL = new RegExp(`^${ATOM}(?:\\.${ATOM})*@(?:${LABEL}\\.)+${LABEL}$`, 'i');

/** Meta: lowercase, trim, then the address must match the RFC 2822 approximation. */
export const metaEmail: Rule = (raw) => {
  const value = raw.toLowerCase().trim();
  if (value === '') return reject('empty');
  return RFC2822_EMAIL.test(value) ? accept(value) : reject('invalid');
};

// One "@", something on each side, a dot in the domain, no whitespace. Vendors other than Meta do not
// publish a grammar; this only keeps obvious non-addresses from being hashed and sent.
const PLAUSIBLE_EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Trim + lowercase (TikTok, Snap, Pinterest, LinkedIn, Google before its Gmail rule). */
export const plainEmail: Rule = (raw) => {
  const value = raw.trim().toLowerCase();
  if (value === '') return reject('empty');
  return PLAUSIBLE_EMAIL.test(value) ? accept(value) : reject('invalid');
};

/**
 * Google's rules for the local part of an address:
 * - `documented` (default): remove "." from the local part of gmail.com / googlemail.com addresses only —
 *   what the Google Ads API and GA4 user-provided-data pages specify;
 * - `gmail-strip-plus-suffix`: also drop a "+suffix" for those domains (RudderStack's implementation);
 * - `strip-dots-and-plus-all-domains`: remove every "." and "+" of the local part for every domain (the
 *   google-ads-python example since 2026-01; VENDORS.md §12 doubts it is authoritative).
 */
export type GoogleEmailRule = 'documented' | 'gmail-strip-plus-suffix' | 'strip-dots-and-plus-all-domains';

const GMAIL_DOMAINS: ReadonlySet<string> = new Set(['gmail.com', 'googlemail.com']);

export function googleEmail(rule: GoogleEmailRule): Rule {
  return (raw, ctx) => {
    const base = plainEmail(raw, ctx);
    if (!base.ok) return base;
    const at = base.value.lastIndexOf('@');
    let local = base.value.slice(0, at);
    const domain = base.value.slice(at + 1);
    if (rule === 'strip-dots-and-plus-all-domains') {
      local = local.replace(/[.+]/g, '');
    } else if (GMAIL_DOMAINS.has(domain)) {
      if (rule === 'gmail-strip-plus-suffix') {
        const plus = local.indexOf('+');
        if (plus >= 0) local = local.slice(0, plus);
      }
      local = local.replace(/\./g, '');
    }
    return local === '' ? reject('invalid') : accept(`${local}@${domain}`);
  };
}

// ── phone ────────────────────────────────────────────────────────────────────────────────────────────

/**
 * With a country hint and no international prefix ("+" or "00"), the digits are read two ways: as already
 * starting with a country code (Meta documents "4915112345678"; many CRMs store numbers so), and as a
 * national number of the hinted country. Returns the E.164 digits (no "+") of the first reading that holds:
 *
 * 1. the international reading, when it is a valid number with the hinted country's calling code
 *    ("4915112345678" + DE stays +49 151…, instead of getting a second 49);
 * 2. the national reading, when valid and written the way that country writes national numbers, trunk
 *    prefix included ("(479) 281-3113" + US is +1 479…, although +47 92813113 is a valid Norwegian number;
 *    "0151 12345678" + DE);
 * 3. the international reading of another country, when valid: a foreign number with its country code
 *    ("33612345678" + DE is French; German numbering is so open that +49 33612345678 is valid too, but a
 *    German national number would be written with its 0);
 * 4. the national reading, when valid without its trunk prefix ("7400 123456" + GB);
 * 5. the national reading, when only possible (the right length): a range newer than the metadata, or a
 *    fictional number such as Ofcom's 07700 900xxx.
 *
 * Undefined when there is no hint or neither reading fits, so the caller falls back to its vendor's plain
 * rule. Validity needs the digit patterns of the `max` metadata (see the import).
 */
function hintedInternationalDigits(raw: string, ctx: RuleContext): string | undefined {
  const country = ctx.country;
  if (country === undefined || !isSupportedCountry(country)) return undefined;
  const trimmed = raw.trim();
  if (trimmed.startsWith('+') || trimmed.startsWith('00')) return undefined;
  // A leading trunk "0" ("0151…", "(0)151…") never starts a country code: `+0…` does not parse.
  const international = parsePhoneNumberFromString(`+${trimmed}`);
  // This runs per event and vendor; `isValid()` and formatting cost tens of µs, so each is only asked when
  // the answer can change the outcome.
  const internationalValid = international?.isValid() === true;
  if (internationalValid && international?.countryCallingCode === getCountryCallingCode(country)) {
    return international.number.slice(1); // 1.
  }
  const national = parsePhoneNumberFromString(trimmed, { defaultCountry: country, extract: false });
  if (!internationalValid) {
    // 2., 4. and 5. (a valid number is a possible one).
    return national !== undefined && (national.isPossible() || national.isValid())
      ? national.number.slice(1)
      : undefined;
  }
  if (national?.isValid() && writtenNationally(trimmed, national)) return national.number.slice(1); // 2.
  return international?.number.slice(1); // 3.
}

/** Whether the input has exactly the digits of the number's national format (trunk prefix and all). */
function writtenNationally(raw: string, national: PhoneNumber): boolean {
  return national.formatNational().replace(NOT_DIGIT, '') === raw.replace(NOT_DIGIT, '');
}

/**
 * Meta (and Pinterest): every non-digit removed, then leading zeros — so "+1 (616) 954-7888", "001 616…" and
 * "1 616…" agree. No length check and no country inference: the caller must include the country code (or
 * pass a country hint, which completes national numbers first).
 */
export const digitsPhone: Rule = (raw, ctx) => {
  const completed = hintedInternationalDigits(raw, ctx);
  if (completed !== undefined) return accept(completed);
  return accept(raw.replace(NOT_DIGIT, '').replace(/^0+/, ''));
};

const E164_MAX_DIGITS = 15;

/**
 * Google and TikTok: E.164 with the "+". A "00" international prefix becomes "+"; without any prefix the
 * digits are taken to start with the country code (or are completed from the country hint). Numbers that
 * cannot be E.164 (more than 15 digits, or a country code starting with 0) are rejected, not sent.
 */
export const e164Phone: Rule = (raw, ctx) => {
  const completed = hintedInternationalDigits(raw, ctx);
  let digits: string;
  if (completed !== undefined) {
    digits = completed;
  } else {
    const trimmed = raw.trim();
    digits = trimmed.replace(NOT_DIGIT, '');
    if (!trimmed.startsWith('+') && trimmed.startsWith('00')) digits = digits.slice(2);
  }
  if (digits === '') return reject('empty');
  if (digits.length > E164_MAX_DIGITS || digits.startsWith('0')) return reject('invalid');
  return accept(`+${digits}`);
};

// "(+|00)<country code><space or dash><national number>", as in Snap's SDKs.
const SNAP_INTERNATIONAL = /^(?:\+|00)(\d+)[\s-](.*)$/s;

/**
 * Snap: country code + national number, digits only; a "+"/"00" prefix is dropped and one national
 * leading "0" removed. A number with no international prefix gets `defaultCallingCode` ("1", the SDK's US
 * default) — or the calling code of the country hint. Unlike the SDK, a compact "+447…" (no separator after
 * the country code) is read as already international instead of getting a second country code.
 */
export function snapPhone(defaultCallingCode: string): Rule {
  return (raw, ctx) => {
    const trimmed = raw.trim();
    const delimited = SNAP_INTERNATIONAL.exec(trimmed);
    if (delimited !== null) {
      const national = (delimited[2] ?? '').replace(NOT_DIGIT, '').replace(/^0/, '');
      return national === '' ? reject('invalid') : accept(`${delimited[1] ?? ''}${national}`);
    }
    const digits = trimmed.replace(NOT_DIGIT, '');
    if (digits === '') return reject('empty');
    if (trimmed.startsWith('+')) return accept(digits);
    if (trimmed.startsWith('00')) return accept(digits.slice(2));
    const completed = hintedInternationalDigits(trimmed, ctx);
    if (completed !== undefined) return accept(completed);
    return accept(`${defaultCallingCode}${digits.replace(/^0/, '')}`);
  };
}

// ── names and places ─────────────────────────────────────────────────────────────────────────────────

/** Meta fn/ln: lowercase; remove whitespace and ASCII punctuation. Letters of every script are kept. */
export const metaName: Rule = (raw) => accept(raw.replace(ASCII_PUNCTUATION_OR_WHITESPACE, '').toLowerCase());

/** Meta ct: only a–z and 0–9 are kept (non-Latin letters go too); the result must start with a letter. */
export const metaCity: Rule = (raw) => {
  const value = raw.replace(NOT_LATIN_ALPHANUMERIC, '').toLowerCase();
  return /^[a-z]/.test(value) ? accept(value) : reject('invalid');
};

const STATE_INDEX = exactIndex(STATE_NAMES);
const COUNTRY_INDEX = exactIndex(COUNTRY_NAMES);

/**
 * Lowercase a–z only. Accents are folded first ("Côte d'Ivoire" → "cotedivoire"), which Meta does not do:
 * it drops the accented letter ("ctedivoire"), and the name no longer matches. Every vector in Meta's suite
 * gives the same code either way.
 */
function latinLetters(raw: string): string {
  return raw
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z]+/g, '');
}

/**
 * Meta st / country: letters only; a 2-letter input is taken as a code; otherwise a full name (exact, else
 * the first table name contained in the input) gives the code; otherwise the first two letters are used.
 */
function twoLetterCode(names: typeof STATE_NAMES, index: ReadonlyMap<string, string>): Rule {
  return (raw) => {
    const letters = latinLetters(raw);
    let code = letters;
    if (letters.length !== 2) {
      code = index.get(letters) ?? names.find(([name]) => letters.includes(name))?.[1] ?? letters;
    }
    code = code.slice(0, 2);
    return /^[a-z]/.test(code) ? accept(code) : reject('invalid');
  };
}

export const metaState: Rule = twoLetterCode(STATE_NAMES, STATE_INDEX);
export const metaCountry: Rule = twoLetterCode(COUNTRY_NAMES, COUNTRY_INDEX);

/**
 * ISO-3166 alpha-2 country code, strict: a two-letter input, or an exact country name from the table;
 * anything else is rejected (no truncation guesses). Lowercase; callers uppercase where a vendor wants it.
 */
export const isoCountry: Rule = (raw) => {
  const letters = latinLetters(raw);
  if (letters.length === 2) return accept(letters);
  const code = COUNTRY_INDEX.get(letters);
  return code === undefined ? reject('invalid') : accept(code);
};

/**
 * Meta zp: lowercase, keep what precedes the first "-", trim; at least 2 characters. Not cut to 5 and not
 * restricted to digits, so postcodes of every country survive ("SW1A1AA" → "sw1a1aa").
 */
export const metaZip: Rule = (raw) => {
  const value = (raw.toLowerCase().split('-', 1)[0] ?? '').trim();
  return value.length >= 2 ? accept(value) : reject('invalid');
};

/** Pinterest (documented): US ZIP+4 cut to the ZIP, whitespace removed, lowercase. */
export const zipBeforeDash: Rule = (raw) =>
  accept((raw.split('-', 1)[0] ?? '').replace(WHITESPACE, '').toLowerCase());

/** Digits only (RudderStack's Pinterest zp). */
export const digitsOnly: Rule = (raw) => accept(raw.replace(NOT_DIGIT, ''));

/** Google names, city and region: remove digits and symbols, collapse spaces, lowercase. Accents stay. */
export const googleName: Rule = (raw) =>
  accept(
    raw
      .replace(/[^\p{L}\p{M}\s]+/gu, '')
      .replace(WHITESPACE, ' ')
      .trim()
      .toLowerCase(),
  );

/** Google street: remove symbols (digits stay), collapse spaces, lowercase. */
export const googleStreet: Rule = (raw) =>
  accept(
    raw
      .replace(/[^\p{L}\p{M}\p{N}\s]+/gu, '')
      .replace(WHITESPACE, ' ')
      .trim()
      .toLowerCase(),
  );

// ── gender and dates ─────────────────────────────────────────────────────────────────────────────────

const MALE_WORDS: ReadonlySet<string> = new Set(
  (
    'm man male boy gentleman guy sir mister mr son father dad daddy papa uncle nephew brother husband ' +
    'boyfriend groom widower king prince duke count emperor god lord lad fellow chap bloke dude he him his himself'
  ).split(' '),
);
const FEMALE_WORDS: ReadonlySet<string> = new Set(
  (
    "f woman female girl lady miss ms mrs madam ma'am daughter mother mom mama mommy aunt niece sister wife " +
    'girlfriend bride widow queen princess duchess countess empress goddess maiden lass gal chick dame belle ' +
    'she her hers herself'
  ).split(' '),
);
const NON_BINARY_WORDS: ReadonlySet<string> = new Set(['n', 'nonbinary', 'non-binary', 'non binary']);

/** Meta ge: the whole (trimmed, lowercased) value must be a known word for male (m) or female (f). */
export const metaGender: Rule = (raw) => {
  const word = raw.trim().toLowerCase();
  if (MALE_WORDS.has(word)) return accept('m');
  if (FEMALE_WORDS.has(word)) return accept('f');
  return reject('invalid');
};

/** Pinterest (documented): f, m, or n for non-binary. */
export const pinterestGender: Rule = (raw, ctx) => {
  const word = raw.trim().toLowerCase();
  return NON_BINARY_WORDS.has(word) ? accept('n') : metaGender(raw, ctx);
};

const EARLIEST_BIRTH_YEAR = 1800;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Meta db → YYYYMMDD. Non-digits split the input into groups. With three or more groups, the first three
 * are read as a date: a group above 31 is the year (first, second, else third position) and, of the other
 * two, one above 12 is the day, else month comes first when the year leads and month/day otherwise (US
 * order). The year must lie in 1800..now+1, month 1..12, day 1..31. Failing that, a single 8-digit group is
 * taken as YYYYMMDD unchecked. Only ASCII digits count (full-width digits are not digits here).
 */
export const metaDateOfBirth: Rule = (raw, ctx) => {
  const groups = raw.split(/\D+/).filter((g) => g !== '');
  if (groups.length >= 3) {
    const [a, b, c] = groups.slice(0, 3).map((g) => Number.parseInt(g, 10)) as [number, number, number];
    let year: number;
    let month: number;
    let day: number;
    if (a > 31) {
      [year, month, day] = [a, b > 12 ? c : b, b > 12 ? b : c];
    } else if (b > 31) {
      [year, month, day] = [b, c > 12 ? a : c, c > 12 ? c : a];
    } else {
      [year, month, day] = [c, a > 12 ? b : a, a > 12 ? a : b];
    }
    const maxYear = ctx.now().getUTCFullYear() + 1;
    if (
      year >= EARLIEST_BIRTH_YEAR &&
      year <= maxYear &&
      month >= 1 &&
      month <= 12 &&
      day >= 1 &&
      day <= 31
    ) {
      return accept(`${pad(year, 4)}${pad(month, 2)}${pad(day, 2)}`);
    }
  }
  const [only] = groups;
  if (groups.length === 1 && only !== undefined && only.length === 8) return accept(only);
  return reject('invalid');
};

/** Legacy Meta dobd / dobm: one or two digits within [1, max], zero-padded to two. */
export function dayOrMonth(max: number): Rule {
  return (raw) => {
    const value = raw.trim();
    if (!/^\d{1,2}$/.test(value)) return reject('invalid');
    const n = Number.parseInt(value, 10);
    return n >= 1 && n <= max ? accept(pad(n, 2)) : reject('invalid');
  };
}

/** Legacy Meta doby: exactly four digits. */
export const fourDigitYear: Rule = (raw) => {
  const value = raw.trim();
  return /^\d{4}$/.test(value) ? accept(value) : reject('invalid');
};

// ── identifiers and generic text ─────────────────────────────────────────────────────────────────────

/** Meta external_id: lowercase, all whitespace removed; punctuation and other scripts kept. */
export const metaExternalId: Rule = (raw) => accept(raw.replace(WHITESPACE, '').toLowerCase());

/** Trim + lowercase: Snap's generic string rule, Pinterest's default, device ids. */
export const trimLower: Rule = (raw) => accept(raw.trim().toLowerCase());

/** Trim only: opaque ids whose case is meaningful (TikTok/Pinterest external_id), clear-text labels. */
export const trimOnly: Rule = (raw) => accept(raw.trim());

/** Legacy Meta f5first / f5last / fi: the first `n` characters of the Meta-normalised name. */
export function namePrefix(n: number): Rule {
  return (raw, ctx) => {
    const name = metaName(raw, ctx);
    return name.ok ? accept(Array.from(name.value).slice(0, n).join('')) : name;
  };
}

/** ISO-4217 currency code, lowercase (Meta's legacy normaliser; sent in clear). */
export const currencyCode: Rule = (raw) => {
  const value = raw.trim().toLowerCase();
  return /^[a-z]{3}$/.test(value) ? accept(value) : reject('invalid');
};

/** Uppercase ISO-3166 alpha-2 (Google countryCode, LinkedIn userInfo.countryCode; both in clear). */
export const isoCountryUpper: Rule = (raw, ctx) => {
  const code = isoCountry(raw, ctx);
  return code.ok ? accept(code.value.toUpperCase()) : code;
};
