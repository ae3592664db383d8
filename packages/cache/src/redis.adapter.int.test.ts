import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TLSSocket } from 'node:tls';
import { REDIS_URL, redisAvailable } from '@signal/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '../test/tls-fixtures';
import { describeCacheContract } from './cache.contract';
import { type CacheError, isCacheError } from './errors';
import type { Cache } from './port';
import { createRedisCache } from './redis.adapter';

const available = await redisAvailable();
const upstream = new URL(REDIS_URL);

async function deleteNamespace(namespace: string): Promise<void> {
  const admin = new Redis(REDIS_URL, { lazyConnect: true });
  await admin.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
  } finally {
    admin.disconnect();
  }
}

async function cacheError(promise: Promise<unknown>): Promise<CacheError> {
  try {
    await promise;
  } catch (err) {
    if (isCacheError(err)) return err;
    throw err;
  }
  throw new Error('expected a CacheError');
}

interface Relay {
  readonly port: number;
  /** Stops relaying bytes but keeps connections open: a half-open network path. */
  blackhole(): void;
  /** Closes the listener and every connection: Redis "goes down". */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Connections that completed TLS (TLS relays only). */
  readonly secured: number;
}

/** A TCP relay to the real Redis, optionally terminating TLS with the test server certificate. */
async function startRelay(pki?: TestPki): Promise<Relay> {
  const sockets = new Set<Socket>();
  let blackholed = false;
  let secured = 0;
  let port = 0;
  let server: Server | undefined;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const relay = (client: Socket) => {
    const redis = netConnect(Number(upstream.port || 6379), upstream.hostname);
    track(redis);
    client.on('data', (chunk) => {
      if (!blackholed) redis.write(chunk);
    });
    redis.on('data', (chunk) => {
      if (!blackholed) client.write(chunk);
    });
    client.on('close', () => redis.destroy());
    redis.on('close', () => client.destroy());
  };
  const listen = async () => {
    server = createServer((raw) => {
      track(raw);
      if (pki === undefined) return relay(raw);
      const secure = new TLSSocket(raw, { isServer: true, key: pki.serverKey, cert: pki.serverCert });
      track(secure);
      secure.once('secure', () => {
        secured += 1;
        relay(secure);
      });
    });
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    port = address.port;
  };
  await listen();
  return {
    get port() {
      return port;
    },
    get secured() {
      return secured;
    },
    blackhole: () => {
      blackholed = true;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (server === undefined) return resolve();
        server.close(() => resolve());
      }),
    start: async () => {
      blackholed = false;
      await listen();
    },
  };
}

/** `redis-server` on PATH, or undefined. */
function redisServerBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

