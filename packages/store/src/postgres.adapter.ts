import type { Duplex } from 'node:stream';
import pg from 'pg';
import { StoreError, toStoreError } from './errors';
import type { StoreLogger } from './logger';
import type { Database, Queryable, QueryResult, TransactionOptions } from './port';
import {
  type PostgresDatabaseOptions,
  QUERY_TIMEOUT_MARGIN_MS,
  resolveCloseTimeout,
  resolvePoolConfig,
} from './postgres-connection';

/**
 * pg supports `queryMode` (force the extended protocol even without parameters) and a per-statement
 * `query_timeout`; @types/pg lacks both.
 */
type StatementConfig = pg.QueryConfig<unknown[]> & { queryMode?: 'extended'; query_timeout?: number };

/**
 * A per-statement `query_timeout` of 0 means "the pool's default" to pg, so "none" is the longest timer
 * Node can set (~24.8 days).
 */
const NO_READ_TIMEOUT = 2 ** 31 - 1;

function withReadTimeout(config: StatementConfig, readTimeoutMs: number | undefined): StatementConfig {
  if (readTimeoutMs !== undefined) config.query_timeout = readTimeoutMs;
  return config;
}

function extended(
  sql: string,
  params: readonly unknown[] | undefined,
  readTimeoutMs?: number,
): StatementConfig {
  const values = params === undefined ? [] : [...params];
  return withReadTimeout({ text: sql, values, queryMode: 'extended' }, readTimeoutMs);
}

function toResult<R>(result: pg.QueryResult): QueryResult<R> {
  return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
}

/**
 * An error that leaves the connection in an unknown state: no answer within the read timeout (the statement
 * may still be running, or the connection is dead), or the connection broke. Such a connection is destroyed,
 * not rolled back and reused: a ROLLBACK on it would queue behind the unanswered statement.
 */
function connectionLost(err: StoreError): boolean {
  return err.sqlState === undefined && (err.code === 'timeout' || err.code === 'unavailable');
}

/** A transaction handle that refuses to run anything once its transaction has ended. */
class PostgresTransaction implements Queryable {
  #client: pg.PoolClient;
  #readTimeoutMs: number | undefined;
  #open = true;
  #lost = false;

  constructor(client: pg.PoolClient, readTimeoutMs: number | undefined) {
    this.#client = client;
    this.#readTimeoutMs = readTimeoutMs;
  }

  /** True once a statement failed in a way that leaves the connection unusable. */
  get lost(): boolean {
    return this.#lost;
  }

  end(): void {
    this.#open = false;
  }

  #check(): void {
    if (!this.#open) throw new StoreError('closed', 'transaction handle used after its transaction ended');
  }

  #fail(err: unknown, context: string): StoreError {
    const mapped = toStoreError(err, context);
    if (connectionLost(mapped)) this.#lost = true;
    return mapped;
  }

  async query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>> {
    this.#check();
    try {
      return toResult<R>(await this.#client.query(extended(sql, params, this.#readTimeoutMs)));
    } catch (err) {
      throw this.#fail(err, 'query');
    }
  }

  async exec(sql: string): Promise<void> {
    this.#check();
    try {
      await this.#client.query(withReadTimeout({ text: sql }, this.#readTimeoutMs));
    } catch (err) {
      throw this.#fail(err, 'exec');
    }
  }
}

/** Validates a transaction's own statement timeout; undefined when it keeps the database's. */
function transactionTimeout(options: TransactionOptions): number | undefined {
  const ms = options.statementTimeoutMs;
  if (ms === undefined) return undefined;
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new StoreError('invalid_config', `statementTimeoutMs must be a non-negative integer (got ${ms})`);
  }
  return ms;
}

/** Resolves true if `promise` settles (either way) within `ms`, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    const settled = promise.then(
      () => true as const,
      () => true as const,
    );
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

function closed(socket: Duplex): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  #pool: pg.Pool;
  #logger: StoreLogger | undefined;
  #closing: Promise<void> | undefined;
  readonly #sockets: ReadonlySet<Duplex>;
  readonly #closeTimeoutMs: number;

  constructor(
    pool: pg.Pool,
    sockets: ReadonlySet<Duplex>,
    closeTimeoutMs: number,
    logger: StoreLogger | undefined,
  ) {
    this.#pool = pool;
    this.#sockets = sockets;
    this.#closeTimeoutMs = closeTimeoutMs;
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

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#check();
    const statementTimeoutMs = transactionTimeout(options);
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
    const readTimeoutMs =
      statementTimeoutMs === undefined
        ? undefined
        : statementTimeoutMs === 0
          ? NO_READ_TIMEOUT
          : statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS;
    const tx = new PostgresTransaction(client, readTimeoutMs);
    try {
      await client.query('BEGIN');
      // An integer, validated by transactionTimeout.
      if (statementTimeoutMs !== undefined) {
        await client.query(`SET LOCAL statement_timeout = ${statementTimeoutMs}`);
      }
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
      if (tx.lost) done(true);
      else await rollback(client, done);
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
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /**
   * Ends the pool, which waits for checked-out connections to come back and says goodbye on each. Bounded:
   * a dead peer never acknowledges the goodbye, and a statement without a read timeout (statement timeout
   * off) or a transaction whose callback never returns would hold `pool.end()` forever. After
   * `closeTimeoutMs` the remaining sockets are destroyed (statements still on them fail with `unavailable`).
   */
  async #shutdown(): Promise<void> {
    const ended = this.#pool.end().then(() => Promise.all([...this.#sockets].map(closed)));
    if (await settlesWithin(ended, this.#closeTimeoutMs)) return;
    const open = this.#sockets.size;
    for (const socket of this.#sockets) socket.destroy();
    this.#logger?.warn(
      { connections: open, closeTimeoutMs: this.#closeTimeoutMs },
      'database connections did not close in time; their sockets were destroyed',
    );
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
  const closeTimeoutMs = resolveCloseTimeout(options);
  const logger: StoreLogger | undefined = options.logger;
  const pool = new pg.Pool(config);
  // Every open connection's socket (the TLS socket when TLS is on), so close() can cut those that hang.
  const sockets = new Set<Duplex>();
  pool.on('connect', (client) => {
    const socket = client.connection.stream;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
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
  return new PostgresDatabase(pool, sockets, closeTimeoutMs, logger);
}
