import { createHmac, randomBytes } from 'node:crypto';
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
 * user id (which may be an email) in plaintext. HMAC-SHA-256 under a random key that lives in
 * `identity_index_keys`, sealed with the v1 format: it is re-encrypted like any other record when
 * ENCRYPTION_KEY rotates, so digests stay valid across rotations, and without the encryption key the digests
 * cannot be recomputed (no enumeration of likely emails).
 */
export interface BlindIndex {
  /** Lower-case hex; the kind is part of the input, so equal values of different kinds never collide. */
  digest(kind: string, value: string): string;
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
  return Object.freeze({
    digest(kind: string, value: string): string {
      return createHmac('sha256', key).update(kind, 'utf8').update('\0').update(value, 'utf8').digest('hex');
    },
  });
}

async function read(db: Pick<Queryable, 'query'>): Promise<string | null> {
  const { rows } = await db.query('SELECT secret FROM identity_index_keys WHERE id = $1', [INDEX_KEY_ID]);
  const row = rows[0];
  return row === undefined ? null : rowSchema.parse(row).secret;
}
