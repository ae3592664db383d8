import { CryptoError } from './errors';

/**
 * Data classes with keys of their own (ARCHITECTURE §5: DEKs per data class). Closed on purpose: each class
 * is a key to derive, cache and, with a KMS provider, wrap, so the set must stay small and known.
 */
export type DataClass = 'credentials' | 'identity' | 'tokens' | 'bus';
export const DATA_CLASSES: readonly DataClass[] = Object.freeze(['credentials', 'identity', 'tokens', 'bus']);

/**
 * Where a ciphertext belongs. It is bound into the key commitment and never stored: the reader rebuilds it
 * from where the ciphertext lives, so a ciphertext copied to another row, column, table or purpose does not
 * open. Build it from trusted facts (the row being read), never from the ciphertext or request input alone.
 */
export interface EncryptionContext {
  /** What the plaintext is for, e.g. `integration-credential`, `identity-trait`, `xdomain-token`. Required. */
  readonly purpose: string;
  /** Selects the data key; absent means the general-purpose data key. */
  readonly dataClass?: DataClass;
  readonly table?: string;
  readonly column?: string;
  /** The owning row. Numbers and bigints are encoded as their decimal string, so `42`, `42n` and `'42'` agree. */
  readonly rowId?: string | number | bigint;
  /** Further binding facts (e.g. `{ aud: 'shop.example' }` for a token). Keys are encoded sorted. */
  readonly extra?: Readonly<Record<string, string>>;
}

/** Limits keep the encoding bounded; real values are far smaller. */
export const MAX_CONTEXT_FIELD_BYTES = 1024;
export const MAX_CONTEXT_EXTRA_ENTRIES = 16;

const TAG_PURPOSE = 0x01;
const TAG_DATA_CLASS = 0x02;
const TAG_TABLE = 0x03;
const TAG_COLUMN = 0x04;
const TAG_ROW_ID = 0x05;
const TAG_EXTRA = 0x10;

/** A lone UTF-16 surrogate: it would encode as U+FFFD and collide with a real U+FFFD. */
const LONE_SURROGATE = /\p{Cs}/u;
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/** Fixed-field encodings a `ContextEncoder` keeps by default (a service has a handful of distinct ones). */
export const DEFAULT_CONTEXT_CACHE_ENTRIES = 256;

/**
 * The context bytes handed to Cobblestone:
 *
 *   format version (1) ‖ key id (16) ‖ field* ,   field = tag (1) ‖ length (u16 BE) ‖ UTF-8 bytes
 *
 * Fields appear in the fixed tag order purpose, dataClass, table, column, rowId, then one `0x10 ‖ len ‖ key ‖
 * len ‖ value` per extra entry in sorted key order; absent fields are omitted. The prefix has a fixed length,
 * every field carries its tag and length, and strings must be well-formed UTF-16, so two different contexts
 * never encode to the same bytes. Returns memory of its own; services encode through a `ContextEncoder`,
 * which caches the fixed fields and reuses its scratch.
 */
export function encodeContext(version: number, keyId: Uint8Array, context: EncryptionContext): Buffer {
  return Buffer.from(new ContextEncoder(0).encode(version, keyId, context));
}

/** purpose → dataClass → table → column → the encoded fields purpose ‖ dataClass ‖ table ‖ column. */
type FieldTrie = Map<
  string,
  Map<string | undefined, Map<string | undefined, Map<string | undefined, Buffer>>>
>;

/**
 * Encodes contexts for one service, on the hot path of every seal and open. Contexts repeat: the same
 * purpose, data class, table and column with a different row id. So the validated encoding of those four
 * fields is kept (bounded, recently used entries survive) and only the version, key id, row id and extra
 * entries are written per call, into scratch memory reused across calls.
 *
 * Hazard: `encode` returns a view of that scratch, valid until the next call on this encoder. The bytes are
 * public (the context is not secret), and every user is synchronous: encode, derive, done.
 */
