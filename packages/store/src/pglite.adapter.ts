import { existsSync } from 'node:fs';
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock';
import { StoreError, toStoreError } from './errors';
import type { StoreLogger } from './logger';
import { DURABLE_START_PARAMS, DurableNodeFS, type FileSync, syncDataDir } from './pglite-fsync';
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
  /** On disk: checkpoint once this much WAL was written since the last checkpoint (default 64 MiB). */
  readonly checkpointWalBytes?: number;
  /** On disk: how often the WAL written since the last checkpoint is checked (default 5 s). */
  readonly checkpointCheckMs?: number;
  /**
   * Called once, soon after PostgreSQL stopped (a PANIC, e.g. on a failed fsync, or a FATAL): from then on
   * every call fails with `unavailable` until the process restarts and recovers from the WAL. A long-running
   * process should stop and exit, so that its supervisor restarts it.
   */
  readonly onFatal?: (error: StoreError) => void;
}

const DEFAULT_CHECKPOINT_WAL_BYTES = 64 * 1024 * 1024;
/**
 * Under sustained load the WAL written between two checks is what the next checkpoint has to write and sync,
 * and what a restart after a crash replays. Measured with the bus at ~110 MB/s of WAL: checked every 30 s,
 * pg_wal reached 1.6 GiB and the checkpoint stalled the event loop for 2 s; every 5 s, pg_wal stays under
 * ~300 MiB with ~0.5 s stalls, at the same throughput. The check itself is one query (~0.2 ms).
 */
const DEFAULT_CHECKPOINT_CHECK_MS = 5_000;

function toResult<R>(result: Results<R>): QueryResult<R> {
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length };
}

/**
 * After a PANIC (or FATAL) PGlite's single backend is gone, and a further statement on it spins forever
 * inside the synchronous WASM call, freezing the event loop. The first such error marks the database dead:
 * every later call fails at once with `unavailable` (the bus answers 503), and readiness fails, until the
 * process restarts and PostgreSQL recovers from its WAL. The statement that failed may or may not have
 * committed (as with a dropped connection to a server); consumers deduplicate by message id.
 */
class Liveness {
  #fatal: StoreError | undefined;
  readonly #onFatal: ((error: StoreError) => void) | undefined;

  constructor(onFatal?: (error: StoreError) => void) {
    this.#onFatal = onFatal;
  }

  check(): void {
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  /** Maps a PGlite error, remembering a fatal one. */
  fail(err: unknown, context: string): StoreError {
    const mapped = toStoreError(err, context);
    const severity =
      typeof err === 'object' && err !== null && 'severity' in err ? String(err.severity) : undefined;
    if (severity === 'PANIC' || severity === 'FATAL') {
      if (this.#fatal === undefined) {
        const sqlState = mapped.sqlState ?? 'unknown';
        const fatal = new StoreError(
          'unavailable',
          `the embedded database stopped after a ${severity} (SQLSTATE ${sqlState}); restart the process so it recovers from its write-ahead log`,
          mapped.sqlState === undefined ? {} : { sqlState: mapped.sqlState },
        );
        this.#fatal = fatal;
        // After the failing call has been answered, not inside it: the listener may start a shutdown.
        const onFatal = this.#onFatal;
        if (onFatal !== undefined) setImmediate(() => onFatal(fatal));
      }
      return this.#fatal;
    }
    return mapped;
  }
}

class PgliteTransaction implements Queryable {
  #tx: Transaction;
  #liveness: Liveness;
  #open = true;

  constructor(tx: Transaction, liveness: Liveness) {
    this.#tx = tx;
    this.#liveness = liveness;
  }

  end(): void {
    this.#open = false;
  }

  #check(): void {
    if (!this.#open) throw new StoreError('closed', 'transaction handle used after its transaction ended');
    this.#liveness.check();
  }

  async query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>> {
    this.#check();
    try {
      return toResult(await this.#tx.query<R>(sql, params === undefined ? [] : [...params]));
    } catch (err) {
      throw this.#liveness.fail(err, 'query');
    }
  }

  async exec(sql: string): Promise<void> {
    this.#check();
    try {
      await this.#tx.exec(sql);
    } catch (err) {
      throw this.#liveness.fail(err, 'exec');
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
  readonly #liveness: Liveness;

  #checkpoints: ReturnType<typeof setInterval> | undefined;
  #checkpointing = false;

  constructor(db: PGlite, unlock: () => Promise<void>, onFatal?: (error: StoreError) => void) {
    this.#db = db;
    this.#unlock = unlock;
    this.#liveness = new Liveness(onFatal);
  }

  /**
   * PGlite runs PostgreSQL as one process, without the checkpointer: nothing checkpoints until close, so
   * `pg_wal` grows with every write and a restart after a crash replays everything since the last open.
   * Checked every `everyMs`, a CHECKPOINT runs once `walBytes` of WAL were written since the last one: WAL
   * on disk stays around that size (segments are recycled) and recovery replays at most about that much.
   * A checkpoint blocks the event loop while it writes and syncs the dirty pages, so the files changed since
   * the last one are first synced off the loop (`writeBackDataFiles`): measured under sustained bus load,
   * the pause fell from ~1.9 to ~0.65 ms per MB of WAL since the last checkpoint (~470 ms to ~250 ms).
   */
  startCheckpoints(
    dataDir: string,
    walBytes: number,
    everyMs: number,
    logger: StoreLogger | undefined,
  ): void {
    this.#checkpoints = setInterval(() => {
      if (this.#checkpointing || this.#closing !== undefined) return;
      this.#checkpointing = true;
      this.#checkpointIfDue(dataDir, walBytes, logger).finally(() => {
        this.#checkpointing = false;
      });
    }, everyMs);
    this.#checkpoints.unref();
  }