interface PrivateRedis {
  readonly url: string;
  /** Caps the server at its current memory use plus `headroomBytes` (`noeviction`: writes beyond fail with OOM). */
  capAbove(headroomBytes: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A throwaway redis-server of this test's own, for the cases that fill Redis to its `maxmemory`: the shared
 * server must never be capped, other tests use it at the same time.
 */
async function startPrivateRedis(binary: string): Promise<PrivateRedis> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  if (address === null || typeof address === 'string') throw new Error('no free loopback port');
  const port = address.port;
  const child: ChildProcess = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`redis-server exited:\n${output}`)));
  });
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url);
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  return {
    url,
    capAbove: async (headroomBytes) => {
      const used = /used_memory:(\d+)/.exec(await admin.info('memory'))?.[1];
      await admin.config('SET', 'maxmemory', String(Number(used) + headroomBytes));
    },
    stop: async () => {
      admin.disconnect();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const binary = redisServerBinary();
let privateRedis: Promise<PrivateRedis> | undefined;

describeCacheContract(
  'Redis',
  () => ({
    open: (namespace) => createRedisCache({ url: REDIS_URL, namespace }),
    cleanup: deleteNamespace,
    ...(binary === undefined
      ? {}
      : {
          openSmall: async (namespace: string) => {
            privateRedis ??= startPrivateRedis(binary);
            const server = await privateRedis;
            const cache = await createRedisCache({ url: server.url, namespace });
            await server.capAbove(512 * 1024);
            return cache;
          },
          close: async () => {
            await (await privateRedis)?.stop();
          },
        }),
  }),
  { skip: !available },
);

describe.skipIf(!available)('Redis adapter failures', () => {
  it('fails fast with unavailable when Redis is down, without leaking the password', async () => {
    const started = performance.now();
    const err = await cacheError(createRedisCache({ url: 'redis://:hunter2-secret@127.0.0.1:1' }));
    expect(err.code).toBe('unavailable');
    expect(err.retryable).toBe(true);
    expect(err.message).not.toContain('hunter2');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  describe('when Redis goes away after start-up', () => {
    let relay: Relay;
    let cache: Cache;
    const namespace = `outage-${Date.now()}`;
    const logged: { level: string; msg: string; obj: object }[] = [];
    const record = (level: string) => (obj: object, msg: string) => logged.push({ level, msg, obj });
    const logger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };

    beforeAll(async () => {
      relay = await startRelay();
      cache = await createRedisCache({
        url: `redis://127.0.0.1:${relay.port}`,
        namespace,
        commandTimeoutMs: 300,
        logger,
      });
    });

    afterAll(async () => {
      await cache.close();
      await relay.stop();
      await deleteNamespace(namespace);
    });

    it('rejects quickly with unavailable while down (fail closed) and recovers when it returns', async () => {
      await cache.set('k', 'v', { ttlMs: 60_000 });
      await relay.stop();
      const started = performance.now();
      const consumed = await cacheError(cache.setIfAbsent('jti:down', 'used', 60_000));
      expect(consumed.code).toBe('unavailable');
      expect((await cacheError(cache.get('k'))).code).toBe('unavailable');
      expect((await cacheError(cache.ping())).code).toBe('unavailable');
      expect(performance.now() - started).toBeLessThan(1_000);

      await relay.start();
      const deadline = performance.now() + 10_000;
      let ready = false;
      while (!ready && performance.now() < deadline) {
        ready = await cache.ping().then(
          () => true,
          () => false,
        );
        if (!ready) await sleep(100);
      }
      expect(ready).toBe(true);
      expect(await cache.get('k')).toBe('v');
      expect(logged.map((l) => [l.level, l.msg])).toEqual([
        ['info', 'Redis connected'],
        ['warn', 'Redis connection lost; reconnecting'],
        ['info', 'Redis connection ready again'],
      ]);
    });

    it('times out a command on a half-open connection instead of hanging', async () => {
      relay.blackhole();
      const started = performance.now();
      const err = await cacheError(cache.getAndDelete('k'));
      expect(err.code).toBe('timeout');
      expect(performance.now() - started).toBeLessThan(2_000);
    });
  });
});

describe.skipIf(!available)('Redis over TLS', () => {
  let pki: TestPki;
  let relay: Relay;
  const opened: Cache[] = [];

  beforeAll(async () => {
    pki = createTestPki();
    relay = await startRelay(pki);
  });

  afterAll(async () => {
    await Promise.all(opened.map((c) => c.close()));
    await relay.stop();
    pki.remove();
  });

  it('connects to rediss:// with the configured CA', async () => {
    const before = relay.secured;
    const cache = await createRedisCache({
      url: `rediss://127.0.0.1:${relay.port}`,
      tls: { enabled: true, caPath: pki.caPath },
    });
    opened.push(cache);
    await cache.ping();
    expect(relay.secured).toBeGreaterThan(before);
  });

  it('uses TLS for a redis:// URL when REDIS_TLS_ENABLED is set, checking the server name', async () => {
    const cache = await createRedisCache({
      url: `redis://127.0.0.1:${relay.port}`,
      tls: { enabled: true, caPath: pki.caPath, servername: 'localhost' },
    });
    opened.push(cache);
    await cache.ping();
    const err = await cacheError(
      createRedisCache({
        url: `redis://127.0.0.1:${relay.port}`,
        tls: { enabled: true, caPath: pki.caPath, servername: 'redis.other.example' },
      }),
    );
    expect(err.code).toBe('tls_failed');
  });

  it('refuses a server certificate from another CA, quickly', async () => {
    const started = performance.now();
    const err = await cacheError(
      createRedisCache({
        url: `rediss://127.0.0.1:${relay.port}`,
        tls: { enabled: true, caPath: pki.wrongCaPath },
      }),
    );
    expect(err.code).toBe('tls_failed');
    expect(err.retryable).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
