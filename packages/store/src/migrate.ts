import { createHash } from 'node:crypto';
import { z } from 'zod';
import { StoreError } from './errors';
import type { StoreLogger } from './logger';
import type { Database, Migration, Queryable, TransactionOptions } from './port';

/**
 * The migrations the store itself owns. Empty on purpose: every package owns and migrates its own tables
 * (bus, audit, identity, management), and the `signal_migrations` ledger is created by `migrate()` itself.
 * Kept as a list so that a shared table, if one ever appears, has an obvious home.
 */
export const storeMigrations: readonly Migration[] = [];

export interface MigrateResult {
  /** Ids applied by this call, in order (empty when everything was already applied). */
  readonly applied: readonly string[];
}

const LEDGER_SQL = `CREATE TABLE IF NOT EXISTS signal_migrations (
  id text PRIMARY KEY,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/**
 * Serialises migrators of the same schema. A transaction-scoped advisory lock is released by COMMIT or
 * ROLLBACK, so a crashed migrator never leaves it held. Keyed by schema so that namespaced deployments (and
 * parallel test schemas) on one server do not wait for each other. On PGlite it is uncontended.
 */
const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext(coalesce(current_schema(), '') || '.signal_migrations'))`;

/**
 * Migrations may run longer than the database's statement timeout (DDL on a large table) and may wait for
 * another migrator's lock, so their transactions lift it, and with it the client-side read timeout.
 */
const UNBOUNDED: TransactionOptions = { statementTimeoutMs: 0 };

const ledgerRow = z.object({ id: z.string(), checksum: z.string() });

const MAX_ID_LENGTH = 200;

interface PlannedMigration extends Migration {
  readonly checksum: string;
}

export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

function validate(migrations: readonly Migration[]): void {
  const seen = new Set<string>();
  for (const m of migrations) {
    if (m.id.length === 0 || m.id.length > MAX_ID_LENGTH) {
      throw new StoreError('invalid_config', `migration ids must be 1 to ${MAX_ID_LENGTH} characters`);
    }
    if (seen.has(m.id)) throw new StoreError('invalid_config', `migration id ${m.id} appears twice`);
    seen.add(m.id);
  }
}

async function appliedChecksums(tx: Queryable, ids: readonly string[]): Promise<Map<string, string>> {
  const result = await tx.query('SELECT id, checksum FROM signal_migrations WHERE id = ANY($1::text[])', [
    ids,
  ]);
  const applied = new Map<string, string>();
  for (const raw of result.rows) {
    const row = ledgerRow.parse(raw);
    applied.set(row.id, row.checksum);
  }
  return applied;
}

/** The owner of a migration: its id up to the first `/` (`bus/0004_…` → `bus`). */
function ownerOf(id: string): string {
  const slash = id.indexOf('/');
  return slash < 0 ? '' : id.slice(0, slash);
}

/**
 * Checks that what was applied is what the code now says: same SQL for every applied migration, and no
 * unapplied migration sitting before an applied one of the same owner (a migration inserted into a released
 * sequence). Across owners the order is not checked: a deployment's list concatenates every package's
 * migrations in dependency order, so a new migration of an earlier package is pending before applied ones of
 * later packages after every upgrade. It cannot depend on them (they come later because they depend on it).
 */
function verify(planned: readonly PlannedMigration[], applied: ReadonlyMap<string, string>): void {
  const firstPending = new Map<string, string>();
  for (const m of planned) {
    const owner = ownerOf(m.id);
    const recorded = applied.get(m.id);
    if (recorded === undefined) {
      if (!firstPending.has(owner)) firstPending.set(owner, m.id);
      continue;
    }
    if (recorded !== m.checksum) {
      throw new StoreError(
        'migration_mismatch',
        `migration ${m.id} was applied with different SQL (checksum changed); add a new migration instead of editing it`,
      );
    }
    const pending = firstPending.get(owner);
    if (pending !== undefined) {
      throw new StoreError(
        'migration_mismatch',
        `migration ${pending} is not applied but the later migration ${m.id} is; migrations must be appended`,
      );
    }
  }
}

/**
 * Applies, in order, the migrations of `migrations` that are not yet recorded in `signal_migrations`, each
 * in its own transaction together with its ledger row, under an advisory lock. Idempotent; safe to run from
 * several processes at once; refuses to run anything when an applied migration's SQL changed.
 */
export async function migrate(
  db: Database,
  migrations: readonly Migration[],
  logger?: StoreLogger,
): Promise<MigrateResult> {
  validate(migrations);
  const planned: PlannedMigration[] = migrations.map((m) => ({ ...m, checksum: migrationChecksum(m.sql) }));
  const ids = planned.map((m) => m.id);

  await db.transaction(async (tx) => {
    await tx.query(LOCK_SQL);
    await tx.exec(LEDGER_SQL);
    verify(planned, await appliedChecksums(tx, ids));
  }, UNBOUNDED);

  const applied: string[] = [];
  for (const migration of planned) {
    const started = performance.now();
    const didApply = await db.transaction(async (tx) => {
      await tx.query(LOCK_SQL);
      const recorded = (await appliedChecksums(tx, [migration.id])).get(migration.id);
      if (recorded !== undefined) {
        // Another migrator got here first; it must have applied the same SQL.
        verify([migration], new Map([[migration.id, recorded]]));
        return false;
      }
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO signal_migrations (id, checksum) VALUES ($1, $2)', [
        migration.id,
        migration.checksum,
      ]);
      return true;
    }, UNBOUNDED);
    if (didApply) {
      applied.push(migration.id);
      logger?.info(
        { migration: migration.id, durationMs: Math.round(performance.now() - started) },
        'migration applied',
      );
    }
  }
  return { applied };
}

/**
 * For services that do not migrate themselves (`signal-cli migrate` does): refuses to start on a database
 * that lacks any of `needed`, or holds one with different SQL (another release), naming the fix.
 */
export async function requireMigrations(
  db: Queryable,
  needed: readonly Migration[],
  service: string,
): Promise<void> {
  const ledger = await db.query<{ present: unknown }>(
    `SELECT to_regclass('signal_migrations') IS NOT NULL AS present`,
  );
  const applied = new Map<string, string>();
  if (ledger.rows[0]?.present === true) {
    const { rows } = await db.query<{ id: unknown; checksum: unknown }>(
      'SELECT id, checksum FROM signal_migrations WHERE id = ANY($1::text[])',
      [needed.map((m) => m.id)],
    );
    for (const row of rows) {
      if (typeof row.id === 'string' && typeof row.checksum === 'string') applied.set(row.id, row.checksum);
    }
  }
  const missing = needed.filter((m) => !applied.has(m.id)).map((m) => m.id);
  const changed = needed
    .filter((m) => applied.has(m.id) && applied.get(m.id) !== migrationChecksum(m.sql))
    .map((m) => m.id);
  if (missing.length > 0 || changed.length > 0) {
    const what = [
      missing.length > 0 ? `missing ${missing.join(', ')}` : '',
      changed.length > 0 ? `applied from another release: ${changed.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    throw new StoreError(
      'migration_mismatch',
      `the database is not migrated for ${service} (${what}): run \`pnpm signal-cli migrate\` with the same DATABASE_URL and SIGNAL_NAMESPACE first`,
    );
  }
}
