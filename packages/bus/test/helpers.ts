import { randomBytes } from 'node:crypto';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import type { Database, Queryable } from '@signal/store';
import { StoreError } from '@signal/store';
import type { Bus, BusLogger, ConsumedMessage } from '../src/index';

export function randomId(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string;
}

/** A logger that keeps what it was told, for assertions and for a failing test's diagnosis. */
export function recordingLogger(): BusLogger & { readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (obj: object, msg: string): void => {
      entries.push({ level, obj, msg });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export async function waitForAsync(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

export function deferred(): Deferred {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Cuts a client off its database, as a network partition or a killed process would. */
export interface FaultSwitch {
  sever(): void;
}

/**
 * A Database that behaves exactly like `inner` until `sever()`, after which every call fails with the
 * store's `unavailable` error. Closing it does not close `inner` (the harness owns that).
 */
export function severable(inner: Database): { readonly db: Database; readonly fault: FaultSwitch } {
  let severed = false;
  const check = (): void => {
    if (severed) throw new StoreError('unavailable', 'query: the database connection was lost');
  };
  const guard = (q: Queryable): Queryable => ({
    async query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]) {
      check();
      const result = await q.query<R>(sql, params);
      check();
      return result;
    },
    async exec(sql: string) {
      check();
      await q.exec(sql);
    },
  });
  const outer = guard(inner);
  const db: Database = {
    kind: inner.kind,
    query: outer.query,
    exec: outer.exec,
    transaction: async (fn) => {
      check();
      return inner.transaction((tx) => fn(guard(tx)));
    },
    close: async () => {},
  };
  return {
    db,
    fault: {
      sever() {
        severed = true;
      },
    },
  };
}

/**
 * A Database that behaves exactly like `inner` but first awaits `before(sql, params)` for every query (inside
 * transactions too): to count a client's statements, or to hold one back until the test has arranged what
 * should happen meanwhile. Closing it does not close `inner`.
 */
export function intercepted(
  inner: Database,
  before: (sql: string, params: readonly unknown[] | undefined) => Promise<void> | void,
): Database {
  const wrap = (q: Queryable): Queryable => ({
    async query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]) {
      await before(sql, params);
      return q.query<R>(sql, params);
    },
    exec: (sql: string) => q.exec(sql),
  });
  const outer = wrap(inner);
  return {
    kind: inner.kind,
    query: outer.query,
    exec: outer.exec,
    transaction: (fn) => inner.transaction((tx) => fn(wrap(tx))),
    close: async () => {},
  };
}

/** A crypto service with a fresh random key, as every bus is built with (segments are sealed). */
export function testCrypto(key: Buffer = randomBytes(32), previous?: Buffer): CryptoService {
  return createCryptoService({
    keyring: createKeyring({ current: key, ...(previous === undefined ? {} : { previous }) }),
  });
}

/** Subscribes `groupId` to `topic` and appends every consumed message to `into`. */
export function collect(bus: Bus, groupId: string, topic: string, into: ConsumedMessage[], batchSize = 10) {
  return bus.subscribe({
    groupId,
    topics: [topic],
    batchSize,
    handler: async (batch) => {
      into.push(...batch.messages);
    },
  });
}
