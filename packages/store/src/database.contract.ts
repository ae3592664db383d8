import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStoreError, type StoreError } from './errors';
import { migrate, migrationChecksum } from './migrate';
import type { Database, Migration } from './port';

/**
 * The one behaviour suite every Database adapter must pass (PGlite in memory and on disk, PostgreSQL).
 * Exported as `@signal/store/contract` so a new adapter is held to the same contract. Each test works in
 * tables and migration ids with random names, so targets may be shared and never need to be empty.
 */
export interface DatabaseContractTarget {
  /** Opens the database under test. Called before the suite, and again after close() when `persistent`. */
  open(): Promise<Database>;
  /** True when data written before close() is found after open() again (a data dir, a server schema). */
  readonly persistent: boolean;
  /** Removes what the suite left (schema, directory); runs after the database is closed. */
  cleanup?(): Promise<void>;
}

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

async function expectStoreError(promise: Promise<unknown>): Promise<StoreError> {
  try {
    await promise;
  } catch (err) {
    if (isStoreError(err)) return err;
    throw err;
  }
  throw new Error('expected a StoreError, but the operation succeeded');
}

export function describeDatabaseContract(
  name: string,
  makeTarget: () => DatabaseContractTarget,
  options: { readonly skip?: boolean } = {},
): void {
  describe.skipIf(options.skip === true)(`Database contract: ${name}`, () => {
    const target = makeTarget();
    let db: Database;

    beforeAll(async () => {
      db = await target.open();
    });

    afterAll(async () => {
      await db?.close();
      await target.cleanup?.();
    });

    describe('queries', () => {
      it('binds parameters and returns the documented JavaScript types', async () => {
        const when = new Date('2024-05-06T07:08:09.123Z');
        const bytes = Buffer.from([0, 1, 2, 254, 255]);
        const { rows } = await db.query(
          `SELECT $1::int4 AS int4, $2::int8 AS int8, $3::numeric AS num, $4::float8 AS float, $5::bool AS flag,
                  $6::text AS txt, $7::jsonb AS doc, $8::bytea AS bin, $9::timestamptz AS ts,
                  '2024-02-29'::date AS day, '1 day 02:00:00'::interval AS span, $10::int4[] AS ints,
                  ARRAY[9007199254740993, 1]::int8[] AS bigs, ARRAY['a', NULL]::text[] AS texts,
                  NULL::text AS nothing, 32767::int2 AS small`,
          [
            7,
            9007199254740993n,
            '12345678901234567890.5',
            1.5,
            true,
            'héllo ☃',
            JSON.stringify({ a: [1, 'x'], b: null }),
            bytes,
            when,
            [1, 2, 3],
          ],
        );
        expect(rows).toHaveLength(1);
        const row = rows[0] ?? {};
        expect(row.int4).toBe(7);
        expect(row.int8).toBe('9007199254740993');
        expect(row.num).toBe('12345678901234567890.5');
        expect(row.float).toBe(1.5);
        expect(row.flag).toBe(true);
        expect(row.txt).toBe('héllo ☃');
        expect(row.doc).toEqual({ a: [1, 'x'], b: null });
        expect(row.bin).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(row.bin as Uint8Array).equals(bytes)).toBe(true);
        expect(row.ts).toBeInstanceOf(Date);
        expect((row.ts as Date).toISOString()).toBe(when.toISOString());
        expect(row.day).toBe('2024-02-29');
        expect(row.span).toBe('1 day 02:00:00');
        expect(row.ints).toEqual([1, 2, 3]);
        expect(row.bigs).toEqual(['9007199254740993', '1']);
        expect(row.texts).toEqual(['a', null]);
        expect(row.nothing).toBeNull();
        expect(row.small).toBe(32767);
      });

      it('reports rowCount for inserts, updates, deletes and selects', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
        const inserted = await db.query(`INSERT INTO ${table} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
        expect(inserted.rowCount).toBe(3);
        expect((await db.query(`UPDATE ${table} SET v = 'z' WHERE id <= $1`, [2])).rowCount).toBe(2);
        expect((await db.query(`DELETE FROM ${table} WHERE id = $1`, [3])).rowCount).toBe(1);
        const selected = await db.query<{ id: number; v: string }>(`SELECT id, v FROM ${table} ORDER BY id`);
        expect(selected.rowCount).toBe(2);
        expect(selected.rows).toEqual([
          { id: 1, v: 'z' },
          { id: 2, v: 'z' },
        ]);
      });

      it('refuses two statements in one query() but runs them with exec()', async () => {
        const table = uniqueName('t');
        await db.exec(
          `CREATE TABLE ${table} (id int); INSERT INTO ${table} VALUES (1); INSERT INTO ${table} VALUES (2)`,
        );
        const err = await expectStoreError(db.query(`INSERT INTO ${table} VALUES (3); DELETE FROM ${table}`));
        expect(err.code).toBe('query_failed');
        const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${table}`);
        expect(rows).toEqual([{ n: 2 }]);
      });

      it('maps a unique violation to conflict without the duplicate value in the error', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (email text CONSTRAINT ${table}_email_key UNIQUE)`);
        const secret = 'alice.secret@example.com';
        await db.query(`INSERT INTO ${table} (email) VALUES ($1)`, [secret]);
        const err = await expectStoreError(db.query(`INSERT INTO ${table} (email) VALUES ($1)`, [secret]));
        expect(err.code).toBe('conflict');
        expect(err.retryable).toBe(false);
        expect(err.sqlState).toBe('23505');
        expect(err.constraint).toBe(`${table}_email_key`);
        expect(JSON.stringify({ ...err, message: err.message, stack: err.stack })).not.toContain(
          'alice.secret',
        );
      });

      it('binds a Buffer to a text parameter as its UTF-8 text, and refuses bytes that are not UTF-8', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (body text NOT NULL)`);
        await db.query(`INSERT INTO ${table} (body) VALUES ($1::text)`, [
          Buffer.from('héllo ☃\n{"a":1}', 'utf8'),
        ]);
        const { rows } = await db.query<{ body: string }>(`SELECT body FROM ${table}`);
        expect(rows).toEqual([{ body: 'héllo ☃\n{"a":1}' }]);
        await expectStoreError(
          db.query(`INSERT INTO ${table} (body) VALUES ($1::text)`, [Buffer.from([0xc3, 0x28])]),
        );
        expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 1 }]);
      });

      it('round-trips bytea exactly: empty, every byte value, a view into a larger buffer, 70 KB', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (id int PRIMARY KEY, body bytea NOT NULL)`);
        const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const backing = randomBytes(64);
        const values: Uint8Array[] = [
          Buffer.alloc(0),
          everyByte,
          Buffer.concat([everyByte, Buffer.from(everyByte).reverse()]),
          // A Uint8Array that is a window into a bigger ArrayBuffer: only the window is bound.
          new Uint8Array(backing.buffer, backing.byteOffset + 5, 17),
          randomBytes(70 * 1024),
        ];
        for (const [i, value] of values.entries()) {
          await db.query(`INSERT INTO ${table} (id, body) VALUES ($1, $2)`, [i, value]);
        }
        const { rows } = await db.query<{ id: number; body: Uint8Array; n: number }>(
          `SELECT id, body, octet_length(body) AS n FROM ${table} ORDER BY id`,
        );
        expect(rows).toHaveLength(values.length);
        for (const row of rows) {
          const sent = values[row.id] as Uint8Array;
          expect(row.body).toBeInstanceOf(Uint8Array);
          expect(row.n).toBe(sent.byteLength);
          expect(Buffer.from(row.body).equals(Buffer.from(sent))).toBe(true);
        }
        // As a cast parameter too, and compared on the server side (no parser involved).
        const cast = await db.query<{ same: boolean; hex: string }>(
          `SELECT $1::bytea = decode($2, 'hex') AS same, encode($1::bytea, 'hex') AS hex`,
          [everyByte, everyByte.toString('hex')],
        );
        expect(cast.rows).toEqual([{ same: true, hex: everyByte.toString('hex') }]);
      });

      it('converts non-string parameters as pg does: JSON, array literals, ISO 8601 text, hex elements', async () => {
        const when = new Date('2024-01-02T03:04:05.678Z');
        const list = ['a', 'b,c', null, 'q"uote'];
        const { rows } = await db.query(
          `SELECT $1::text AS obj, $2::text AS list_text, $2::text[] AS list, $3::int4[] AS grid,
                  $4::int8[] AS bigs, $5::text AS at_text, $5::timestamptz AS at, $6::jsonb AS doc,
                  $7::text[] AS blobs, $8::text AS big, $9::text AS flag, $10::text AS missing`,
          [
            { a: 1, b: [1, 'x'] },
            list,
            [
              [1, 2],
              [3, 4],
            ],
            [2n ** 62n + 1n],
            when,
            { a: [1, 'x'] },
            [Buffer.from('hi')],
            2n ** 62n,
            true,
            undefined,
          ],
        );
        const row = rows[0] ?? {};
        expect(row.obj).toBe('{"a":1,"b":[1,"x"]}');
        expect(row.list_text).toBe('{"a","b,c",NULL,"q\\"uote"}');
        expect(row.list).toEqual(list);
        expect(row.grid).toEqual([
          [1, 2],
          [3, 4],
        ]);
        expect(row.bigs).toEqual(['4611686018427387905']);
        // pg writes a Date in the process's time zone, with its offset: the same instant.
        expect(row.at_text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.678[+-]\d\d:\d\d$/);
        expect(new Date(row.at_text as string).getTime()).toBe(when.getTime());
        expect((row.at as Date).toISOString()).toBe(when.toISOString());
        expect(row.doc).toEqual({ a: [1, 'x'] });
        expect(row.blobs).toEqual(['\\x6869']);
        expect(row.big).toBe('4611686018427387904');
        expect(row.flag).toBe('true');
        expect(row.missing).toBeNull();
        // A JS array is a Postgres array, not JSON (README: pass JSON.stringify(v) for json): refused alike.
        const err = await expectStoreError(db.query('SELECT $1::jsonb AS doc', [[1, 2]]));
        expect(err.code).toBe('query_failed');
        expect(err.sqlState).toBe('22P02');
      });

      it('keeps parameter values out of data-exception errors', async () => {
        const err = await expectStoreError(
          db.query('SELECT $1::int AS n', ['4111111111111111-not-a-number']),
        );
        expect(err.code).toBe('query_failed');
        expect(err.sqlState?.startsWith('22')).toBe(true);
        expect(`${err.message} ${err.stack ?? ''}`).not.toContain('4111111111111111');
      });
    });

    describe('transactions', () => {
      it('commits and returns the callback value', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (id int)`);
        const value = await db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${table} VALUES ($1)`, [1]);
          await tx.query(`INSERT INTO ${table} VALUES ($1)`, [2]);
          const inside = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
          return inside.rows[0]?.n;
        });
        expect(value).toBe(2);
        expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 2 }]);
      });

      it('rolls back when the callback throws and rethrows the same error', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (id int)`);
        const boom = new Error('business rule failed');
        await expect(
          db.transaction(async (tx) => {
            await tx.query(`INSERT INTO ${table} VALUES (1)`);
            await tx.exec(`CREATE TABLE ${table}_side (id int)`);
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 0 }]);
        const side = await db.query('SELECT to_regclass($1) AS t', [`${table}_side`]);
        expect(side.rows).toEqual([{ t: null }]);
      });

      it('does not commit when a failed statement was swallowed inside the callback', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
        const err = await expectStoreError(
          db.transaction(async (tx) => {
            await tx.query(`INSERT INTO ${table} VALUES (1)`);
            await tx.query(`INSERT INTO ${table} VALUES (1)`).catch(() => undefined);
            return 'done';
          }),
        );
        expect(err.code).toBe('query_failed');
        expect(err.sqlState).toBe('25P02');
        expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 0 }]);
      });

      it('refuses to use a transaction handle after the transaction ended', async () => {
        let leaked: { query: Database['query'] } | undefined;
        await db.transaction(async (tx) => {
          leaked = tx;
        });
        const err = await expectStoreError(leaked?.query('SELECT 1') ?? Promise.resolve());
        expect(err.code).toBe('closed');
      });

      it('never slips a concurrent outside statement into a running transaction', async () => {
        const table = uniqueName('t');
        await db.exec(`CREATE TABLE ${table} (who text)`);
        let outside: Promise<unknown> = Promise.resolve();
        await expect(
          db.transaction(async (tx) => {
            await tx.query(`INSERT INTO ${table} VALUES ('inside')`);
            outside = db.query(`INSERT INTO ${table} VALUES ('outside')`);
            await sleep(50);
            await tx.query(`INSERT INTO ${table} VALUES ('inside-2')`);
            throw new Error('roll back the inside rows');
          }),
        ).rejects.toThrow('roll back the inside rows');
        await outside;
        const { rows } = await db.query(`SELECT who FROM ${table}`);
        expect(rows).toEqual([{ who: 'outside' }]);
      });

      it('serialises concurrent read-modify-write transactions', async () => {
        const table = uniqueName('t');
        await db.exec(
          `CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL); INSERT INTO ${table} VALUES (1, 0)`,
        );
        const workers = 12;
        await Promise.all(
          Array.from({ length: workers }, () =>
            db.transaction(async (tx) => {
              const read = await tx.query<{ v: number }>(`SELECT v FROM ${table} WHERE id = 1 FOR UPDATE`);
              await sleep(2);
              await tx.query(`UPDATE ${table} SET v = $1 WHERE id = 1`, [(read.rows[0]?.v ?? 0) + 1]);
            }),
          ),
        );
        expect((await db.query(`SELECT v FROM ${table}`)).rows).toEqual([{ v: workers }]);
      });
    });

    describe('migrations', () => {
      function migrationsFor(prefix: string): Migration[] {
        return [
          { id: `${prefix}/0001_items`, sql: `CREATE TABLE ${prefix}_items (id int PRIMARY KEY, name text)` },
          {
            id: `${prefix}/0002_seed`,
            sql: `INSERT INTO ${prefix}_items VALUES (1, 'first'); INSERT INTO ${prefix}_items VALUES (2, 'second')`,
          },
          { id: `${prefix}/0003_column`, sql: `ALTER TABLE ${prefix}_items ADD COLUMN note text` },
        ];
      }

      it('applies pending migrations in order, once, and records their checksums', async () => {
        const prefix = uniqueName('m');
        const list = migrationsFor(prefix);
        const first = await migrate(db, list);
        expect(first.applied).toEqual(list.map((m) => m.id));
        const second = await migrate(db, list);
        expect(second.applied).toEqual([]);
        expect((await db.query(`SELECT count(*)::int AS n FROM ${prefix}_items`)).rows).toEqual([{ n: 2 }]);
        const ledger = await db.query<{ id: string; checksum: string; applied_at: unknown }>(
          'SELECT id, checksum, applied_at FROM signal_migrations WHERE id LIKE $1 ORDER BY id',
          [`${prefix}/%`],
        );
        expect(ledger.rows.map((r) => [r.id, r.checksum])).toEqual(
          list.map((m) => [m.id, migrationChecksum(m.sql)]),
        );
        expect(ledger.rows.every((r) => r.applied_at instanceof Date)).toBe(true);

        const extended = [
          ...list,
          { id: `${prefix}/0004_more`, sql: `INSERT INTO ${prefix}_items VALUES (3, 'third')` },
        ];
        expect((await migrate(db, extended)).applied).toEqual([`${prefix}/0004_more`]);
      });

      it('refuses to run when an applied migration changed, without applying anything', async () => {
        const prefix = uniqueName('m');
        const list = migrationsFor(prefix);
        await migrate(db, list.slice(0, 2));
        const edited = [
          list[0] as Migration,
          { id: `${prefix}/0002_seed`, sql: `INSERT INTO ${prefix}_items VALUES (1, 'FIRST')` },
          list[2] as Migration,
        ];
        const err = await expectStoreError(migrate(db, edited));
        expect(err.code).toBe('migration_mismatch');
        expect(err.message).toContain(`${prefix}/0002_seed`);
        const columns = await db.query(
          'SELECT column_name FROM information_schema.columns WHERE table_name = $1',
          [`${prefix}_items`],
        );
        expect(columns.rows.map((r) => r.column_name)).not.toContain('note');
      });

      it('refuses a new migration inserted before an applied one', async () => {
        const prefix = uniqueName('m');
        const list = migrationsFor(prefix);
        await migrate(db, [list[0] as Migration, list[2] as Migration]);
        const err = await expectStoreError(migrate(db, list));
        expect(err.code).toBe('migration_mismatch');
      });

      it("applies a package's new migration after another package's applied ones (an upgrade)", async () => {
        // A deployment's list is every package's migrations in dependency order: after an upgrade, a new
        // migration of an earlier package sits before applied migrations of later packages.
        const early = uniqueName('m');
        const late = uniqueName('m');
        const released = [...migrationsFor(early).slice(0, 2), ...migrationsFor(late)];
        await migrate(db, released);
        const upgraded = [...migrationsFor(early), ...migrationsFor(late)];
        expect((await migrate(db, upgraded)).applied).toEqual([`${early}/0003_column`]);
      });

      it('rolls back a failing migration with its ledger row and keeps the earlier ones', async () => {
        const prefix = uniqueName('m');
        const good: Migration = { id: `${prefix}/0001_ok`, sql: `CREATE TABLE ${prefix}_ok (id int)` };
        const bad: Migration = {
          id: `${prefix}/0002_bad`,
          sql: `CREATE TABLE ${prefix}_half (id int); SELECT * FROM ${prefix}_missing`,
        };
        const err = await expectStoreError(migrate(db, [good, bad]));
        expect(err.code).toBe('query_failed');
        const ledger = await db.query('SELECT id FROM signal_migrations WHERE id LIKE $1', [`${prefix}/%`]);
        expect(ledger.rows).toEqual([{ id: good.id }]);
        expect((await db.query('SELECT to_regclass($1) AS t', [`${prefix}_half`])).rows).toEqual([
          { t: null },
        ]);
        const fixed: Migration = { id: bad.id, sql: `CREATE TABLE ${prefix}_half (id int)` };
        expect((await migrate(db, [good, fixed])).applied).toEqual([fixed.id]);
      });

      it('applies each migration once when migrate() runs concurrently', async () => {
        const prefix = uniqueName('m');
        await db.exec(`CREATE TABLE ${prefix}_runs (id text)`);
        const list: Migration[] = Array.from({ length: 4 }, (_, i) => ({
          id: `${prefix}/000${i}`,
          sql: `INSERT INTO ${prefix}_runs VALUES ('${i}')`,
        }));
        const results = await Promise.all(Array.from({ length: 5 }, () => migrate(db, list)));
        expect(results.flatMap((r) => r.applied).sort()).toEqual(list.map((m) => m.id).sort());
        const runs = await db.query(`SELECT id FROM ${prefix}_runs ORDER BY id`);
        expect(runs.rows).toEqual(['0', '1', '2', '3'].map((id) => ({ id })));
      });

      it('rejects duplicate migration ids before touching the database', async () => {
        const id = `${uniqueName('m')}/0001`;
        const err = await expectStoreError(
          migrate(db, [
            { id, sql: 'SELECT 1' },
            { id, sql: 'SELECT 2' },
          ]),
        );
        expect(err.code).toBe('invalid_config');
      });
    });

    describe('lifecycle', () => {
      it.skipIf(!target.persistent)(
        'keeps data and the migration ledger across close and reopen',
        async () => {
          const table = uniqueName('t');
          const list: Migration[] = [{ id: `${table}/0001`, sql: `CREATE TABLE ${table} (v text)` }];
          await migrate(db, list);
          await db.query(`INSERT INTO ${table} VALUES ($1)`, ['kept']);
          await db.close();
          db = await target.open();
          expect((await db.query(`SELECT v FROM ${table}`)).rows).toEqual([{ v: 'kept' }]);
          expect((await migrate(db, list)).applied).toEqual([]);
        },
      );

      it('closes idempotently and refuses work afterwards', async () => {
        await db.close();
        await db.close();
        expect((await expectStoreError(db.query('SELECT 1'))).code).toBe('closed');
        expect((await expectStoreError(db.exec('SELECT 1'))).code).toBe('closed');
        expect((await expectStoreError(db.transaction(async () => 1))).code).toBe('closed');
      });
    });
  });
}
