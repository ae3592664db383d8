import { type Bus, createKafkaBus } from '../src/index';
import { type BusHarness, describeBusContract } from './contract';
import { recordingLogger, testCrypto } from './helpers';

const brokers = (process.env.KAFKA_BROKERS ?? '')
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b.length > 0);

/**
 * A Kafka cluster at KAFKA_BROKERS (e.g. deploy/compose's KRaft broker). Topics and groups are random per
 * test. 6 s is the broker's default group.min.session.timeout.ms, hence the longer session than PostgreSQL's.
 */
async function kafkaHarness(): Promise<BusHarness> {
  const logger = recordingLogger();
  const crypto = testCrypto();
  let buses: Bus[] = [];
  const settings = {
    brokers,
    clientId: 'signal-contract',
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
    rebalanceTimeoutMs: 10_000,
    retryBackoffMs: 50,
    defaultReplicationFactor: 1,
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(buses.map((b) => b.close()));
    buses = [];
  };
  return {
    sessionTimeoutMs: settings.sessionTimeoutMs,
    pollIntervalMs: 1000,
    connect: async () => {
      const bus = createKafkaBus(settings, { logger, crypto });
      buses.push(bus);
      return bus;
    },
    restart: closeAll,
    close: closeAll,
  };
}

describeBusContract(
  'kafka adapter (needs KAFKA_BROKERS; no broker can run on the dev machines)',
  kafkaHarness,
  {
    skip: brokers.length === 0,
    killable: false,
  },
);
