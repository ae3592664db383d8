import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cache, CacheError, createRedisCache } from '@signal/cache';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDRESS_IN_USE, requireOrSkip, run, startOnFreePort, startProcess, stopProcess } from './support';

/**
 * Redis over TLS, end to end: a real redis-server on loopback serving TLS only (`--port 0`), certificates
 * from a throw-away CA, and @signal/cache's Redis adapter as the services configure it (REDIS_URL,
 * REDIS_TLS_ENABLED, REDIS_TLS_CA_CERT_PATH). Trust is checked, and a refused handshake never turns into
 * a plaintext session.
 */

/**
 * Whether this redis-server was built with TLS (`BUILD_TLS=yes`): a build without it stops at start-up on
 * `tls-port` ("Bad directive"). Redis 7.0 has no dry-run switch, so the probe reads a config that names
 * tls-port with a missing certificate: a TLS build fails on the certificate, a non-TLS build on the directive.
 */
async function redisTlsSupport(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'signal-redis-probe-'));
  try {
    const output = await run(
      'redis-server',
      ['--port', '0', '--tls-port', '1', '--tls-cert-file', join(dir, 'missing.pem'), '--save', ''],
      { cwd: dir, timeout: 5_000 },
    ).then(
      (r) => `${r.stdout}${r.stderr}`,
      (err: { code?: unknown; stdout?: string; stderr?: string }) =>
        err.code === 'ENOENT' ? 'not installed' : `${err.stdout ?? ''}${err.stderr ?? ''}`,
    );
    return !/not installed|Bad directive[\s\S]*tls|'tls-port/i.test(output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const available = requireOrSkip(await redisTlsSupport(), 'redis-server with TLS support is not installed');

describe.skipIf(!available)('Redis over TLS (real redis-server)', () => {
  let pki: TestPki;
  let ca: TestCa;
  let otherCa: TestCa;
  let dir: string;
  let redis: ChildProcess;
  let port: number;
  const opened: Cache[] = [];

  beforeAll(async () => {
    pki = await createTestPki();
    ca = await pki.createCa();
    otherCa = await pki.createCa();
    const server = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    dir = mkdtempSync(join(tmpdir(), 'signal-redis-tls-'));
    const chosen = await startOnFreePort(
      (tlsPort) =>
        startProcess(
          'redis-server',
          [
            '--port',
            '0',
            '--bind',
            '127.0.0.1',
            '--tls-port',
            String(tlsPort),
            '--tls-cert-file',
            server.certPath,
            '--tls-key-file',
            server.keyPath,
            '--tls-ca-cert-file',
            ca.certPath,
            '--tls-auth-clients',
            'no',
            '--tls-protocols',
            'TLSv1.2 TLSv1.3',
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            dir,
          ],
          /Ready to accept connections/,
        ),
      (err) => ADDRESS_IN_USE.test(String(err)),
    );
    port = chosen.port;
    redis = chosen.started.child;
  });

  afterAll(async () => {
    await Promise.all(opened.map((c) => c.close()));
    if (redis) await stopProcess(redis);
    rmSync(dir, { recursive: true, force: true });
    await pki.cleanup();
  });

  async function open(options: Parameters<typeof createRedisCache>[0]): Promise<Cache> {
    const cache = await createRedisCache({ connectTimeoutMs: 3_000, ...options });
    opened.push(cache);
    return cache;
  }

  async function refusal(options: Parameters<typeof createRedisCache>[0]): Promise<CacheError> {
    try {
      const cache = await open(options);
      await cache.ping();
    } catch (err) {
      expect(err).toBeInstanceOf(CacheError);
      return err as CacheError;
    }
    throw new Error('expected the connection to be refused');
  }

  async function roundTrip(cache: Cache): Promise<void> {
    const key = `tls-${randomBytes(8).toString('hex')}`;
    await cache.set(key, 'over tls', { ttlMs: 10_000 });
    expect(await cache.get(key)).toBe('over tls');
    expect(await cache.getAndDelete(key)).toBe('over tls');
    expect(await cache.get(key)).toBeNull();
  }

  it('rediss:// with the CA (REDIS_TLS_CA_CERT_PATH): works, by IP address and by host name', async () => {
    const namespace = `t${randomBytes(4).toString('hex')}`;
    await roundTrip(
      await open({
        url: `rediss://127.0.0.1:${port}`,
        namespace,
        tls: { enabled: false, caPath: ca.certPath },
      }),
    );
    await roundTrip(
      await open({
        url: `rediss://localhost:${port}`,
        namespace,
        tls: { enabled: true, caPath: ca.certPath },
      }),
    );
  });

  it('REDIS_TLS_ENABLED with a redis:// URL: works over TLS', async () => {
    await roundTrip(
      await open({ url: `redis://127.0.0.1:${port}`, tls: { enabled: true, caPath: ca.certPath } }),
    );
  });

  it('a certificate from another CA: refused with tls_failed', async () => {
    const err = await refusal({
      url: `rediss://127.0.0.1:${port}`,
      tls: { enabled: true, caPath: otherCa.certPath },
    });
    expect(err.code).toBe('tls_failed');
    expect(err.message).not.toContain(String(port));
  });

  it('without the private CA (public roots only): refused with tls_failed', async () => {
    const err = await refusal({ url: `rediss://127.0.0.1:${port}`, tls: { enabled: true } });
    expect(err.code).toBe('tls_failed');
  });

  it('a certificate for another host name: refused with tls_failed', async () => {
    const err = await refusal({
      url: `rediss://127.0.0.1:${port}`,
      tls: { enabled: true, caPath: ca.certPath, servername: 'redis.internal.example' },
    });
    expect(err.code).toBe('tls_failed');
  });

  it('plain redis:// to a TLS-only port without REDIS_TLS_ENABLED fails rather than talking in clear', async () => {
    const err = await refusal({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 1_500 });
    expect(['unavailable', 'timeout']).toContain(err.code);
  });

  it('never falls back to plaintext: the first bytes a TLS-configured client sends are a TLS handshake', async () => {
    // A listener that is not TLS: it records what the client sends and answers nothing.
    const received: Buffer[] = [];
    const fake: Server = createServer((socket) => {
      socket.once('data', (chunk) => {
        received.push(chunk);
        socket.destroy();
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const fakePort = (fake.address() as { port: number }).port;
    try {
      const err = await refusal({
        url: `rediss://127.0.0.1:${fakePort}`,
        tls: { enabled: true, caPath: ca.certPath },
        connectTimeoutMs: 1_500,
      });
      expect(['tls_failed', 'unavailable']).toContain(err.code);
      expect(received.length).toBeGreaterThan(0);
      for (const chunk of received) {
        expect(chunk[0]).toBe(0x16); // TLS handshake record; a RESP command would start with '*'
        expect(chunk.toString('latin1')).not.toMatch(/PING|SET|GET|HELLO|AUTH/);
      }
    } finally {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });
});
