import { types as pgliteTypes } from '@electric-sql/pglite';
import pg from 'pg';
import { StoreError } from './errors';

/**
 * One result-type mapping for both adapters, so a row read on PGlite looks exactly like the same row read
 * through pg. pg's parsers are the reference; PGlite gets them for every type where its own differ (it
 * returns `int8` as a number or a bigint depending on size, `bytea` via a slow per-byte loop, `date` as a
 * Date at UTC midnight while pg uses local midnight).
 *
 * - `int8`/`bigint`/`bigserial` → string (exact beyond 2^53; JSON-safe). Convert with `BigInt(v)` when needed.
 * - `numeric` → string, `money` → string.
 * - `timestamptz` → Date; `timestamp` (without time zone) → Date read in the process time zone (prefer
 *   timestamptz). `infinity` → `Infinity` (a number), as pg does.
 * - `date` → `'YYYY-MM-DD'` string and `interval` → Postgres text (`'1 day 02:00:00'`): neither has a faithful
 *   Date form.
 * - `bytea` → Buffer. `json`/`jsonb` → parsed value. Arrays of all of these map element-wise.
 */
type TextParser = (text: string) => unknown;

const OID = {
  bytea: 17,
  text: 25,
  int8: 20,
  bytea_array: 1001,
  text_array: 1009,
  int8_array: 1016,
  date: 1082,
  timestamp: 1114,
  timestamp_array: 1115,
  date_array: 1182,
  timestamptz: 1184,
  timestamptz_array: 1185,
  interval: 1186,
  interval_array: 1187,
} as const;

const identity: TextParser = (text) => text;

function pgTextParser(oid: number): TextParser {
  return pg.types.getTypeParser(oid, 'text');
}

/** Types where Signal deliberately departs from pg's defaults (on both adapters). */
const OVERRIDES: ReadonlyMap<number, TextParser> = new Map([
  [OID.date, identity],
  [OID.date_array, pgTextParser(OID.text_array)],
  [OID.interval, identity],
  [OID.interval_array, pgTextParser(OID.text_array)],
]);

/** Types PGlite parses differently from pg; PGlite is given pg's parser for them. */
const PGLITE_USES_PG = [
  OID.int8,
  OID.int8_array,
  OID.bytea,
  OID.bytea_array,
  OID.timestamp,
  OID.timestamp_array,
  OID.timestamptz,
  OID.timestamptz_array,
] as const;

/** The `types` option of a pg Pool. */
export const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format === 'binary') return pg.types.getTypeParser(oid, 'binary');
    return OVERRIDES.get(oid) ?? pg.types.getTypeParser(oid, 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** The `parsers` option of PGlite. */
export function pgliteParsers(): Record<number, TextParser> {
  const parsers: Record<number, TextParser> = {};
  for (const oid of PGLITE_USES_PG) parsers[oid] = pgTextParser(oid);
  for (const [oid, parser] of OVERRIDES) parsers[oid] = parser;
  return parsers;
}

type PrepareValue = (value: unknown) => unknown;

/**
 * pg's own parameter conversion (`prepareValue`, pg/lib/utils.js; the pg module exposes it as `pg.utils`,
 * which @types/pg does not declare): null/undefined → NULL; Buffer and other typed arrays → Buffer, bound as
 * binary; Date → ISO 8601 text with the process's UTC offset; arrays → a Postgres array literal (elements
 * converted the same way); other objects → `toPostgres()` or JSON; anything else → `toString()`.
 */
function pgPrepareValue(): PrepareValue {
  const utils = (pg as unknown as { readonly utils?: { readonly prepareValue?: unknown } }).utils;
  const prepare = utils?.prepareValue;
  if (typeof prepare !== 'function') {
    throw new StoreError(
      'invalid_config',
      'the installed pg has no utils.prepareValue; PGlite cannot bind as pg',
    );
  }
  return prepare as PrepareValue;
}

/**
 * Returns the function that turns query parameters into what PGlite binds. PGlite's own serializers pick a
 * conversion by the parameter's type and fall back to `String(value)`: an object bound to a `text`
 * parameter became `'[object Object]'`, an array `'a,b'`, a Date a locale string, while pg sends JSON, an
 * array literal and ISO 8601 text. So every value first goes through pg's conversion, exactly as the pg
 * adapter's values do, and reaches PGlite as NULL, text or bytes; the serializers below pass those through
 * untouched. The same query with the same values then means the same thing on both adapters.
 */
export function pgliteParams(): (params: readonly unknown[] | undefined) => unknown[] {
  const prepare = pgPrepareValue();
  return (params) => (params === undefined ? [] : params.map((value) => prepare(value)));
}

/**
 * The `serializers` option of PGlite, for values already converted by `pgliteParams` (text, a Buffer, or
 * NULL, which PGlite binds without a serializer).
 *
 * A Uint8Array returned by a serializer is sent as the parameter's binary form (its serializer type says
 * string, but PGlite's Bind writes any ArrayBuffer view as a binary value with native copies), which is what
 * node-postgres does with a Buffer, for every parameter type:
 *
 * - `bytea`: the binary form of bytea is the bytes themselves, so a Buffer or Uint8Array goes into WASM as is,
 *   with no hex text built in JavaScript (PGlite's default formats each byte through `toString(16)`; even
 *   Buffer's native hex encoder doubled the bytes crossing the boundary). Anything else is refused with a
 *   TypeError rather than stringified.
 * - `text`: a Buffer is passed as the parameter's binary form, which for `text` is its UTF-8 bytes: PGlite
 *   copies them into WASM natively instead of measuring a JavaScript string's UTF-8 length character by
 *   character (twice). Bytes that are not UTF-8 are refused by Postgres, on both adapters.
 * - every other type PGlite has a serializer for (numbers, bool, json, timestamps, their arrays): text goes
 *   through unchanged, so Postgres parses the same text pg would have sent (PGlite's own would, e.g., turn
 *   `'infinity'` for a timestamptz into an invalid Date). Types without a serializer get `toString()`, the
 *   identity for text.
 *
 * Results still come back in the text form (PGlite asks for text results), so a `bytea` column is read as hex
 * and turned into a Buffer by pg's parser (native hex decoding).
 */
export function pgliteSerializers(): Record<number, (value: unknown) => string> {
  // Returned as is: a string is bound as text, a Buffer as the binary form (the cast only satisfies the type).
  const asIs = (value: unknown): string => value as string;
  const serializers: Record<number, (value: unknown) => string> = {};
  for (const key of Object.keys(pgliteTypes.serializers)) {
    if (/^\d+$/.test(key)) serializers[Number(key)] = asIs;
  }
  serializers[OID.text] = asIs;
  serializers[OID.bytea] = (value) => {
    if (!(value instanceof Uint8Array))
      throw new TypeError('bytea parameters must be a Buffer or Uint8Array');
    return asIs(value);
  };
  return serializers;
}
