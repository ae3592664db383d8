import { randomBytes } from 'node:crypto';
import { createRedisCache } from '@signal/cache';
import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable, REDIS_URL, redisAvailable } from '@signal/testkit';
import { identityHubMigrations } from '../migrations';
import { cacheSingleUseStore, type SingleUseStore, sqlSingleUseStore } from './single-use';
import { describeSingleUseContract } from './single-use.contract';

const redis = await redisAvailable();
const postgres = await postgresAvailable();

/** Records the ids a test consumed so they can be deleted afterwards (they would expire within minutes anyway). */
function recording(store: SingleUseStore, ids: Set<string>): SingleUseStore {
  return {
    consume(id, expiresAtMs) {
      ids.add(id);
      return store.consume(id, expiresAtMs);
    },
  };
}

describeSingleUseContract(
  'Redis SET NX PX',
  async () => {
    const namespace = `idhub-test-${randomBytes(6).toString('hex')}`;
    const cache = await createRedisCache({ url: REDIS_URL, namespace });
    const ids = new Set<string>();
    let closed = false;
    return {
      store: recording(cacheSingleUseStore(cache), ids),
      async fail() {
        closed = true;
        await cache.close();
      },
      async close() {
        if (!closed) {
          for (const id of ids) await cache.delete(`xdt:jti:${id}`);
          await cache.close();
        }
      },
    };
  },
  !redis,
);

describeSingleUseContract(
  'SQL insert-on-conflict on PostgreSQL',
  async () => {
    const schema = `idhub_${randomBytes(6).toString('hex')}`;
    const db: Database = await createDatabase({
      kind: 'postgres',
      url: POSTGRES_URL,
      maxConnections: 10,
      schema,
    });
    await migrate(db, identityHubMigrations);
    let closed = false;
    return {
      store: sqlSingleUseStore(db),
      async fail() {
        closed = true;
        await db.close();
      },
      async close() {
        if (!closed) await db.close();
        const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
        try {
          await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await admin.close();
        }
      },
    };
  },
  !postgres,
);
