import type { EncryptionContext } from '@signal/crypto';

/**
 * The Identity Hub's entries for the re-encryption job's registry of encrypted columns. The shape is the
 * control plane's `EncryptedColumn` (structurally identical, so the lead can list these beside the control
 * plane's own entries without this service depending on it). Writers below build their contexts with the
 * same functions, so a writer and the job can never disagree about a context.
 */
export interface EncryptedColumnEntry {
  /** `table.column`, the name used in job progress, failures and logs. */
  readonly name: string;
  readonly table: string;
  /** Primary key column (text), walked in ascending order by the job. */
  readonly idColumn: string;
  /** The ciphertext column (text, v1 text form). */
  readonly column: string;
  /** The hex key id column beside it (`crypto.keyIdOf`). */
  readonly keyIdColumn: string;
  /** Further columns of the row the context needs (selected alongside the id). */
  readonly contextColumns: readonly string[];
  /** The context the value was sealed under, rebuilt from the row (trusted facts, never the ciphertext). */
  context(row: {
    readonly id: string;
    readonly columns: Readonly<Record<string, unknown>>;
  }): EncryptionContext;
}

/** The blind-index key (32 random bytes) that makes identifier digests. */
export function indexKeyContext(id: string): EncryptionContext {
  return {
    purpose: 'identity-index-key',
    dataClass: 'identity',
    table: 'identity_index_keys',
    column: 'secret',
    rowId: id,
  };
}

/**
 * An identifier's value (anonymous id, user id, vendor id) of `org`; the kind and the org are bound too, so a
 * row can be neither relabelled nor handed to another org.
 */
export function identifierContext(id: string, kind: string, org: string): EncryptionContext {
  return {
    purpose: 'identity-identifier',
    dataClass: 'identity',
    table: 'identity_identifiers',
    column: 'value',
    rowId: id,
    extra: { kind, org },
  };
}

/** A profile's traits (one JSON object per profile), bound to the profile and its org. */
export function traitsContext(profileId: string, org: string): EncryptionContext {
  return {
    purpose: 'identity-traits',
    dataClass: 'identity',
    table: 'identity_traits',
    column: 'traits',
    rowId: profileId,
    extra: { org },
  };
}

/** A context column the registry selected, which must be text. */
function textColumn(row: { readonly columns: Readonly<Record<string, unknown>> }, name: string): string {
  const value = row.columns[name];
  if (typeof value !== 'string') throw new TypeError(`${name} must be selected as text`);
  return value;
}

export const IDENTITY_INDEX_KEYS_COLUMN: EncryptedColumnEntry = Object.freeze({
  name: 'identity_index_keys.secret',
  table: 'identity_index_keys',
  idColumn: 'id',
  column: 'secret',
  keyIdColumn: 'key_id',
  contextColumns: Object.freeze([]),
  context: (row: { readonly id: string }) => indexKeyContext(row.id),
});

export const IDENTITY_IDENTIFIERS_COLUMN: EncryptedColumnEntry = Object.freeze({
  name: 'identity_identifiers.value',
  table: 'identity_identifiers',
  idColumn: 'id',
  column: 'value',
  keyIdColumn: 'value_key_id',
  contextColumns: Object.freeze(['kind', 'org_id']),
  context: (row: { readonly id: string; readonly columns: Readonly<Record<string, unknown>> }) =>
    identifierContext(row.id, textColumn(row, 'kind'), textColumn(row, 'org_id')),
});

export const IDENTITY_TRAITS_COLUMN: EncryptedColumnEntry = Object.freeze({
  name: 'identity_traits.traits',
  table: 'identity_traits',
  idColumn: 'profile_id',
  column: 'traits',
  keyIdColumn: 'traits_key_id',
  contextColumns: Object.freeze(['org_id']),
  context: (row: { readonly id: string; readonly columns: Readonly<Record<string, unknown>> }) =>
    traitsContext(row.id, textColumn(row, 'org_id')),
});

/** Every encrypted column the Identity Hub owns, for the re-encryption job and key-usage counts. */
export const IDENTITY_ENCRYPTED_COLUMNS: readonly EncryptedColumnEntry[] = Object.freeze([
  IDENTITY_INDEX_KEYS_COLUMN,
  IDENTITY_IDENTIFIERS_COLUMN,
  IDENTITY_TRAITS_COLUMN,
]);
