import { loadConfig, type SignalConfig } from '@signal/config';
import { openDatabase } from '@signal/runtime';
import type { Database } from '@signal/store';
import type { CliIo } from './verb';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The deployment's database as the services see it: DATABASE_URL, or the embedded PGlite in
 * SIGNAL_DATA_DIR (stop `pnpm start` first: an embedded data directory has one writer at a time).
 */
export async function withDatabase<T>(
  io: CliIo,
  fn: (db: Database, config: SignalConfig) => Promise<T>,
): Promise<T> {
  const config = loadConfig({ env: io.env, cwd: io.cwd });
  const db = await openDatabase(config, silent, { allowEmbedded: true, applicationName: 'signal-cli' });
  try {
    return await fn(db, config);
  } finally {
    await db.close();
  }
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
