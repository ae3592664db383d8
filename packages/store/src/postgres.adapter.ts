import pg from 'pg';
import { StoreError, toStoreError } from './errors';
import type { StoreLogger } from './logger';
import type { Database, Queryable, QueryResult } from './port';
import { type PostgresDatabaseOptions, resolvePoolConfig } from './postgres-connection';

/** pg supports `queryMode` (force the extended protocol even without parameters); @types/pg lacks it. */
type ExtendedQueryConfig = pg.QueryConfig<unknown[]> & { queryMode: 'extended' };

function extended(sql: string, params: readonly unknown[] | undefined): ExtendedQueryConfig {
  return { text: sql, values: params === undefined ? [] : [...params], queryMode: 'extended' };
}

function toResult<R>(result: pg.QueryResult): QueryResult<R> {
  return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
}

/** A transaction handle that refuses to run anything once its transaction has ended. */
class PostgresTransaction implements Queryable {
  #client: pg.PoolClient;
  #open = true;

  constructor(client: pg.PoolClient) {
    this.#client = client;
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
      return toResult<R>(await this.#client.query(extended(sql, params)));
    } catch (err) {
      throw toStoreError(err, 'query');
    }
  }

  async exec(sql: string): Promise<void> {
    this.#check();
    try {
      await this.#client.query(sql);
    } catch (err) {
      throw toStoreError(err, 'exec');
    }
  }
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  #pool: pg.Pool;
  #logger: StoreLogger | undefined;
  #closing: Promise<void> | undefined;

  constructor(pool: pg.Pool, logger: StoreLogger | undefined) {
    this.#pool = pool;
    this.#logger = logger;
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
      return toResult<R>(await this.#pool.query(extended(sql, params)));
    } catch (err) {
      throw toStoreError(err, 'query');
    }
  }

  async exec(sql: string): Promise<void> {
    this.#check();
    try {
      await this.#pool.query(sql);
    } catch (err) {
      throw toStoreError(err, 'exec');
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#check();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw toStoreError(err, 'connect');
    }
    // A checked-out client whose socket fails emits 'error'; unhandled, that would crash the process. The
    // failure also rejects the statement in flight, which is where the caller sees it.
    const onError = (err: Error) => {
      const mapped = toStoreError(err, 'transaction connection');
      this.#logger?.warn(
        { code: mapped.code, reason: mapped.message },
        'database connection failed in a transaction',
      );
    };
    client.on('error', onError);
    const done = (destroy: boolean) => {
      client.off('error', onError);
      client.release(destroy);
    };
    const tx = new PostgresTransaction(client);
    try {
      await client.query('BEGIN');
    } catch (err) {
      tx.end();
      done(true);
      throw toStoreError(err, 'begin');
    }
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      tx.end();
      await rollback(client, done);
      throw err;
    }
    tx.end();
    let commit: pg.QueryResult;
    try {
      commit = await client.query('COMMIT');
    } catch (err) {
      // The outcome of a COMMIT whose connection broke is unknown; the connection is not reused.
      done(true);
      throw toStoreError(err, 'commit');
    }
    done(false);
    // Postgres answers COMMIT of an aborted transaction (a statement failed and `fn` swallowed the error)
    // with ROLLBACK and no error; surface it, as PGlite does.
    if (commit.command === 'ROLLBACK') {
      throw new StoreError('query_failed', 'transaction rolled back: a statement inside it had failed', {
        sqlState: '25P02',
      });
    }
    return result;
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }
}

async function rollback(client: pg.PoolClient, done: (destroy: boolean) => void): Promise<void> {
  try {
    await client.query('ROLLBACK');
    done(false);
  } catch {
    // A connection that cannot roll back is broken; destroying it ends the transaction server-side.
    done(true);
  }
}

async function ensureSchema(pool: pg.Pool, schema: string): Promise<void> {
  try {
    // `schema` is validated against /^[a-z_][a-z0-9_]{0,62}$/ by resolvePoolConfig.
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } catch (err) {
    // Two processes creating the same schema at once: one of them loses on the catalog's unique index.
    const mapped = toStoreError(err, 'create schema');
    if (mapped.sqlState !== '23505' && mapped.sqlState !== '42P06') throw mapped;
  }
}

/**
 * Opens a pg Pool and checks it can reach the server (and create the schema, when one is set), so a wrong
 * URL, credential or CA fails at start-up rather than on the first request.
 */
export async function openPostgresDatabase(options: PostgresDatabaseOptions): Promise<Database> {
  const config = resolvePoolConfig(options);
  const logger: StoreLogger | undefined = options.logger;
  const pool = new pg.Pool(config);
  // Without a listener an idle client's socket error (server restart) would crash the process.
  pool.on('error', (err) => {
    const mapped = toStoreError(err, 'idle connection');
    logger?.warn({ code: mapped.code, reason: mapped.message }, 'idle database connection failed; discarded');
  });
  try {
    if (options.schema === undefined) await pool.query('SELECT 1');
    else await ensureSchema(pool, options.schema);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw toStoreError(err, 'connect');
  }
  logger?.info(
    {
      kind: 'postgres',
      maxConnections: config.max,
      tls: config.ssl !== false,
      schema: options.schema ?? null,
    },
    'database connected',
  );
  return new PostgresDatabase(pool, logger);
}
