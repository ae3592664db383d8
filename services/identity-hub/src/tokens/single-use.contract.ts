import { randomBytes } from 'node:crypto';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isIdentityHubError } from '../errors';
import type { SingleUseStore } from './single-use';
import { createTokenService } from './token-service';

/** One store under test, freshly opened: `fail` makes it unreachable (closes its connection). */
export interface SingleUseTarget {
  readonly store: SingleUseStore;
  fail(): Promise<void>;
  /** Releases the store and whatever the test wrote (called once per test). */
  close(): Promise<void>;
}

const INPUT = {
  anonymousId: '0f8e2d1c-7b6a-4c5d-9e8f-1a2b3c4d5e6f',
  org: 'org_demo',
  pipeline: 'pl_demo',
  from: 'a.example',
  aud: 'b.example',
};
const CONCURRENCY = 1000;

function jti(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * The single-use contract every store keeps (memory cache, Redis, SQL on PGlite and on PostgreSQL): one
 * winner among any number of concurrent consumers, ids independent of each other, and failure to answer
 * surfacing as `single_use_unavailable`, never as "first use".
 */
export function describeSingleUseContract(
  name: string,
  open: () => Promise<SingleUseTarget>,
  skip = false,
): void {
  describe.skipIf(skip)(`single-use store contract: ${name}`, () => {
    let target: SingleUseTarget | undefined;
    async function fresh(): Promise<SingleUseTarget> {
      target = await open();
      return target;
    }
    afterEach(async () => {
      await target?.close();
      target = undefined;
    });

    it('answers true once, then false; ids do not affect each other', async () => {
      const { store } = await fresh();
      const id = jti();
      const expiresAt = Date.now() + 125_000;
      expect(await store.consume(id, expiresAt)).toBe(true);
      expect(await store.consume(id, expiresAt)).toBe(false);
      expect(await store.consume(jti(), expiresAt)).toBe(true);
      expect(await store.consume(id, expiresAt)).toBe(false);
    });

    it(`${CONCURRENCY} concurrent consumes of one id: exactly one is first`, async () => {
      const { store } = await fresh();
      const id = jti();
      const expiresAt = Date.now() + 125_000;
      const results = await Promise.all(
        Array.from({ length: CONCURRENCY }, () => store.consume(id, expiresAt)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it(`${CONCURRENCY} concurrent resolves of one token: exactly one succeeds, the rest are replays`, async () => {
      const { store } = await fresh();
      const tokens = createTokenService({
        crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
        singleUse: store,
        ttlSeconds: 120,
      });
      const { token } = tokens.issue(INPUT);
      const results = await Promise.all(
        Array.from({ length: CONCURRENCY }, () => tokens.resolve(token, 'b.example')),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'replayed')).toHaveLength(CONCURRENCY - 1);
    });

    it('fails closed: an unreachable store rejects with single_use_unavailable, and no token is accepted', async () => {
      const { store, fail } = await fresh();
      const tokens = createTokenService({
        crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
        singleUse: store,
        ttlSeconds: 120,
      });
      const { token } = tokens.issue(INPUT);
      await fail();
      const error = await store.consume(jti(), Date.now() + 60_000).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isIdentityHubError(error) && error.code).toBe('single_use_unavailable');
      expect(isIdentityHubError(error) && error.retryable).toBe(true);
      await expect(tokens.resolve(token, 'b.example')).rejects.toMatchObject({
        code: 'single_use_unavailable',
      });
    });
  });
}
