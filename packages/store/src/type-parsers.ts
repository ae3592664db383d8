import pg from 'pg';

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

/**
 * The `serializers` option of PGlite.
 *
 * A Uint8Array returned by a serializer is sent as the parameter's binary form (its serializer type says
 * string, but PGlite's Bind writes any ArrayBuffer view as a binary value with native copies). Signal uses that
 * for two types:
 *
 * - `bytea`: the binary form of bytea is the bytes themselves, so a Buffer or Uint8Array goes into WASM as is,
 *   with no hex text built in JavaScript (PGlite's default formats each byte through `toString(16)`; even
 *   Buffer's native hex encoder doubled the bytes crossing the boundary). Anything else is refused with a
 *   TypeError rather than stringified. node-postgres sends a Buffer as a binary parameter too, so both
 *   adapters bind bytes the same way.
 * - `text`: a Buffer bound to a text parameter is passed through as the parameter's binary form, which for
 *   `text` is its UTF-8 bytes: PGlite copies them into WASM natively instead of measuring a JavaScript
 *   string's UTF-8 length character by character (twice). Bytes that are not UTF-8 are refused by Postgres.
 *   This is what node-postgres does with a Buffer on the `pg` adapter as well. Strings keep PGlite's text path.
 *
 * Results still come back in the text form (PGlite asks for text results), so a `bytea` column is read as hex
 * and turned into a Buffer by pg's parser (native hex decoding).
 */
export function pgliteSerializers(): Record<number, (value: unknown) => string> {
  return {
    [OID.bytea]: (value) => {
      if (!(value instanceof Uint8Array))
        throw new TypeError('bytea parameters must be a Buffer or Uint8Array');
      // Returned as is: PGlite binds an ArrayBuffer view as a binary parameter (its serializer type says string).
      return value as unknown as string;
    },
    [OID.text]: (value) => (value instanceof Uint8Array ? (value as unknown as string) : String(value)),
  };
}
