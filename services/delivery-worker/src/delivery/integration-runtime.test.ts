import { createVendorDispatcherRegistry } from '@signal/http';
import { afterAll, describe, expect, it } from 'vitest';
import { cachedCredentialSource } from '../credentials/cached-credential-source';
import type { CredentialSource, WorkerIntegrationSource } from '../ports';
import { createRuntimeDirectory } from './integration-runtime';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const dispatchers = createVendorDispatcherRegistry();
afterAll(async () => {
  await dispatchers.close();
});

const integrations: WorkerIntegrationSource = {
  getIntegration: async (id) => ({
    id,
    vendor: 'webhook',
    enabled: true,
    settings: { url: 'https://hooks.example/signal' },
    consent: { category: 'marketing' },
  }),
  listIntegrationIds: async () => [],
};

describe('runtime directory', () => {
  it('invalidate (after auth_failed) also drops the cached credentials: a rotated secret applies at once', async () => {
    let secret = 'whsec_old_0123456789abcdefghijklmnop';
    const reads: string[] = [];
    const source: CredentialSource = {
      getCredentials: async () => {
        reads.push(secret);
        return { signingSecret: secret };
      },
    };
    const directory = createRuntimeDirectory({
      integrations,
      // As the worker wires it: credentials cached far longer than the runtime.
      credentials: cachedCredentialSource(source, { ttlMs: 60_000 }),
      dispatchers,
      refreshMs: 60_000,
      logger: silent,
    });
    expect((await directory.lookup('wh-1')).ok).toBe(true);
    secret = 'whsec_new_0123456789abcdefghijklmnop';
    directory.invalidate('wh-1');
    expect((await directory.lookup('wh-1')).ok).toBe(true);
    expect(reads).toEqual(['whsec_old_0123456789abcdefghijklmnop', 'whsec_new_0123456789abcdefghijklmnop']);
  });

  it('sweep drops the runtimes and decrypted credentials of integrations idle past their time; clear drops all', async () => {
    let clock = 0;
    const now = () => clock;
    const credentials = cachedCredentialSource(
      { getCredentials: async () => ({ signingSecret: 'whsec_0123456789abcdefghijklmnopqrstuv' }) },
      { ttlMs: 60_000, now },
    );
    const directory = createRuntimeDirectory({
      integrations,
      credentials,
      dispatchers,
      refreshMs: 30_000,
      logger: silent,
      now,
    });
    await directory.lookup('wh-idle');
    clock = 20_000;
    await directory.lookup('wh-busy');
    expect([directory.size, credentials.size]).toEqual([2, 2]);
    // wh-idle's runtime is past its 30 s; its credentials are not yet past 60 s.
    clock = 31_000;
    directory.sweep();
    expect([directory.size, credentials.size]).toEqual([1, 2]);
    clock = 61_000;
    directory.sweep();
    expect([directory.size, credentials.size]).toEqual([0, 1]);
    await directory.lookup('wh-busy');
    directory.clear();
    expect([directory.size, credentials.size]).toEqual([0, 0]);
  });

  it('still works with a plain, uncached credential source', async () => {
    let reads = 0;
    const directory = createRuntimeDirectory({
      integrations,
      credentials: {
        getCredentials: async () => {
          reads += 1;
          return { signingSecret: 'whsec_0123456789abcdefghijklmnopqrstuv' };
        },
      },
      dispatchers,
      refreshMs: 60_000,
      logger: silent,
    });
    await directory.lookup('wh-1');
    await directory.lookup('wh-1');
    directory.invalidate('wh-1');
    await directory.lookup('wh-1');
    expect(reads).toBe(2);
  });
});
