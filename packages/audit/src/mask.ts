import { canonicalJson, isPlainObject, type JsonValue, storableKey, toJsonValue } from './json';

/** What a masked value reads as. */
export const MASK = '••••';
/** What the new value of a masked field reads as when it differs from the old one. */
export const MASK_CHANGED = '•••• (changed)';

// A type alias, not an interface, so that changes stay assignable to JsonValue (they are hashed as JSON).
export type FieldChange = { readonly old: JsonValue; readonly new: JsonValue };

/** `changes{field:{old,new}}` of an audit entry, after masking. */
export type AuditChanges = Readonly<Record<string, FieldChange>>;

/** What writers pass: either side may be left out (a created resource has no old value). */
export type AuditChangesInput = Readonly<Record<string, { readonly old?: unknown; readonly new?: unknown }>>;

/**
 * Field names that are always masked, matched against any segment of a field's path (`credentials.*`
 * masks `credentials` and everything under it). Writers may add their own through `secretFields`.
 */
export const DEFAULT_SECRET_FIELDS: readonly string[] = [
  'api_secret',
  'api_key',
  'access_token',
  'refresh_token',
  'client_secret',
  'credentials.*',
  'hmac_secret',
  'jwt_secret',
  'password',
  'pipeline_key',
  'private_key',
  'encryption_key',
  'encryption_key_previous',
];

/**
 * Matched against each path segment lower-cased with `_` and `-` removed. Deliberately broad: an entry loses
 * a detail (`token_ttl` reads as masked), an auditor never finds a credential. Secrets, credentials and key
 * material first, then PII an admin change may carry (an invitee's email or phone).
 */
export const DEFAULT_SECRET_PATTERN =
  /secret|token|passw(or)?d|passphrase|credential|apikey|privatekey|authorization|cookie|signature|hmac|encryptionkey|ciphertext|plaintext|email|phone|^(key|keys|dek|kek|salt|pipelinekey|firstname|lastname|dob|dateofbirth|ssn|address|street|postalcode|zip|ip|ipaddress|traits)$/;

/**
 * Values that are secrets or PII whatever their field is called: 256-bit keys or digests in hex, v1
 * ciphertexts in text form, pipeline keys, JWTs, PEM private keys and email addresses. A string containing
 * any of them is replaced whole by the mask.
 */
