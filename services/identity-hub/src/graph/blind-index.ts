import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { CryptoService } from '@signal/crypto';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { IdentityHubError } from '../errors';
import { indexKeyContext } from './encrypted-columns';

/** The row holding the current blind-index key. */
export const INDEX_KEY_ID = 'blind-index-v1';
const KEY_BYTES = 32;

/**
 * Deterministic, keyed digests of identifiers, so a profile can be found by a user id without storing the
 * user id (which may be an email) in plaintext. Keyed by a random 32-byte key that lives in
 * `identity_index_keys`, sealed with the v1 format: it is re-encrypted like any other record when
 * ENCRYPTION_KEY rotates, so digests stay valid across rotations, and without the encryption key the digests
 * cannot be recomputed (no enumeration of likely emails).
 *
 * Every digest is of one org (identity-hub/0003): HMAC-SHA-256 under a sub-key derived from the index key for
 * that one purpose (HKDF-SHA-512, as `@signal/crypto` derives its purpose keys, so no key serves two
 * purposes), over the org, the kind and the value, each length-prefixed (an injective encoding: no org, kind
 * or value can run into the next). User "42" of org A and user "42" of org B have unrelated digests.
 */
export interface BlindIndex {
  /** The blind-index digest (`identity_identifiers.digest`) of an identifier of `org`; lower-case hex. */
  digest(org: string, kind: string, value: string): string;
  /**
   * The erasure record's digest (`identity_erasures.digest`) of an identifier of `org`, from its blind-index
   * digest: computable from a stored row without opening it, and not equal to the live digest (the records
   * do not join to profiles in the database). Under a sub-key of its own.
   */
  erasureDigest(org: string, kind: string, digest: string): string;
  /**
   * The org-blind erasure digest written before identity-hub/0003 (`identity_erasures_legacy`): HMAC under the
   * index key itself of `erased:<kind>` ‖ 0 ‖ HMAC(index key, kind ‖ 0 ‖ value). Only to honour those records
   * until they expire; nothing new is written with it.
   */
  legacyErasureDigest(kind: string, value: string): string;
  /**
   * The key of a signed-in person's consent of record (`@signal/consent`'s user consent store) for a user id
   * of `org`: a stable pseudonym, so the consent cache never holds the user id (often an e-mail), computed
   * by the event processor, which alone sees user ids before PII rules. Under a sub-key of its own, so it is
   * unrelated to the identity graph's digests.
   */
  consentSubject(org: string, userId: string): string;
}

/** HKDF salt of the blind index's sub-keys (a version of its own, like `signal/crypto/keyring/v1`). */
const SUB_KEY_SALT = Buffer.from('signal/identity-hub/blind-index/v2', 'latin1');
const IDENTIFIER_DIGEST_LABEL = 'identifier-digest';
const ERASURE_DIGEST_LABEL = 'erasure-digest';
const CONSENT_SUBJECT_LABEL = 'consent-subject';

function subKey(indexKey: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha512', indexKey, SUB_KEY_SALT, Buffer.from(label, 'latin1'), KEY_BYTES));
}

/** HMAC-SHA-256 (hex) over u32 length ‖ UTF-8 of each field: fixed order, every field delimited by its length. */
function keyedDigest(key: Buffer, fields: readonly string[]): string {
  const hmac = createHmac('sha256', key);
  const length = Buffer.allocUnsafe(4);
  for (const field of fields) {
    length.writeUInt32BE(Buffer.byteLength(field, 'utf8'));
    hmac.update(length).update(field, 'utf8');
  }
  return hmac.digest('hex');
}

const rowSchema = z.object({ secret: z.string() });

/**
 * Loads the blind-index key, creating it on first start. Concurrent first starts race on the insert; the
 * loser reads the winner's key, so every instance ends up with the same one.
 */
export async function loadBlindIndex(
  db: Pick<Queryable, 'query'>,
  crypto: Pick<CryptoService, 'sealText' | 'openText' | 'keyIdOf'>,
): Promise<BlindIndex> {
  const context = indexKeyContext(INDEX_KEY_ID);
  let sealed = await read(db);
  if (sealed === null) {
    const fresh = crypto.sealText(randomBytes(KEY_BYTES), context);
    await db.query(
      'INSERT INTO identity_index_keys (id, secret, key_id) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
      [INDEX_KEY_ID, fresh, crypto.keyIdOf(fresh)],
    );
    sealed = await read(db);
  }
  if (sealed === null)
    throw new IdentityHubError('corrupt_record', 'the blind-index key could not be stored');
  return indexFromSealed(sealed, crypto);
}

/**
 * The blind index when its key exists, without creating it (the identity hub creates it at its first start,
 * before it can record any erasure): for readers of the identity tables in other services.
 */
export async function readBlindIndex(
  db: Pick<Queryable, 'query'>,
  crypto: Pick<CryptoService, 'openText'>,
): Promise<BlindIndex | null> {
  const sealed = await read(db);
  return sealed === null ? null : indexFromSealed(sealed, crypto);
}

function indexFromSealed(sealed: string, crypto: Pick<CryptoService, 'openText'>): BlindIndex {
  const context = indexKeyContext(INDEX_KEY_ID);
  let key: Buffer;
  try {
    key = crypto.openText(sealed, context);
  } catch (cause) {
    throw new IdentityHubError(
      'corrupt_record',
      'the blind-index key does not open with the configured keys',
      {
        cause,
      },
    );
  }
  if (key.byteLength !== KEY_BYTES) {
    throw new IdentityHubError('corrupt_record', 'the blind-index key has the wrong length');
  }
  const identifierKey = subKey(key, IDENTIFIER_DIGEST_LABEL);
  const erasureKey = subKey(key, ERASURE_DIGEST_LABEL);
  const consentKey = subKey(key, CONSENT_SUBJECT_LABEL);
  const legacy = (kind: string, value: string) =>
    createHmac('sha256', key).update(kind, 'utf8').update('\0').update(value, 'utf8').digest('hex');
  return Object.freeze({
    digest(org: string, kind: string, value: string): string {
      return keyedDigest(identifierKey, [org, kind, value]);
    },
    erasureDigest(org: string, kind: string, digest: string): string {
      return keyedDigest(erasureKey, [org, kind, digest]);
    },
    legacyErasureDigest(kind: string, value: string): string {
      return legacy(`erased:${kind}`, legacy(kind, value));
    },
    consentSubject(org: string, userId: string): string {
      return keyedDigest(consentKey, [org, userId]);
    },
  });
}

async function read(db: Pick<Queryable, 'query'>): Promise<string | null> {
  const { rows } = await db.query('SELECT secret FROM identity_index_keys WHERE id = $1', [INDEX_KEY_ID]);
  const row = rows[0];
  return row === undefined ? null : rowSchema.parse(row).secret;
}
