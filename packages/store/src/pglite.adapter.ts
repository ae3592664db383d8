import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock';
import { StoreError, toStoreError } from './errors';
import type { StoreLogger } from './logger';
import { DURABLE_START_PARAMS, type FileSync, installFsync, syncTree } from './pglite-fsync';
import type { Database, Queryable, QueryResult } from './port';
import { pgliteParsers, pgliteSerializers } from './type-parsers';

export interface PgliteDatabaseOptions {
  readonly kind: 'pglite';
  /**
   * Data directory on disk (`SIGNAL_DATA_DIR`, the caller resolves the default `./.signal`); created if
   * missing. Omitted: an in-memory database that disappears on close (tests). One process at a time may
   * open a directory.
   */
  readonly dataDir?: string;
  readonly logger?: StoreLogger;
  /** Syncs a file to disk (pglite-fsync.ts); default `fs.fsyncSync`. Tests pass a recording one. */
  readonly fileSync?: FileSync;
}

function toResult<R>(result: Results<R>): QueryResult<R> {
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length };
}

class PgliteTransaction implements Queryable {
  #tx: Transaction;
  #open = true;

  constructor(tx: Transaction) {
    this.#tx = tx;
  }

  end(): void {
    this.#open = false;
  }

  #check(): void {
    if (!this.#open) throw new StoreError('closed', 'transaction handle used after its transaction ended');
  }

  async query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>> {
    this.#check();
    try {
      return toResult(await this.#tx.query<R>(sql, params === undefined ? [] : [...params]));
    } catch (err) {
      throw toStoreError(err, 'query');
    }
  }

  async exec(sql: string): Promise<void> {
    this.#check();
    try {
      await this.#tx.exec(sql);
    } catch (err) {
      throw toStoreError(err, 'exec');
    }
  }
}

/**
 * PGlite is one Postgres backend: one connection, one transaction at a time. Its `transaction()` holds a
 * transaction mutex from BEGIN to COMMIT/ROLLBACK, and its top-level `query()`/`exec()` take the same mutex,
 * so a statement issued outside a transaction waits until the running transaction ends instead of being
 * slipped into it (and rolled back with it). The contract suite checks exactly that.
 */
class PgliteDatabase implements Database {
  readonly kind = 'pglite';
  #db: PGlite;
  #unlock: () => Promise<void>;
  #closing: Promise<void> | undefined;

  constructor(db: PGlite, unlock: () => Promise<void>) {
    this.#db = db;
    this.#unlock = unlock;
  }

  #check(): void {
    if (this.#closing !== undefined) throw new StoreError('closed', 'database used after close()');
  }

  async query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>> {
    this.#check();
    try {
      return toResult(await this.#db.query<R>(sql, params === undefined ? [] : [...params]));
    } catch (err) {
      throw toStoreError(err, 'query');
    }
  }

  async exec(sql: string): Promise<void> {
    this.#check();
    try {
      await this.#db.exec(sql);
    } catch (err) {
      throw toStoreError(err, 'exec');
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#check();
    // Errors thrown by `fn` itself pass through untouched; only PGlite's own (BEGIN/COMMIT) are mapped.
    let fnError: { readonly err: unknown } | undefined;
    try {
      return await this.#db.transaction(async (pgliteTx) => {
        const tx = new PgliteTransaction(pgliteTx);
        try {
          return await fn(tx);
        } catch (err) {
          fnError = { err };
          throw err;
        } finally {
          tx.end();
        }
      });
    } catch (err) {
      if (fnError !== undefined && fnError.err === err) throw err;
      throw toStoreError(err, 'transaction');
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#db.close().finally(() => this.#unlock());
    return this.#closing;
  }
}

export async function openPgliteDatabase(options: PgliteDatabaseOptions): Promise<Database> {
  const common = { parsers: pgliteParsers(), serializers: pgliteSerializers() };
  let db: PGlite;
  let unlock: () => Promise<void> = async () => undefined;
  try {
    if (options.dataDir === undefined) {
      db = await PGlite.create(common);
    } else {
      const dataDir = resolve(options.dataDir);
      await mkdir(dataDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
        const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown';
        throw new StoreError('invalid_config', `cannot create data directory ${dataDir} (${code})`);
      });
      unlock = await lockDataDir(dataDir);
      // Durable on disk: fsync on, and a real fsync under it (pglite-fsync.ts); then everything written
      // before the hook existed is synced once, before the first COMMIT is acknowledged.
      db = await PGlite.create({ ...common, dataDir, startParams: [...DURABLE_START_PARAMS] });
      try {
        installFsync(db, options.fileSync);
        syncTree(dataDir, options.fileSync);
      } catch (err) {
        await db.close().catch(() => undefined);
        throw err;
      }
    }
  } catch (err) {
    await unlock();
    throw toStoreError(err, 'open embedded database');
  }
  options.logger?.info(
    { kind: 'pglite', storage: options.dataDir === undefined ? 'memory' : 'disk (fsync on)' },
    'database opened',
  );
  return new PgliteDatabase(db, unlock);
}
