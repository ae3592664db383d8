import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fsyncSync } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from './create-database';
import { describeDatabaseContract } from './database.contract';
import { isStoreError } from './errors';
import { pgliteSerializers } from './type-parsers';

describeDatabaseContract('PGlite in memory', () => ({
  open: () => createDatabase({ kind: 'pglite' }),
  persistent: false,
}));

describeDatabaseContract('PGlite on disk', () => {
  let dir: string | undefined;
  return {
    persistent: true,
    async open() {
      dir ??= join(await mkdtemp(join(tmpdir(), 'signal-store-')), 'data');
      return createDatabase({ kind: 'pglite', dataDir: dir });
    },
    async cleanup() {
      if (dir !== undefined) await rm(join(dir, '..'), { recursive: true, force: true });
    },
  };
});

describe('PGlite data directory', () => {
  const parent = mkdtemp(join(tmpdir(), 'signal-store-lock-'));
  afterAll(async () => rm(await parent, { recursive: true, force: true }));

  it('refuses a second open of a directory in use, and frees it on close', async () => {
    const dataDir = join(await parent, 'nested', 'data');
    const db = await createDatabase({ kind: 'pglite', dataDir });
    const second = await createDatabase({ kind: 'pglite', dataDir }).catch((err: unknown) => err);
    expect(isStoreError(second) && second.code).toBe('unavailable');
    expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await db.close();
    await expect(access(join(dataDir, 'signal-store.lock'))).rejects.toThrow();
  });
});

describe('PGlite bytea parameters', () => {
  it('binds bytes as a binary parameter (no hex built in JavaScript) and refuses anything else', async () => {
    const serialize = pgliteSerializers()[17] as (value: unknown) => unknown;
    const bytes = Buffer.from([0, 1, 255]);
    // Passed through untouched: PGlite's Bind sends an ArrayBuffer view as the binary form, the bytes as is.
    expect(serialize(bytes)).toBe(bytes);
    for (const wrong of ['\\x0001ff', [0, 1, 255], 7, {}]) {
      expect(() => serialize(wrong)).toThrow(
        new TypeError('bytea parameters must be a Buffer or Uint8Array'),
      );
    }

    const db = await createDatabase({ kind: 'pglite' });
    try {
      await db.exec('CREATE TABLE blobs (body bytea NOT NULL)');
      const refused = await db
        .query('INSERT INTO blobs (body) VALUES ($1)', ['\\x0001ff'])
        .catch((err: unknown) => err);
      expect(isStoreError(refused) && refused.code).toBe('query_failed');
      await db.query('INSERT INTO blobs (body) VALUES ($1)', [bytes]);
      const { rows } = await db.query<{ body: Buffer }>('SELECT body FROM blobs');
      expect(rows.map((r) => Buffer.from(r.body).toString('hex'))).toEqual(['0001ff']);
    } finally {
      await db.close();
    }
  });
});

