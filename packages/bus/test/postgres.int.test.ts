import { randomBytes } from 'node:crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { type Bus, busMigrations, createPostgresBus } from '../src/index';
import { type ConsumerSafetyHarness, describeConsumerSafety } from './consumer-safety';
import { type BusHarness, describeBusContract } from './contract';
import { recordingLogger, severable, testCrypto } from './helpers';

const crypto = testCrypto();

import { TEST_TIMINGS } from './timings';

const available = await postgresAvailable();

/**
 * The production deployment: a PostgreSQL server shared by several processes. Every `connect()` opens its
 * own pool, as another process would; the schema is random per run and dropped at the end.
 */
async function serverHarness(): Promise<BusHarness> {
  const schema = `signal_bus_${randomBytes(6).toString('hex')}`;
  const logger = recordingLogger();
  const open = (): Promise<Database> =>
    createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 4, schema });
  const admin = await open();
  await migrate(admin, busMigrations);
  await admin.close();
  let clients: { bus: Bus; db: Database }[] = [];

  const connect = async (): Promise<{ bus: Bus; db: Database }> => {
    const db = await open();
    const bus = createPostgresBus({ db, logger, crypto, ...TEST_TIMINGS });
    const client = { bus, db };
    clients.push(client);
    return client;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(clients.map((c) => c.bus.close()));
    await Promise.all(clients.map((c) => c.db.close()));
    clients = [];
  };

  return {
    sessionTimeoutMs: TEST_TIMINGS.sessionTimeoutMs,
    pollIntervalMs: TEST_TIMINGS.pollIntervalMs,
    connect: async () => (await connect()).bus,
    connectKillable: async () => {
      const db = await open();
      const { db: cut, fault } = severable(db);
      const bus = createPostgresBus({ db: cut, logger, crypto, ...TEST_TIMINGS });
      clients.push({ bus, db });
      return { bus, kill: () => fault.sever() };
    },
    restart: closeAll,
    close: async () => {
      await closeAll();
      const dropper = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
      try {
        await dropper.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await dropper.close();
      }
    },
  };
}

describeBusContract('postgres adapter on a PostgreSQL server (multi-process)', serverHarness, {
  skip: !available,
  killable: true,
});

/** Each member its own pool, as separate processes; a random schema, dropped at the end. */
async function serverMembers(): Promise<ConsumerSafetyHarness> {
  const schema = `signal_bus_${randomBytes(6).toString('hex')}`;
  const open = (): Promise<Database> =>
    createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 4, schema });
  const admin = await open();
  await migrate(admin, busMigrations);
  await admin.close();
  const pools: Database[] = [];
  return {
    connect: async () => {
      const db = await open();
      pools.push(db);
      return db;
    },
    close: async () => {
      await Promise.all(pools.map((db) => db.close()));
      const dropper = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
      try {
        await dropper.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await dropper.close();
      }
    },
  };
}

describeConsumerSafety('PostgreSQL server (one pool per member)', serverMembers, { skip: !available });
