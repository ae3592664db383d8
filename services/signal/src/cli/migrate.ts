import { migrate } from '@signal/store';
import { ALL_MIGRATIONS } from '../migrations';
import { describeError, withDatabase } from './database';
import type { Verb } from './verb';

export const migrateVerb: Verb = {
  name: 'migrate',
  summary: 'apply the database migrations of every Signal service',
  help: `usage: signal-cli migrate

Applies, in order, every migration not yet applied to the database in DATABASE_URL (or the embedded PGlite
in SIGNAL_DATA_DIR), each in its own transaction, serialised across concurrent runs. A migration whose text
changed after it was applied is refused. Safe to run again: a second run applies nothing.
Run it before starting or upgrading services (the Helm chart runs it as a pre-upgrade hook).`,
  async run(_args, io) {
    try {
      const { applied } = await withDatabase(io, (db) => migrate(db, ALL_MIGRATIONS));
      io.stdout(
        applied.length === 0
          ? 'database is up to date\n'
          : `applied ${applied.length} migration(s):\n${applied.map((id) => `  ${id}\n`).join('')}`,
      );
      return 0;
    } catch (err) {
      io.stderr(`migrate failed: ${describeError(err)}\n`);
      return 1;
    }
  },
};
