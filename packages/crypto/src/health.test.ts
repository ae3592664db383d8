import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type CryptoHealth, cryptoHealth, cryptoHealthHandler } from './health';
import { createKeyring, type KeyGeneration, localKeyGeneration } from './keyring';

/** A provider generation that can be made to fail after start-up, like a KMS losing its DEK cache. */
function flakyGeneration(): { generation: KeyGeneration; fail(): void } {
  const inner = localKeyGeneration(randomBytes(32));
  let failing = false;
  return {
    generation: {
      id: inner.id,
      dataKey: (dataClass) => {
        if (failing) throw new Error('KMS unavailable');
        return inner.dataKey(dataClass);
      },
    },
    fail: () => {
      failing = true;
    },
  };
}

describe('cryptoHealth', () => {
  it('is healthy with exactly the contract fields in single-key mode', () => {
    const health = cryptoHealth(createKeyring({ current: randomBytes(32) }));
    expect(health).toEqual({
      status: 'healthy',
      provider: 'local',
      key_version: 1,
      dual_key_mode: false,
      checks: { key_valid: true, round_trip: true },
    });
    expect(Object.keys(health.checks)).toEqual(['key_valid', 'round_trip']);
    expect(
      cryptoHealth(createKeyring({ current: randomBytes(32) }), { provider: 'hashicorp-vault' }).provider,
    ).toBe('hashicorp-vault');
  });

  it('checks the previous key too in dual-key mode', () => {
    const health = cryptoHealth(createKeyring({ current: randomBytes(32), previous: randomBytes(32) }));
    expect(health).toEqual({
      status: 'healthy',
      provider: 'local',
      key_version: 2,
      dual_key_mode: true,
      checks: { key_valid: true, round_trip: true, previous_key_valid: true },
    });
  });

  it('turns unhealthy when the provider stops answering for a key', () => {
    const current = flakyGeneration();
    const previous = flakyGeneration();
    const keyring = createKeyring({
      current: current.generation,
      previous: previous.generation,
      provider: 'gcp-kms',
    });
    expect(cryptoHealth(keyring).status).toBe('healthy');

    previous.fail();
    expect(cryptoHealth(keyring)).toMatchObject({
      status: 'unhealthy',
      provider: 'gcp-kms',
      checks: { key_valid: true, round_trip: true, previous_key_valid: false },
    });
    current.fail();
    expect(cryptoHealth(keyring).checks.key_valid).toBe(false);
  });
});

describe('cryptoHealthHandler over node:http', () => {
  let server: Server | undefined;

  afterEach(async () => {
    const running = server;
    server = undefined;
    if (running) await new Promise<void>((resolve) => running.close(() => resolve()));
  });

  async function serve(getHealth: () => CryptoHealth | Promise<CryptoHealth>): Promise<string> {
    const handler = cryptoHealthHandler(getHealth);
    const started = createServer((req, res) => {
      if (req.url === '/health/crypto') handler(req, res);
      else res.writeHead(404).end();
    });
    server = started;
    await new Promise<void>((resolve) => started.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(started.address() as AddressInfo).port}/health/crypto`;
  }

  it('answers 200 with the health JSON, uncached, when healthy', async () => {
    const keyring = createKeyring({ current: randomBytes(32), previous: randomBytes(32) });
    const url = await serve(() => cryptoHealth(keyring));
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({
      status: 'healthy',
      provider: 'local',
      key_version: 2,
      dual_key_mode: true,
      checks: { key_valid: true, round_trip: true, previous_key_valid: true },
    });
  });

  it('answers 503 when a check fails, so readiness fails', async () => {
    const current = flakyGeneration();
    const keyring = createKeyring({ current: current.generation });
    const url = await serve(() => cryptoHealth(keyring));
    expect((await fetch(url)).status).toBe(200);
    current.fail();
    const response = await fetch(url);
    expect(response.status).toBe(503);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toMatchObject({ status: 'unhealthy', checks: { key_valid: false } });
  });

  it('answers 503 when the health function itself fails', async () => {
    const url = await serve(() => Promise.reject(new Error('boom')));
    const response = await fetch(url);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'unhealthy' });
  });

  it('serves HEAD without a body and refuses other methods', async () => {
    const url = await serve(() => cryptoHealth(createKeyring({ current: randomBytes(32) })));
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(url, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});
