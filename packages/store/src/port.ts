/**
 * The database port. Services and packages (bus, audit, management) depend on this interface only; the
 * PostgreSQL (`pg`) and embedded PGlite adapters implement it and share one contract suite.
 *
 * SQL is PostgreSQL on both adapters (PGlite is Postgres compiled to WASM), with `$1…$n` placeholders.
 * Both adapters return the same JavaScript types (see README, "Types"): `int8`/`bigint`, `numeric`, `date`
 * and `interval` as strings, `timestamptz` as `Date`, `bytea` as `Buffer` (a `Uint8Array`), `json`/`jsonb`
 * parsed. Failures are `StoreError`s whose messages never contain parameter values.
 */
export interface QueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

export interface Queryable {
  /**
   * Runs exactly one statement with bound parameters (extended protocol on both adapters, so a string with
   * two statements is refused rather than half-run).
   */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /**
   * Runs one or more `;`-separated statements without parameters (simple protocol): DDL and migrations.
   * Never build its text from input.
   */
  exec(sql: string): Promise<void>;
}

export interface TransactionOptions {
  /**
   * Statement timeout for this transaction's statements instead of the database's, in ms; 0 = none
   * (migrations: long DDL, waiting for another migrator). PostgreSQL: `SET LOCAL statement_timeout`, and the
   * client-side read timeout follows it (this value + 5 s; none for 0, where only TCP keepalive notices a
   * dead server). PGlite has no statement timeout and ignores it.
   */
  readonly statementTimeoutMs?: number;
}

export interface Database extends Queryable {
  /** `postgres` for a PostgreSQL server via pg, `pglite` for the embedded database. */
  readonly kind: 'postgres' | 'pglite';
  /**
   * Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on throw) on one connection. Use only `tx`
   * inside `fn`: calling the database itself there waits for a second connection (PGlite has one, so it
   * would wait forever). `tx` refuses to run anything once the transaction has ended.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Closes the pool or the embedded database; idempotent. */
  close(): Promise<void>;
}

/**
 * A versioned migration. Each package owns the migrations of its own tables and exports them as an ordered
 * list; ids are namespaced by package (`store/0001_init`, `bus/0001_topics`) and never change once released.
 */
export interface Migration {
  readonly id: string;
  readonly sql: string;
}
