import { CryptoError } from './errors';

/**
 * Data classes with keys of their own (ARCHITECTURE §5: DEKs per data class). Closed on purpose: each class
 * is a key to derive, cache and, with a KMS provider, wrap, so the set must stay small and known.
 */
export type DataClass = 'credentials' | 'identity' | 'tokens';
export const DATA_CLASSES: readonly DataClass[] = Object.freeze(['credentials', 'identity', 'tokens']);

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

/**
 * The context bytes handed to Cobblestone:
 *
 *   format version (1) ‖ key id (16) ‖ field* ,   field = tag (1) ‖ length (u16 BE) ‖ UTF-8 bytes
 *
 * Fields appear in the fixed tag order purpose, dataClass, table, column, rowId, then one `0x10 ‖ len ‖ key ‖
 * len ‖ value` per extra entry in sorted key order; absent fields are omitted. The prefix has a fixed length,
 * every field carries its tag and length, and strings must be well-formed UTF-16, so two different contexts
 * never encode to the same bytes.
 */
export function encodeContext(version: number, keyId: Uint8Array, context: EncryptionContext): Buffer {
  const purpose = context.purpose;
  const dataClass = context.dataClass;
  const table = context.table;
  const column = context.column;
  const rowId = canonicalRowId(context.rowId);
  const extra = context.extra;

  let length = 1 + keyId.byteLength + fieldLength('purpose', purpose);
  if (dataClass !== undefined) {
    if (!DATA_CLASSES.includes(dataClass))
      throw invalidContext(`dataClass must be one of ${DATA_CLASSES.join(', ')}`);
    length += fieldLength('dataClass', dataClass);
  }
  if (table !== undefined) length += fieldLength('table', table);
  if (column !== undefined) length += fieldLength('column', column);
  if (rowId !== undefined) length += fieldLength('rowId', rowId);
  let extraKeys: string[] | undefined;
  if (extra !== undefined) {
    extraKeys = Object.keys(extra).sort();
    if (extraKeys.length > MAX_CONTEXT_EXTRA_ENTRIES) {
      throw invalidContext(`extra may hold at most ${MAX_CONTEXT_EXTRA_ENTRIES} entries`);
    }
    for (const key of extraKeys) {
      // One tag for the pair: tag ‖ len ‖ key ‖ len ‖ value.
      length += fieldLength('extra key', key) + fieldLength(`extra.${key}`, extra[key]) - 1;
    }
  }

  const out = Buffer.allocUnsafe(length);
  out[0] = version;
  out.set(keyId, 1);
  let at = writeField(out, 1 + keyId.byteLength, TAG_PURPOSE, purpose);
  if (dataClass !== undefined) at = writeField(out, at, TAG_DATA_CLASS, dataClass);
  if (table !== undefined) at = writeField(out, at, TAG_TABLE, table);
  if (column !== undefined) at = writeField(out, at, TAG_COLUMN, column);
  if (rowId !== undefined) at = writeField(out, at, TAG_ROW_ID, rowId);
  if (extra !== undefined && extraKeys !== undefined) {
    for (const key of extraKeys) {
      at = writeField(out, at, TAG_EXTRA, key);
      at = writeString(out, at, extra[key] ?? '');
    }
  }
  if (at !== length) throw new Error('encodeContext: length mismatch');
  return out;
}

/** The row id as stored in the context (and in audit events): decimal for numbers and bigints. */
export function canonicalRowId(rowId: string | number | bigint | undefined): string | undefined {
  if (rowId === undefined || typeof rowId === 'string') return rowId;
  if (typeof rowId === 'bigint') return rowId.toString(10);
  if (!Number.isSafeInteger(rowId))
    throw invalidContext('rowId must be a string, a bigint or a safe integer');
  return String(rowId);
}

/**
 * Validates a present field and returns its encoded size (tag + u16 length + UTF-8 bytes). Purpose is
 * validated the same way, so a missing purpose fails here too.
 */
function fieldLength(name: string, value: unknown): number {
  if (typeof value !== 'string') {
    throw invalidContext(value === undefined ? `${name} is required` : `${name} must be a string`);
  }
  if (value.length === 0) throw invalidContext(`${name} must not be empty`);
  if (value.length > MAX_CONTEXT_FIELD_BYTES) throw tooLong(name);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_CONTEXT_FIELD_BYTES) throw tooLong(name);
  // The cheap test first: almost every value has no surrogate at all.
  if (ANY_SURROGATE.test(value) && LONE_SURROGATE.test(value)) {
    throw invalidContext(`${name} must be well-formed Unicode`);
  }
  return 3 + bytes;
}

function tooLong(name: string): CryptoError {
  return invalidContext(`${name} must be at most ${MAX_CONTEXT_FIELD_BYTES} bytes of UTF-8`);
}

function writeField(out: Buffer, at: number, tag: number, value: string): number {
  out[at] = tag;
  return writeString(out, at + 1, value);
}

function writeString(out: Buffer, at: number, value: string): number {
  const written = out.write(value, at + 2, 'utf8');
  out.writeUInt16BE(written, at);
  return at + 2 + written;
}

function invalidContext(problem: string): CryptoError {
  return new CryptoError('invalid_context', `invalid encryption context: ${problem}`);
}