// Every quantifier is bounded so a long value costs linear time (an unbounded `[^@]+@` is quadratic).
const SECRET_VALUE =
  /[0-9a-fA-F]{64}|\bv1\.[A-Za-z0-9_-]{40}|\bdk_(live|test)_[A-Za-z0-9]{8}|\beyJ[A-Za-z0-9_-]{1,2048}\.eyJ|-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----|[^\s@"'<>]{1,64}@[^\s@"'<>]{1,255}\.[a-zA-Z]{2}/;

export interface MaskOptions {
  /** Extra field names or `prefix.*` globs to mask, on top of `DEFAULT_SECRET_FIELDS`. */
  readonly secretFields?: readonly string[];
  /** Replaces `DEFAULT_SECRET_PATTERN`; tested against normalised path segments. */
  readonly secretPattern?: RegExp;
}

/** Prepared once per log (pino-style): the checks `maskChanges` runs per field. */
export interface SecretMatcher {
  isSecretPath(path: readonly string[]): boolean;
}

function normalise(segment: string): string {
  return segment.toLowerCase().replace(/[_-]/g, '');
}

export function createSecretMatcher(options: MaskOptions = {}): SecretMatcher {
  const pattern = options.secretPattern ?? DEFAULT_SECRET_PATTERN;
  const names = new Set<string>();
  const prefixes: string[] = [];
  for (const field of [...DEFAULT_SECRET_FIELDS, ...(options.secretFields ?? [])]) {
    if (field.endsWith('.*')) prefixes.push(field.slice(0, -2).toLowerCase());
    else names.add(field.toLowerCase());
  }
  return {
    isSecretPath(path) {
      const full = path.join('.').toLowerCase();
      if (names.has(full)) return true;
      for (const prefix of prefixes) {
        if (full === prefix || full.startsWith(`${prefix}.`)) return true;
      }
      return path.some((segment) => {
        const lower = segment.toLowerCase();
        if (names.has(lower)) return true;
        if (prefixes.includes(lower)) return true;
        pattern.lastIndex = 0;
        return pattern.test(normalise(segment));
      });
    },
  };
}

export function looksSecret(value: string): boolean {
  return SECRET_VALUE.test(value);
}

/** Marks a side that does not exist (a key present only in the old or only in the new object). */
const ABSENT: unique symbol = Symbol('absent');
type Side = JsonValue | typeof ABSENT;

function canonicalSide(value: Side): string {
  return value === ABSENT ? '' : canonicalJson(value);
}

function maskedSide(value: Side, changed: boolean): Side {
  if (value === ABSENT || value === null) return value;
  return changed ? MASK_CHANGED : MASK;
}

function scrubLeaf(value: Side): Side {
  return typeof value === 'string' && looksSecret(value) ? MASK : value;
}

function maskPair(matcher: SecretMatcher, old: Side, neu: Side, path: readonly string[]): [Side, Side] {
  if (matcher.isSecretPath(path)) {
    const changed = canonicalSide(old) !== canonicalSide(neu);
    return [maskedSide(old, false), maskedSide(neu, changed)];
  }
  const oldObject = isPlainObject(old) ? (old as Record<string, JsonValue>) : undefined;
  const newObject = isPlainObject(neu) ? (neu as Record<string, JsonValue>) : undefined;
  const oldArray = Array.isArray(old) ? old : undefined;
  const newArray = Array.isArray(neu) ? neu : undefined;
  if (
    oldObject === undefined &&
    newObject === undefined &&
    oldArray === undefined &&
    newArray === undefined
  ) {
    return [scrubLeaf(old), scrubLeaf(neu)];
  }

  let outOld: Side = oldObject !== undefined ? {} : oldArray !== undefined ? [] : scrubLeaf(old);
  let outNew: Side = newObject !== undefined ? {} : newArray !== undefined ? [] : scrubLeaf(neu);

  if (oldObject !== undefined || newObject !== undefined) {
    const keys = new Set([...Object.keys(oldObject ?? {}), ...Object.keys(newObject ?? {})]);
    const maskedOld: Record<string, JsonValue> = {};
    const maskedNew: Record<string, JsonValue> = {};
    for (const key of keys) {
      const a = oldObject !== undefined && Object.hasOwn(oldObject, key) ? (oldObject[key] ?? null) : ABSENT;
      const b = newObject !== undefined && Object.hasOwn(newObject, key) ? (newObject[key] ?? null) : ABSENT;
      const [maskedA, maskedB] = maskPair(matcher, a, b, [...path, key]);
      if (maskedA !== ABSENT) maskedOld[key] = maskedA;
      if (maskedB !== ABSENT) maskedNew[key] = maskedB;
    }
    if (oldObject !== undefined) outOld = maskedOld;
    if (newObject !== undefined) outNew = maskedNew;
  }
  if (oldArray !== undefined || newArray !== undefined) {
    const length = Math.max(oldArray?.length ?? 0, newArray?.length ?? 0);
    const maskedOld: JsonValue[] = [];
    const maskedNew: JsonValue[] = [];
    for (let i = 0; i < length; i++) {
      const a = oldArray !== undefined && i < oldArray.length ? (oldArray[i] ?? null) : ABSENT;
      const b = newArray !== undefined && i < newArray.length ? (newArray[i] ?? null) : ABSENT;
      // Array elements keep their parent's path: `allowed_origins[3]` is judged by `allowed_origins`.
      const [maskedA, maskedB] = maskPair(matcher, a, b, path);
      if (maskedA !== ABSENT) maskedOld.push(maskedA);
      if (maskedB !== ABSENT) maskedNew.push(maskedB);
    }
    if (oldArray !== undefined) outOld = maskedOld;
    if (newArray !== undefined) outNew = maskedNew;
  }
  return [outOld, outNew];
}

function present(side: Side): JsonValue {
  return side === ABSENT ? null : side;
}

/**
 * Returns `changes` safe to record: values converted to JSON (byte arrays never recorded), fields whose name
 * or path says secret, credential or PII masked (`{"old": "••••", "new": "•••• (changed)"}`, null kept as
 * null so "was set" / "was cleared" stays visible), and any value that looks like key material, ciphertext, a
 * token or an email address replaced by the mask wherever it sits. A field name with dots (`credentials.api_key`)
 * is judged by each of its segments.
 */
export function maskChanges(
  changes: AuditChangesInput,
  options: MaskOptions | SecretMatcher = {},
): AuditChanges {
  const matcher = 'isSecretPath' in options ? options : createSecretMatcher(options);
  const out: Record<string, FieldChange> = {};
  for (const [field, change] of Object.entries(changes)) {
    const old = toJsonValue(change.old);
    const neu = toJsonValue(change.new);
    const name = storableKey(field);
    const [maskedOld, maskedNew] = maskPair(matcher, old, neu, name.split('.'));
    out[name] = { old: present(maskedOld), new: present(maskedNew) };
  }
  return out;
}