export class ContextEncoder {
  readonly #capacity: number;
  /**
   * Two generations of half the capacity each: a hit in `#older` is copied into `#recent`; when `#recent` is
   * full it becomes `#older` and the old `#older` is dropped. Recently used entries survive, nothing grows.
   */
  #recent: FieldTrie = new Map();
  #older: FieldTrie = new Map();
  #recentSize = 0;
  #out = Buffer.allocUnsafeSlow(512);
  /** Views of `#out` by length, so the hot path hands out a view without creating one. */
  readonly #views = new Map<number, Buffer>();

  /** `cacheEntries` bounds the fixed-field encodings kept (rounded up to even); 0 disables the cache. */
  constructor(cacheEntries: number = DEFAULT_CONTEXT_CACHE_ENTRIES) {
    if (!Number.isSafeInteger(cacheEntries) || cacheEntries < 0) {
      throw new RangeError('cacheEntries must be a non-negative safe integer');
    }
    this.#capacity = cacheEntries;
  }

  /** Fixed-field encodings currently held (at most the capacity, rounded up to even). */
  get size(): number {
    let size = 0;
    for (const trie of [this.#recent, this.#older]) {
      for (const byDataClass of trie.values()) {
        for (const byTable of byDataClass.values()) {
          for (const byColumn of byTable.values()) size += byColumn.size;
        }
      }
    }
    return size;
  }

  /** The context bytes (see `encodeContext`), as a view of scratch memory valid until the next call. */
  encode(version: number, keyId: Uint8Array, context: EncryptionContext): Buffer {
    const rowId = canonicalRowId(context.rowId);
    const fields = this.#fixedFields(context);
    const extra = context.extra;
    const head = 1 + keyId.byteLength;
    let at = head + fields.length;
    this.#reserve(at + MAX_FIELD_LENGTH);
    const out = this.#out;
    out[0] = version;
    out.set(keyId, 1);
    out.set(fields, head);
    if (rowId !== undefined) at = writeField(out, at, TAG_ROW_ID, 'rowId', rowId);
    if (extra !== undefined) at = this.#writeExtra(at, extra);
    let view = this.#views.get(at);
    if (view === undefined) {
      if (this.#views.size >= 16) this.#views.clear();
      view = this.#out.subarray(0, at);
      this.#views.set(at, view);
    }
    return view;
  }

  /** purpose ‖ dataClass ‖ table ‖ column, validated: from the cache when this combination was seen. */
  #fixedFields(context: EncryptionContext): Buffer {
    const { purpose, dataClass, table, column } = context;
    const recent = this.#recent.get(purpose)?.get(dataClass)?.get(table)?.get(column);
    if (recent !== undefined) return recent;
    const older = this.#older.get(purpose)?.get(dataClass)?.get(table)?.get(column);
    const fields = older ?? encodeFixedFields(purpose, dataClass, table, column);
    if (this.#capacity > 0) this.#remember(purpose, dataClass, table, column, fields);
    return fields;
  }

  #remember(
    purpose: string,
    dataClass: string | undefined,
    table: string | undefined,
    column: string | undefined,
    fields: Buffer,
  ): void {
    if (this.#recentSize >= Math.ceil(this.#capacity / 2)) {
      this.#older = this.#recent;
      this.#recent = new Map();
      this.#recentSize = 0;
    }
    const byDataClass = getOrCreate(this.#recent, purpose, () => new Map());
    const byTable = getOrCreate(byDataClass, dataClass, () => new Map());
    getOrCreate(byTable, table, () => new Map()).set(column, fields);
    this.#recentSize++;
  }

  #writeExtra(start: number, extra: Readonly<Record<string, string>>): number {
    const keys = Object.keys(extra).sort();
    if (keys.length > MAX_CONTEXT_EXTRA_ENTRIES) {
      throw invalidContext(`extra may hold at most ${MAX_CONTEXT_EXTRA_ENTRIES} entries`);
    }
    let at = start;
    for (const key of keys) {
      // One tag for the pair: tag ‖ len ‖ key ‖ len ‖ value.
      this.#reserve(at + 2 * MAX_FIELD_LENGTH);
      at = writeField(this.#out, at, TAG_EXTRA, 'extra key', key);
      at = writeString(this.#out, at, `extra.${key}`, extra[key]);
    }
    return at;
  }

  #reserve(size: number): void {
    if (this.#out.length >= size) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(size, this.#out.length * 2));
    this.#out.copy(grown);
    this.#out = grown;
    this.#views.clear();
  }
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** The encoded fixed fields, validated, in memory of their own (they are cached). */
function encodeFixedFields(purpose: unknown, dataClass: unknown, table: unknown, column: unknown): Buffer {
  const out = Buffer.allocUnsafeSlow(4 * MAX_FIELD_LENGTH);
  let at = writeField(out, 0, TAG_PURPOSE, 'purpose', purpose);
  if (dataClass !== undefined) {
    if (!DATA_CLASSES.some((known) => known === dataClass)) {
      throw invalidContext(`dataClass must be one of ${DATA_CLASSES.join(', ')}`);
    }
    at = writeField(out, at, TAG_DATA_CLASS, 'dataClass', dataClass);
  }
  if (table !== undefined) at = writeField(out, at, TAG_TABLE, 'table', table);
  if (column !== undefined) at = writeField(out, at, TAG_COLUMN, 'column', column);
  return Buffer.from(out.subarray(0, at));
}

/** The row id as stored in the context (and in audit events): decimal for numbers and bigints. */
export function canonicalRowId(rowId: string | number | bigint | undefined): string | undefined {
  if (rowId === undefined || typeof rowId === 'string') return rowId;
  if (typeof rowId === 'bigint') return rowId.toString(10);
  if (!Number.isSafeInteger(rowId))
    throw invalidContext('rowId must be a string, a bigint or a safe integer');
  return String(rowId);
}

/** Most bytes one field takes: tag, u16 length and the longest value allowed. */
const MAX_FIELD_LENGTH = 3 + MAX_CONTEXT_FIELD_BYTES;

/** Writes tag ‖ u16 length ‖ UTF-8 of `value` at `at`; `out` must have `MAX_FIELD_LENGTH` bytes of room. */
function writeField(out: Buffer, at: number, tag: number, name: string, value: unknown): number {
  out[at] = tag;
  return writeString(out, at + 1, name, value);
}

/**
 * Validates a present field (purpose is validated the same way, so a missing purpose fails here too) and
 * writes u16 length ‖ UTF-8 at `at`; `out` must have `MAX_FIELD_LENGTH - 1` bytes of room. ASCII, almost
 * every value, is copied by a loop that also rules out surrogates; anything else goes through the UTF-8
 * encoder after the lone-surrogate check.
 */
function writeString(out: Buffer, at: number, name: string, value: unknown): number {
  if (typeof value !== 'string') {
    throw invalidContext(value === undefined ? `${name} is required` : `${name} must be a string`);
  }
  const length = value.length;
  if (length === 0) throw invalidContext(`${name} must not be empty`);
  // UTF-8 never takes fewer bytes than UTF-16 code units.
  if (length > MAX_CONTEXT_FIELD_BYTES) throw tooLong(name);
  const start = at + 2;
  let ascii = true;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code > 0x7f) {
      ascii = false;
      break;
    }
    out[start + i] = code;
  }
  let written = length;
  if (!ascii) {
    if (ANY_SURROGATE.test(value) && LONE_SURROGATE.test(value)) {
      throw invalidContext(`${name} must be well-formed Unicode`);
    }
    // Measure first: `write` stops silently at the end of `out`, so a too-long value must not reach it.
    written = Buffer.byteLength(value, 'utf8');
    if (written > MAX_CONTEXT_FIELD_BYTES) throw tooLong(name);
    out.write(value, start, written, 'utf8');
  }
  out[at] = written >>> 8;
  out[at + 1] = written & 0xff;
  return start + written;
}

function tooLong(name: string): CryptoError {
  return invalidContext(`${name} must be at most ${MAX_CONTEXT_FIELD_BYTES} bytes of UTF-8`);
}

function invalidContext(problem: string): CryptoError {
  return new CryptoError('invalid_context', `invalid encryption context: ${problem}`);
}