  /** When the files were last all synced: the data directory is synced at open (`syncDataDir`). */
  #lastCheckpoint = Date.now();

  async #checkpointIfDue(dataDir: string, walBytes: number, logger: StoreLogger | undefined): Promise<void> {
    try {
      const { rows } = await this.query<{ behind: string }>(
        'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::bigint::text AS behind FROM pg_control_checkpoint()',
      );
      const behind = Number(rows[0]?.behind ?? 0);
      if (behind < walBytes) return;
      const flushStarted = performance.now();
      const since = this.#lastCheckpoint;
      this.#lastCheckpoint = Date.now();
      const flushed = await writeBackDataFiles(dataDir, since);
      const started = performance.now();
      await this.exec('CHECKPOINT');
      logger?.info(
        {
          walBytes: behind,
          filesWrittenBack: flushed,
          writeBackMs: Math.round(started - flushStarted),
          ms: Math.round(performance.now() - started),
        },
        'embedded database checkpoint',
      );
    } catch (err) {
      // Closed meanwhile, or dead after a PANIC (reported by the failing statement itself); retried next time.
      logger?.warn({ err: toStoreError(err, 'checkpoint').message }, 'embedded database checkpoint failed');
    }
  }

  #check(): void {
    if (this.#closing !== undefined) throw new StoreError('closed', 'database used after close()');
    this.#liveness.check();
  }

  async query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>> {
    this.#check();
    try {
      return toResult(await this.#db.query<R>(sql, params === undefined ? [] : [...params]));
    } catch (err) {
      throw this.#liveness.fail(err, 'query');
    }
  }

  async exec(sql: string): Promise<void> {
    this.#check();
    try {
      await this.#db.exec(sql);
    } catch (err) {
      throw this.#liveness.fail(err, 'exec');
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#check();
    // Errors thrown by `fn` itself pass through untouched; only PGlite's own (BEGIN/COMMIT) are mapped.
    let fnError: { readonly err: unknown } | undefined;
    try {
      return await this.#db.transaction(async (pgliteTx) => {
        const tx = new PgliteTransaction(pgliteTx, this.#liveness);
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
      throw this.#liveness.fail(err, 'transaction');
    }
  }

  close(): Promise<void> {
    clearInterval(this.#checkpoints);
    this.#closing ??= this.#db.close().finally(() => this.#unlock());
    return this.#closing;
  }
}

/**
 * Syncs the relation files changed since `sinceMs` (epoch ms; mtime, with a second of slack) through fds of
 * our own, on libuv's thread pool: the kernel writes their dirty pages back while the event loop keeps
 * serving. A CHECKPOINT right after then finds little left to write when it syncs the same files from inside
 * PGlite's synchronous call, which is what blocks the loop. Extra syncs are harmless; a file that vanished
 * meanwhile (a dropped table) is skipped. Returns how many files were synced.
 */
async function writeBackDataFiles(dataDir: string, sinceMs: number): Promise<number> {
  const dirs = [join(dataDir, 'global')];
  try {
    for (const db of await readdir(join(dataDir, 'base'))) dirs.push(join(dataDir, 'base', db));
  } catch {
    return 0;
  }
  // Stat everything at once, not file by file: under load each event-loop turn waits for a whole group
  // commit, so a chain of hundreds of awaits would take seconds.
  const listed = await Promise.all(dirs.map((dir) => readdir(dir).catch(() => [] as string[])));
  const paths = dirs.flatMap((dir, i) => (listed[i] ?? []).map((name) => join(dir, name)));
  const changed = await Promise.all(
    paths.map((path) =>
      stat(path).then(
        (info) => info.isFile() && info.mtimeMs >= sinceMs - 1000,
        () => false,
      ),
    ),
  );
  const queue = paths.filter((_, i) => changed[i]);
  // A bounded number of fds at a time: never enough to run the process out of descriptors, which would
  // also fail its sockets.
  let synced = 0;
  const worker = async (): Promise<void> => {
    for (let path = queue.pop(); path !== undefined; path = queue.pop()) {
      try {
        const handle = await open(path, 'r');
        try {
          await handle.datasync();
          synced += 1;
        } finally {
          await handle.close();
        }
      } catch {
        // Gone (a dropped table) or unreadable: CHECKPOINT syncs what it wrote itself either way.
      }
    }
  };
  await Promise.all(Array.from({ length: WRITE_BACK_PARALLELISM }, worker));
  return synced;
}

/** Files synced at once by `writeBackDataFiles` (libuv runs 4 file operations at a time by default). */
const WRITE_BACK_PARALLELISM = 16;

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
      // Durable on disk: fsync on, and a real fsync under it from before PostgreSQL starts (pglite-fsync.ts).
      const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
      if (!fresh) syncDataDir(dataDir, options.fileSync);
      const fs = new DurableNodeFS(dataDir, options.fileSync);
      db = await PGlite.create({ ...common, dataDir, fs, startParams: [...DURABLE_START_PARAMS] });
      try {
        if (!fs.installed) throw new StoreError('unavailable', 'PGlite did not install the fsync hook');
        if (fresh) syncDataDir(dataDir, options.fileSync);
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
  const database = new PgliteDatabase(db, unlock, options.onFatal);
  if (options.dataDir !== undefined) {
    database.startCheckpoints(
      resolve(options.dataDir),
      options.checkpointWalBytes ?? DEFAULT_CHECKPOINT_WAL_BYTES,
      options.checkpointCheckMs ?? DEFAULT_CHECKPOINT_CHECK_MS,
      options.logger,
    );
  }
  return database;
}
