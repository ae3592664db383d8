import { describe, expect, it } from 'vitest';
import { isCacheError } from './errors';
import { type RedisCacheOptions, resolveRedisOptions } from './redis-connection';

const files: Record<string, string> = { '/etc/signal/redis-ca.pem': 'CA PEM' };
const readFile = (path: string): string => {
  const content = files[path];
  if (content === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
  return content;
};

function configError(options: RedisCacheOptions): string {
  try {
    resolveRedisOptions(options, readFile);
  } catch (err) {
    if (isCacheError(err) && err.code === 'invalid_config') {
      expect(err.message).not.toContain('pa55word');
      return err.message;
    }
    throw err;
  }
  throw new Error('expected invalid_config');
}

describe('resolveRedisOptions', () => {
  it('parses credentials, database and fail-fast settings from a redis:// URL', () => {
    const { redis, tls, prefix } = resolveRedisOptions(
      { url: 'redis://signal:pa55w%40rd@cache.internal:6380/2', namespace: 'ns1' },
      readFile,
    );
    expect(redis).toMatchObject({
      host: 'cache.internal',
      port: 6380,
      db: 2,
      username: 'signal',
      password: 'pa55w@rd',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 5_000,
      commandTimeout: 2_000,
    });
    expect(redis.tls).toBeUndefined();
    expect(tls).toBe(false);
    expect(prefix).toBe('ns1:');
  });

  it('verifies TLS for rediss:// with the CA and the host as server name', () => {
    const { redis } = resolveRedisOptions(
      { url: 'rediss://cache.internal', tls: { enabled: false, caPath: '/etc/signal/redis-ca.pem' } },
      readFile,
    );
    expect(redis.tls).toEqual({
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ca: 'CA PEM',
      servername: 'cache.internal',
    });
    expect(redis.port).toBe(6379);
  });

  it('turns TLS on for redis:// when REDIS_TLS_ENABLED is true; no SNI for an IP unless configured', () => {
    const plainIp = resolveRedisOptions({ url: 'redis://10.1.2.3:6379', tls: { enabled: true } }, readFile);
    expect(plainIp.redis.tls).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
    const named = resolveRedisOptions(
      { url: 'redis://10.1.2.3:6379', tls: { enabled: true, servername: 'cache.internal' } },
      readFile,
    );
    expect(named.redis.tls).toMatchObject({ servername: 'cache.internal' });
  });

  it('refuses a CA path while TLS is off, an unreadable CA, and bad URLs', () => {
    expect(
      configError({ url: 'redis://h', tls: { enabled: false, caPath: '/etc/signal/redis-ca.pem' } }),
    ).toContain('REDIS_TLS_ENABLED');
    expect(configError({ url: 'rediss://h', tls: { enabled: true, caPath: '/nope.pem' } })).toContain(
      '/nope.pem',
    );
    expect(configError({ url: 'http://:pa55word@h' })).toContain('redis://');
    expect(configError({ url: 'redis://:pa55word@h/abc' })).toContain('database');
    expect(configError({ url: 'nonsense' })).toContain('REDIS_URL');
    expect(configError({ url: 'redis://h', commandTimeoutMs: 0 })).toContain('commandTimeoutMs');
    expect(configError({ url: 'redis://h', namespace: 'bad ns' })).toContain('namespace');
  });
});
