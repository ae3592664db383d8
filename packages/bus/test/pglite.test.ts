import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, type Database, migrate } from '@signal/store';
import { type Bus, busMigrations, createPostgresBus } from '../src/index';
import { type ConsumerSafetyHarness, describeConsumerSafety } from './consumer-safety';
import { type BusHarness, describeBusContract } from './contract';
import { recordingLogger, severable, testCrypto } from './helpers';
import { TEST_TIMINGS } from './timings';

/** The embedded deployment: one process, one PGlite directory, every client sharing the one database. */
async function pgliteHarness(): Promise<BusHarness> {
  const root = await mkdtemp(join(tmpdir(), 'signal-bus-'));
  const dataDir = join(root, 'data');
  const logger = recordingLogger();
  const crypto = testCrypto();
  let db: Database = await createDatabase({ kind: 'pglite', dataDir });
  await migrate(db, busMigrations);
  let buses: Bus[] = [];

  const open = (database: Database): Bus => {
    const bus = createPostgresBus({ db: database, logger, crypto, ...TEST_TIMINGS });
    buses.push(bus);
    return bus;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(buses.map((b) => b.close()));
    buses = [];
    await db.close();
  };

  return {
    sessionTimeoutMs: TEST_TIMINGS.sessionTimeoutMs,
    pollIntervalMs: TEST_TIMINGS.pollIntervalMs,
    connect: async () => open(db),
    connectKillable: async () => {
      const { db: cut, fault } = severable(db);
      return { bus: open(cut), kill: () => fault.sever() };
    },
    restart: async () => {
      await closeAll();
      db = await createDatabase({ kind: 'pglite', dataDir });
      await migrate(db, busMigrations);
    },
    close: async () => {
      await closeAll();
      await rm(root, { recursive: true, force: true });
    },
  };
}

describeBusContract('postgres adapter on PGlite (embedded, on disk)', pgliteHarness, { killable: true });

/** Embedded members share the one in-memory database, as the subscriptions of one process do. */
async function pgliteMembers(): Promise<ConsumerSafetyHarness> {
  const db = await createDatabase({ kind: 'pglite' });
  await migrate(db, busMigrations);
  return { connect: async () => db, close: () => db.close() };
}

describeConsumerSafety('PGlite (embedded, one shared database)', pgliteMembers);
