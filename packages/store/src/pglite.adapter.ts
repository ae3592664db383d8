import { existsSync } from 'node:fs';
import { mkdir, open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock';
import { nodeCode, StoreError, type StoreErrorDetails, toStoreError } from './errors';
import type { StoreLogger } from './logger';
import { DURABLE_START_PARAMS, DurableNodeFS, type FileSync, syncDataDir } from './pglite-fsync';
import type { Database, Queryable, QueryResult } from './port';
import { pgliteParams, pgliteParsers, pgliteSerializers } from './type-parsers';

/** Converts query parameters as pg does (type-parsers.ts, `pgliteParams`). */
type PrepareParams = (params: readonly unknown[] | undefined) => unknown[];

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
  /**
   * Syncs a changed data file off the event loop before a checkpoint (`writeBackDataFiles`); default: open
   * it read-only and `datasync`. Tests pass a failing one.
   */
  readonly dataFileSync?: (path: string) => Promise<void>;
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

  get dead(): boolean {
    return this.#fatal !== undefined;
  }

  check(): void {
    if (this.#fatal !== undefined) throw this.#fatal;
  }

  /**
   * Marks the database dead (the first reason wins), after a PANIC or for a reason found outside PostgreSQL
   * (a data file that failed to sync): the process must restart so that recovery rewrites what may not be on
   * disk. `onFatal` is told after the failing call has been answered, not inside it: it may start a shutdown.
   */
  die(why: string, details: StoreErrorDetails = {}): StoreError {
    if (this.#fatal === undefined) {
      const fatal = new StoreError(
        'unavailable',
        `the embedded database stopped ${why}; restart the process so it recovers from its write-ahead log`,
        details,
      );
      this.#fatal = fatal;
      const onFatal = this.#onFatal;
      if (onFatal !== undefined) setImmediate(() => onFatal(fatal));
    }
    return this.#fatal;
  }

  /** Maps a PGlite error, remembering a fatal one. */
  fail(err: unknown, context: string): StoreError {
    const mapped = toStoreError(err, context);
    const severity =
      typeof err === 'object' && err !== null && 'severity' in err ? String(err.severity) : undefined;
    if (severity === 'PANIC' || severity === 'FATAL') {
      return this.die(
        `after a ${severity} (SQLSTATE ${mapped.sqlState ?? 'unknown'})`,
        mapped.sqlState === undefined ? {} : { sqlState: mapped.sqlState },
      );
    }
    return mapped;
  }
}

class PgliteTransaction implements Queryable {
  #tx: Transaction;
  #liveness: Liveness;
  #params: PrepareParams;
  #open = true;

  constructor(tx: Transaction, liveness: Liveness, params: PrepareParams) {
    this.#tx = tx;
    this.#liveness = liveness;
    this.#params = params;
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
      return toResult(await this.#tx.query<R>(sql, this.#params(params)));
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

interface CheckpointSettings {
  readonly dataDir: string;
  /** Checkpoint once this much WAL was written since the last one. */
  readonly walBytes: number;
  /** How often that is checked. */
  readonly everyMs: number;
  readonly logger: StoreLogger | undefined;
  readonly dataFileSync: (path: string) => Promise<void>;
}

/**
 * PGlite is one Postgres backend: one connection, one transaction at a time. Its `transaction()` holds a
 * transaction mutex from BEGIN to COMMIT/ROLLBACK, and its top-level `query()`/`exec()` take the same mutex,
 * so a statement issued outside a transaction waits until the running transaction ends instead of being
 * slipped into it (and rolled back with it). The contract suite checks exactly that.
 *
 * Every call also passes through a gate of our own (`#exclusive`) and checks liveness only once it holds it.
 * Checked before waiting, a statement queued behind one that PANICs would run on the dead backend as soon
 * as PGlite's mutex let it go, and spin there for ever: under load (the bus's flush, consumers' polls and
 * lease renewals all queued at once) the first failed fsync froze the process instead of stopping it.
 */
class PgliteDatabase implements Database {
  readonly kind = 'pglite';
  #db: PGlite;
  #unlock: () => Promise<void>;
  #params: PrepareParams;
  #closing: Promise<void> | undefined;
  readonly #liveness: Liveness;
  /** Settles when the last call that entered the gate has finished (`#exclusive`). */
  #gateTail: Promise<void> = Promise.resolve();

  #checkpoints: ReturnType<typeof setInterval> | undefined;
  #checkpointing = false;
  /** When the files were last all synced: the data directory is synced at open (`syncDataDir`). */
  #lastCheckpoint = Date.now();

  constructor(
    db: PGlite,
    unlock: () => Promise<void>,
    params: PrepareParams,
    onFatal?: (error: StoreError) => void,
  ) {
    this.#db = db;
    this.#unlock = unlock;
    this.#params = params;
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
  startCheckpoints(settings: CheckpointSettings): void {
    this.#checkpoints = setInterval(() => {
      if (this.#checkpointing || this.#closing !== undefined) return;
      this.#checkpointing = true;
      this.#checkpointIfDue(settings).finally(() => {
        this.#checkpointing = false;
      });
    }, settings.everyMs);
    this.#checkpoints.unref();
  }

  async #checkpointIfDue({ dataDir, walBytes, logger, dataFileSync }: CheckpointSettings): Promise<void> {
    try {
      const { rows } = await this.query<{ behind: string }>(
        'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::bigint::text AS behind FROM pg_control_checkpoint()',
      );
      const behind = Number(rows[0]?.behind ?? 0);
      if (behind < walBytes) return;
      const flushStarted = performance.now();
      // Files changed from here on are the next write-back's; moved only once this checkpoint succeeded.
      const writeBackFrom = Date.now();
      let flushed: number;
      try {
        flushed = WRITE_BACK ? await writeBackDataFiles(dataDir, this.#lastCheckpoint, dataFileSync) : 0;
      } catch (err) {
        // A failed sync may have consumed the kernel's only report of a lost write (a descriptor PostgreSQL
        // opens later would not see it, and its CHECKPOINT would then "succeed" and recycle the WAL that can
        // redo the page). So, as PostgreSQL does on a failed fsync: no checkpoint, the database is dead, and
        // a restart recovers from the WAL.
        const fatal = this.#liveness.die(
          `because a data file failed to sync before a checkpoint (${nodeCode(err) ?? 'unknown'})`,
        );
        logger?.error({ err: fatal.message }, 'embedded database data file sync failed');
        return;
      }
      const started = performance.now();
      await this.exec('CHECKPOINT');
      this.#lastCheckpoint = writeBackFrom;
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

  /**
   * Runs `run` once every call that entered before it has finished, after checking (then, not on entry)
   * that the database is open and alive. PGlite serialises its calls as well; this gate only makes the
   * liveness check and the statement one step, so nothing reaches a backend that died while it waited.
   */
  async #exclusive<T>(run: () => Promise<T>): Promise<T> {
    this.#check();
    const previous = this.#gateTail;
    let release!: () => void;
    this.#gateTail = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await previous;
      this.#check();
      return await run();
    } finally {
      release();
    }
  }

  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return this.#exclusive(async () => {
      try {
        return toResult(await this.#db.query<R>(sql, this.#params(params)));
      } catch (err) {
        throw this.#liveness.fail(err, 'query');
      }
    });
  }

  exec(sql: string): Promise<void> {
    return this.#exclusive(async () => {
      try {
        await this.#db.exec(sql);
      } catch (err) {
        throw this.#liveness.fail(err, 'exec');
      }
    });
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#exclusive(() => this.#transaction(fn));
  }

  async #transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // Errors thrown by `fn` itself pass through untouched; only PGlite's own (BEGIN/COMMIT) are mapped.
    let fnError: { readonly err: unknown } | undefined;
    try {
      return await this.#db.transaction(async (pgliteTx) => {
        const tx = new PgliteTransaction(pgliteTx, this.#liveness, this.#params);
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
    // A dead database is left as a crash leaves it: PGlite's close would run a shutdown checkpoint, which
    // after a failed data-file sync could recycle the WAL that recovery needs (and after a PANIC there is no
    // backend to run it). The next open recovers from the WAL.
    this.#closing ??= this.#liveness.dead ? this.#unlock() : this.#db.close().finally(() => this.#unlock());
    return this.#closing;
  }
}

