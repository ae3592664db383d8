import { Redis, ReplyError } from 'ioredis';
import { checkKey, checkTtl, checkValue } from './arguments';
import { CacheError } from './errors';
import type { CacheLogger } from './logger';
import type { Cache, SetOptions, WindowCount } from './port';
import { type RedisCacheOptions, resolveRedisOptions } from './redis-connection';

/**
 * INCR, and start the window on the first increment. PTTL < 0 also covers a counter that lost its TTL
 * (written by something else), so a counter can never live forever.
 */
const INCREMENT_WINDOW_LUA = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

/** ARGV: 1 = expect absent ('1') or the value ARGV[2] ('0'); ARGV[3] the new value; ARGV[4] its TTL (ms). */
const COMPARE_AND_SET_LUA = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
`;

interface WindowCommand {
  signalIncrementWindow(key: string, windowMs: number): Promise<unknown>;
  signalCompareAndSet(
    key: string,
    expectAbsent: '0' | '1',
    expected: string,
    value: string,
    ttlMs: number,
  ): Promise<unknown>;
}

/** Reply error prefixes that mean "this server cannot serve right now" rather than "bad command". */
const UNAVAILABLE_REPLIES = new Set(['READONLY', 'LOADING', 'MASTERDOWN', 'BUSY', 'TRYAGAIN', 'CLUSTERDOWN']);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)/;

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

/** Maps an ioredis failure to a CacheError naming the operation and a reason code, never keys or values. */
export function toCacheError(err: unknown, operation: string): CacheError {
  if (err instanceof CacheError) return err;
  if (err instanceof Error && err instanceof ReplyError) {
    const reply = err.message.split(' ', 1)[0] ?? 'ERR';
    if (reply === 'OOM') return new CacheError('capacity', `Redis is out of memory (${operation})`);
    if (reply === 'NOAUTH' || reply === 'WRONGPASS') {
      return new CacheError('invalid_config', `Redis refused the credentials (${operation})`);
    }
    if (UNAVAILABLE_REPLIES.has(reply)) {
      return new CacheError('unavailable', `Redis cannot serve ${operation} now (${reply})`);
    }
    return new CacheError('command_failed', `Redis refused ${operation} (${reply})`);
  }
  const message = err instanceof Error ? err.message : '';
  if (message === 'Command timed out') {
    return new CacheError('timeout', `Redis did not answer ${operation} in time`);
  }
  const code = errorCode(err);
  if (code !== undefined && TLS_CODE.test(code)) {
    return new CacheError('tls_failed', `TLS to Redis failed (${code})`);
  }
  return new CacheError(
    'unavailable',
    `Redis unavailable for ${operation} (${code ?? 'connection not ready'})`,
  );
}

function parseWindow(reply: unknown): WindowCount {
  if (Array.isArray(reply) && reply.length === 2) {
    const [count, ttl] = reply;
    if (typeof count === 'number' && typeof ttl === 'number') return { count, resetInMs: Math.max(1, ttl) };
  }
  throw new CacheError('command_failed', 'unexpected reply to incrementWindow');
}

class RedisCache implements Cache {
  readonly #redis: Redis & WindowCommand;
  readonly #prefix: string;
  #closing: Promise<void> | undefined;

  constructor(redis: Redis & WindowCommand, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #key(key: string): string {
    if (this.#closing !== undefined) throw new CacheError('closed', 'cache used after close()');
    checkKey(key);
    return this.#prefix + key;
  }

  async #run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw toCacheError(err, operation);
    }
  }

  async get(key: string): Promise<string | null> {
    const k = this.#key(key);
    return this.#run('get', () => this.#redis.get(k));
  }

  async set(key: string, value: string, options: SetOptions): Promise<void> {
    const k = this.#key(key);
    checkValue(value);
    checkTtl('ttlMs', options.ttlMs);
    await this.#run('set', () => this.#redis.set(k, value, 'PX', options.ttlMs));
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const k = this.#key(key);
    checkValue(value);
    checkTtl('ttlMs', ttlMs);
    const reply = await this.#run('setIfAbsent', () => this.#redis.set(k, value, 'PX', ttlMs, 'NX'));
    return reply === 'OK';
  }

  async compareAndSet(key: string, expected: string | null, value: string, ttlMs: number): Promise<boolean> {
    const k = this.#key(key);
    checkValue(value);
    if (expected !== null) checkValue(expected);
    checkTtl('ttlMs', ttlMs);
    const reply = await this.#run('compareAndSet', () =>
      this.#redis.signalCompareAndSet(k, expected === null ? '1' : '0', expected ?? '', value, ttlMs),
    );
    return reply === 1;
  }

  async getAndDelete(key: string): Promise<string | null> {
    const k = this.#key(key);
    return this.#run('getAndDelete', () => this.#redis.getdel(k));
  }

  async delete(key: string): Promise<boolean> {
    const k = this.#key(key);
    return (await this.#run('delete', () => this.#redis.del(k))) > 0;
  }

  async incrementWindow(key: string, windowMs: number): Promise<WindowCount> {
    const k = this.#key(key);
    checkTtl('windowMs', windowMs);
    return parseWindow(
      await this.#run('incrementWindow', () => this.#redis.signalIncrementWindow(k, windowMs)),
    );
  }

  async ping(): Promise<void> {
    if (this.#closing !== undefined) throw new CacheError('closed', 'cache used after close()');
    await this.#run('ping', () => this.#redis.ping());
  }

  close(): Promise<void> {
    this.#closing ??= this.#redis.quit().then(
      () => undefined,
      () => this.#redis.disconnect(),
    );
    return this.#closing;
  }
}

/**
 * Connects to Redis and resolves once it is ready; a server that is down or untrusted rejects within the
 * connect timeout (`unavailable` / `tls_failed`) rather than leaving a client retrying in the background.
 * After start-up, the client reconnects on its own; commands issued meanwhile fail fast with `unavailable`.
 */
export async function createRedisCache(options: RedisCacheOptions): Promise<Cache> {
  const resolved = resolveRedisOptions(options);
  const logger: CacheLogger | undefined = options.logger;
  const redis = new Redis(resolved.redis);
  redis.defineCommand('signalIncrementWindow', { numberOfKeys: 1, lua: INCREMENT_WINDOW_LUA });
  redis.defineCommand('signalCompareAndSet', { numberOfKeys: 1, lua: COMPARE_AND_SET_LUA });

  let lastError: unknown;
  let connected = false;
  let lost = false;
  // Without an 'error' listener ioredis prints every reconnect failure to the console.
  redis.on('error', (err: unknown) => {
    lastError = err;
  });
  redis.on('reconnecting', () => {
    if (!connected) return;
    connected = false;
    lost = true;
    const reason =
      lastError === undefined ? 'connection closed' : toCacheError(lastError, 'connection').message;
    logger?.warn({ reason }, 'Redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (lost) logger?.info({}, 'Redis connection ready again');
    lost = false;
    connected = true;
    lastError = undefined;
  });

  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw toCacheError(lastError ?? err, 'connect');
  }
  logger?.info({ tls: resolved.tls, namespaced: resolved.prefix !== '' }, 'Redis connected');
  return new RedisCache(redis as Redis & WindowCommand, resolved.prefix);
}