describe('PGlite durability on disk', () => {
  const parent = mkdtemp(join(tmpdir(), 'signal-store-fsync-'));
  afterAll(async () => rm(await parent, { recursive: true, force: true }));

  it('syncs the data directory on open and the WAL before every COMMIT returns', async () => {
    const dataDir = join(await parent, 'synced');
    const synced: string[] = [];
    const open = () =>
      createDatabase({
        kind: 'pglite',
        dataDir,
        fileSync: (fd, path) => {
          fsyncSync(fd);
          synced.push(path);
        },
      });
    const db = await open();
    try {
      // Written without syncs (here: initdb's files): on disk before the first acknowledgement, pg_control
      // last (it names the checkpoint recovery starts from), then the directory's own entry in its parent.
      const control = join(dataDir, 'global', 'pg_control');
      expect(synced).toContain(join(dataDir, 'base'));
      expect(synced.slice(-2)).toEqual([control, join(dataDir, '..')].map((p) => resolve(p)));
      expect((await db.query('SELECT current_setting($1) AS fsync', ['fsync'])).rows).toEqual([
        { fsync: 'on' },
      ]);

      await db.exec('CREATE TABLE t (n integer)');
      for (const n of [1, 2, 3]) {
        synced.length = 0;
        await db.query('INSERT INTO t (n) VALUES ($1)', [n]);
        expect(synced.filter((p) => p.includes('/pg_wal/'))).not.toHaveLength(0);
      }
      synced.length = 0;
      await db.transaction(async (tx) => {
        await tx.query('INSERT INTO t (n) VALUES (4)');
        await tx.query('INSERT INTO t (n) VALUES (5)');
        expect(synced).toEqual([]);
      });
      expect(synced.filter((p) => p.includes('/pg_wal/'))).not.toHaveLength(0);

      // A new WAL segment: the file and the pg_wal directory entry are synced (directories too).
      synced.length = 0;
      await db.query('SELECT pg_switch_wal()');
      await db.query('INSERT INTO t (n) VALUES (6)');
      expect(synced.filter((p) => p.endsWith('/pg_wal'))).not.toHaveLength(0);
    } finally {
      await db.close();
    }

    // Reopened: what the last run left is synced before PostgreSQL starts its recovery, pg_control last.
    synced.length = 0;
    const again = await open();
    try {
      const control = resolve(join(dataDir, 'global', 'pg_control'));
      expect(synced.indexOf(control)).toBeGreaterThan(synced.indexOf(resolve(join(dataDir, 'base'))));
      expect((await again.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 6 }]);
    } finally {
      await again.close();
    }
  });

  it('never acknowledges a COMMIT whose WAL could not be synced, and stops answering (never freezes) after it', async () => {
    const dataDir = join(await parent, 'failing');
    let failing = false;
    const fatal: unknown[] = [];
    const db = await createDatabase({
      kind: 'pglite',
      dataDir,
      onFatal: (err) => fatal.push(err),
      fileSync: (fd) => {
        if (failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        fsyncSync(fd);
      },
    });
    try {
      await db.exec('CREATE TABLE t (n integer)');
      failing = true;
      const refused = await db.query('INSERT INTO t (n) VALUES (1)').catch((err: unknown) => err);
      expect(isStoreError(refused) && refused.code).toBe('unavailable');
      // The process is told once, so that it can stop and let its supervisor restart it.
      await new Promise((resolve) => setImmediate(resolve));
      expect(fatal).toEqual([refused]);
      // PostgreSQL PANICs on a failed fsync; PGlite's backend is then gone (a further statement would spin
      // inside WASM and freeze the process). Every later call fails at once, saying what to do.
      failing = false;
      for (const again of [
        () => db.query('SELECT 1'),
        () => db.exec('SELECT 1'),
        () => db.transaction(async (tx) => tx.query('SELECT 1')),
      ]) {
        const err = await again().catch((e: unknown) => e);
        expect(isStoreError(err) && err.code).toBe('unavailable');
        expect(String(err)).toMatch(/restart the process/);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(fatal).toHaveLength(1);
    } finally {
      await db.close().catch(() => undefined);
    }
  });
  it('fails the statements queued behind one that PANICked, instead of running them on the dead backend', {
    timeout: 60_000,
  }, async () => {
    // Run in a child with a deadline: on the dead backend a statement spins inside WASM and blocks the event
    // loop, so an in-process test could not even time out. This froze the all-in-one under load.
    const fixture = fileURLToPath(new URL('../test/queued-after-panic.fixture.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', fixture, join(await parent, 'queued')],
      { timeout: 30_000, killSignal: 'SIGKILL' },
    );
    expect(JSON.parse(stdout)).toEqual(['unavailable', 'unavailable', 'unavailable', 'unavailable']);
  });

  it('fails a transaction whose statement PANICked without rolling back on the dead backend', {
    timeout: 60_000,
  }, async () => {
    // As above, in a child. A PANIC can come before COMMIT (a WAL segment filling up mid-transaction flushes
    // the WAL); PGlite's transaction() then issues a ROLLBACK on the dead backend. It must fail, not spin, and
    // so must the next statement.
    const fixture = fileURLToPath(new URL('../test/panic-inside-transaction.fixture.ts', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', fixture, join(await parent, 'inside')],
      { timeout: 30_000, killSignal: 'SIGKILL' },
    );
    expect(JSON.parse(stdout)).toEqual(['unavailable', 'unavailable']);
  });
});

describe('PGlite checkpoints on disk', () => {
  it.runIf(process.platform === 'linux')(
    'stops (never checkpoints) when a data file fails to sync before the checkpoint',
    async () => {
      const dataDir = join(await mkdtemp(join(tmpdir(), 'signal-store-ckpt-eio-')), 'data');
      const fatal: unknown[] = [];
      let syncs = 0;
      const db = await createDatabase({
        kind: 'pglite',
        dataDir,
        checkpointWalBytes: 1024 * 1024,
        checkpointCheckMs: 50,
        onFatal: (err) => fatal.push(err),
        dataFileSync: async () => {
          syncs += 1;
          throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        },
      });
      const redo = async () =>
        (await db.query<{ lsn: string }>('SELECT redo_lsn::text AS lsn FROM pg_control_checkpoint()')).rows[0]
          ?.lsn;
      try {
        await db.exec('CREATE TABLE blobs (body bytea NOT NULL)');
        for (let i = 0; i < 40; i += 1) {
          await db.query('INSERT INTO blobs (body) VALUES ($1)', [randomBytes(64 * 1024)]);
        }
        // A sync that failed may have taken the kernel's only report of a lost write: like PostgreSQL on a
        // failed fsync, the database stops, and the checkpoint that would recycle the WAL never runs.
        await expect.poll(() => fatal.length, { timeout: 10_000, interval: 50 }).toBe(1);
        expect(syncs).toBeGreaterThan(0);
        const err = await redo().catch((e: unknown) => e);
        expect(isStoreError(err) && err.code).toBe('unavailable');
        expect(String(err)).toMatch(/failed to sync before a checkpoint \(EIO\).*restart the process/);
        expect(fatal[0]).toBe(err);
        // Reopened, it recovers from the WAL and every committed row is there.
        await db.close();
        const again = await createDatabase({ kind: 'pglite', dataDir });
        try {
          const { rows } = await again.query<{ n: number }>('SELECT count(*)::integer AS n FROM blobs');
          expect(rows[0]?.n).toBe(40);
        } finally {
          await again.close();
        }
      } finally {
        await db.close().catch(() => undefined);
        await rm(join(dataDir, '..'), { recursive: true, force: true });
      }
    },
  );

  it('checkpoints once enough WAL was written, so pg_wal and crash recovery stay bounded', async () => {
    const dataDir = join(await mkdtemp(join(tmpdir(), 'signal-store-ckpt-')), 'data');
    const checkpoints: Record<string, unknown>[] = [];
    const db = await createDatabase({
      kind: 'pglite',
      dataDir,
      checkpointWalBytes: 1024 * 1024,
      checkpointCheckMs: 50,
      logger: {
        debug() {},
        info(obj: object, msg: string) {
          if (msg === 'embedded database checkpoint') checkpoints.push(obj as Record<string, unknown>);
        },
        warn() {},
        error() {},
      },
    });
    const redo = async () =>
      (await db.query<{ lsn: string }>('SELECT redo_lsn::text AS lsn FROM pg_control_checkpoint()')).rows[0]
        ?.lsn;
    try {
      await db.exec('CREATE TABLE blobs (body bytea NOT NULL)');
      const before = await redo();
      for (let i = 0; i < 40; i += 1) {
        await db.query('INSERT INTO blobs (body) VALUES ($1)', [randomBytes(64 * 1024)]);
      }
      // ~2.5 MB of WAL: PGlite alone would not checkpoint before close.
      await expect.poll(redo, { timeout: 10_000, interval: 50 }).not.toBe(before);
      const { rows } = await db.query<{ behind: string }>(
        'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::bigint::text AS behind FROM pg_control_checkpoint()',
      );
      expect(Number(rows[0]?.behind)).toBeLessThan(2 * 1024 * 1024);
      // The changed files (the table's at least) were synced off the event loop before CHECKPOINT, so its
      // own syncs, which block the loop, had little left to write.
      expect(checkpoints[0]).toMatchObject({ filesWrittenBack: expect.any(Number) });
      if (process.platform === 'linux') expect(checkpoints[0]?.filesWrittenBack).toBeGreaterThan(0);
    } finally {
      await db.close();
      await rm(join(dataDir, '..'), { recursive: true, force: true });
    }
  });
});
