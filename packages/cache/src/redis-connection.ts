import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { RedisOptions } from 'ioredis';
import { keyPrefix } from './arguments';
import { CacheError } from './errors';
import type { CacheLogger } from './logger';

export interface RedisTlsOptions {
  /** `REDIS_TLS_ENABLED`: TLS even for a `redis://` URL (`rediss://` always uses TLS). */
  readonly enabled: boolean;
  /** `REDIS_TLS_CA_CERT_PATH`: PEM CA bundle; without it Node's public CAs are trusted. */
  readonly caPath?: string;
  /** Name the certificate must carry when the URL's host is an IP address (also sent as SNI). */
  readonly servername?: string;
}

export interface RedisCacheOptions {
  /** `REDIS_URL`: `redis://[user:password@]host[:port][/db]` or `rediss://…` for TLS. */
  readonly url: string;
  readonly tls?: RedisTlsOptions;
  /** Prefix for every key (`SIGNAL_NAMESPACE`). */
  readonly namespace?: string;
  /** Time allowed to connect (TCP + TLS + AUTH). Default 5 000 ms. */
  readonly connectTimeoutMs?: number;
  /** A command without an answer after this long fails with `timeout`. Default 2 000 ms. */
  readonly commandTimeoutMs?: number;
  readonly logger?: CacheLogger;
}

export interface ResolvedRedisOptions {
  readonly redis: RedisOptions;
  readonly prefix: string;
  readonly tls: boolean;
}

function invalid(message: string): CacheError {
  return new CacheError('invalid_config', message);
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw invalid(`${name} must be a positive integer (got ${value})`);
  return value;
}

/**
 * Turns the adapter options into ioredis options. The URL is parsed here (not by ioredis) so that TLS is
 * decided in one place and the URL, which may hold a password, never reaches an error message.
 *
 * Failure behaviour is deliberate: no offline queue (a command while disconnected fails at once with
 * `unavailable` instead of waiting), no retry or automatic re-send of a command whose connection dropped
 * (a re-sent GETDEL or INCR could apply twice; the caller sees `unavailable` and decides), a bounded
 * command timeout, and reconnection in the background with capped backoff.
 */
export function resolveRedisOptions(
  options: RedisCacheOptions,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): ResolvedRedisOptions {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw invalid('REDIS_URL is not a valid URL (expected redis://host:6379 or rediss://host:6380)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw invalid(`REDIS_URL must start with redis:// or rediss:// (got ${url.protocol}//)`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host.length === 0) throw invalid('REDIS_URL has no host');
  const port = url.port === '' ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isSafeInteger(db) || db < 0) throw invalid('REDIS_URL database (the path) must be a number');

  const useTls = url.protocol === 'rediss:' || options.tls?.enabled === true;
  if (!useTls && options.tls?.caPath !== undefined) {
    throw invalid(
      'REDIS_TLS_CA_CERT_PATH is set but TLS is off; set REDIS_TLS_ENABLED=true or use rediss://',
    );
  }
  let tls: ConnectionOptions | undefined;
  if (useTls) {
    let ca: string | undefined;
    if (options.tls?.caPath !== undefined) {
      try {
        ca = readFile(options.tls.caPath);
      } catch (err) {
        const code =
          typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown error';
        throw invalid(`REDIS_TLS_CA_CERT_PATH ${options.tls.caPath} cannot be read (${code})`);
      }
    }
    const servername = options.tls?.servername ?? (isIP(host) === 0 ? host : undefined);
    tls = {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(ca === undefined ? {} : { ca }),
      ...(servername === undefined ? {} : { servername }),
    };
  }

  const redis: RedisOptions = {
    host,
    port,
    db,
    lazyConnect: true,
    connectTimeout: positiveInt('connectTimeoutMs', options.connectTimeoutMs ?? 5_000),
    commandTimeout: positiveInt('commandTimeoutMs', options.commandTimeoutMs ?? 2_000),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    keepAlive: 10_000,
    connectionName: 'signal',
    retryStrategy: (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000),
  };
  if (url.username !== '') redis.username = decodeURIComponent(url.username);
  if (url.password !== '') redis.password = decodeURIComponent(url.password);
  if (tls !== undefined) redis.tls = tls;
  return { redis, prefix: keyPrefix(options.namespace), tls: useTls };
}