/**
 * Syncs the relation files changed since `sinceMs` (epoch ms; mtime, with a second of slack) through fds of
 * our own, on libuv's thread pool: the kernel writes their dirty pages back while the event loop keeps
 * serving. A CHECKPOINT right after then finds little left to write when it syncs the same files from inside
 * PGlite's synchronous call, which is what blocks the loop. Extra syncs are harmless; a file that vanished
 * meanwhile (a dropped table) is skipped; any other failure is thrown (the caller treats it as fatal).
 * Returns how many files were synced.
 */
async function writeBackDataFiles(
  dataDir: string,
  sinceMs: number,
  sync: (path: string) => Promise<void>,
): Promise<number> {
  const dirs = [join(dataDir, 'global')];
  for (const db of await readdir(join(dataDir, 'base'))) dirs.push(join(dataDir, 'base', db));
  const listed = await Promise.all(dirs.map((dir) => readdir(dir)));
  const paths = dirs.flatMap((dir, i) => (listed[i] ?? []).map((name) => join(dir, name)));
  // Stats in chunks, not file by file (under load each event-loop turn waits for a whole group commit, so
  // a chain of hundreds of awaits would take seconds) and not all at once (they queue on libuv's small
  // thread pool ahead of DNS lookups and password hashing).
  const queue: string[] = [];
  for (let i = 0; i < paths.length; i += STAT_CHUNK) {
    const chunk = paths.slice(i, i + STAT_CHUNK);
    const changed = await Promise.all(
      chunk.map((path) =>
        stat(path).then(
          (info) => info.isFile() && info.mtimeMs >= sinceMs - 1000,
          (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
        ),
      ),
    );
    chunk.forEach((path, j) => {
      if (changed[j]) queue.push(path);
    });
  }
  let synced = 0;
  const worker = async (): Promise<void> => {
    for (let path = queue.pop(); path !== undefined; path = queue.pop()) {
      try {
        await sync(path);
        synced += 1;
      } catch (err) {
        if (!isNotFound(err)) throw err; // else dropped meanwhile
      }
    }
  };
  await Promise.all(Array.from({ length: WRITE_BACK_PARALLELISM }, worker));
  return synced;
}

/** Open read-only, `datasync`, close: on Linux the file's dirty pages are written back for every fd. */
async function datasyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function isNotFound(err: unknown): boolean {
  return nodeCode(err) === 'ENOENT';
}

/**
 * Syncs at once: libuv runs 4 file operations at a time by default, and a sync under load can take tens of
 * ms, so two leave room for everything else that uses the pool. Bounded fds as a bonus.
 */
const WRITE_BACK_PARALLELISM = 2;
const STAT_CHUNK = 64;
/**
 * Linux only: there a sync through our own read-only fd writes back the file's pages for every fd. macOS
 * turns it into F_FULLFSYNC (a full device-cache flush per file, slower than what it saves) and Windows
 * refuses to flush a read-only handle.
 */
const WRITE_BACK = process.platform === 'linux';

export async function openPgliteDatabase(options: PgliteDatabaseOptions): Promise<Database> {
  const params = pgliteParams();
  const common = { parsers: pgliteParsers(), serializers: pgliteSerializers() };
  let db: PGlite;
  let unlock: () => Promise<void> = async () => undefined;
  try {
    if (options.dataDir === undefined) {
      db = await PGlite.create(common);
    } else {
      const dataDir = resolve(options.dataDir);
      await mkdir(dataDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
        throw new StoreError(
          'invalid_config',
          `cannot create data directory ${dataDir} (${nodeCode(err) ?? 'unknown'})`,
        );
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
  const database = new PgliteDatabase(db, unlock, params, options.onFatal);
  if (options.dataDir !== undefined) {
    database.startCheckpoints({
      dataDir: resolve(options.dataDir),
      walBytes: options.checkpointWalBytes ?? DEFAULT_CHECKPOINT_WAL_BYTES,
      everyMs: options.checkpointCheckMs ?? DEFAULT_CHECKPOINT_CHECK_MS,
      logger: options.logger,
      dataFileSync: options.dataFileSync ?? datasyncFile,
    });
  }
  return database;
}
