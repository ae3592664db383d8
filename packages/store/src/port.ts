/**
 * The database port. Services and packages (bus, audit, management) depend on this interface only; the
 * PostgreSQL (`pg`) and embedded PGlite adapters implement it and share one contract suite.
 *
 * SQL is PostgreSQL on both adapters (PGlite is Postgres compiled to WASM), with `$1…$n` placeholders.
 */
export interface QueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface Database extends Queryable {
  /** `postgres` for a PostgreSQL server via pg, `pglite` for the embedded database. */
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on throw) on one connection. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
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
