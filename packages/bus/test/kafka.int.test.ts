import { randomBytes } from 'node:crypto';
import { KafkaContainer, type StartedKafkaContainer } from '@testcontainers/kafka';
import { getContainerRuntimeClient } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import { type Bus, createKafkaBus, ensureKafkaTopics } from '../src/index';
import { type BusHarness, describeBusContract } from './contract';
import { recordingLogger, testCrypto } from './helpers';

/**
 * The Kafka adapter against a real broker: KAFKA_BROKERS when set (e.g. deploy/compose's KRaft broker or a CI
 * service), otherwise a throwaway KRaft broker from testcontainers' Kafka module when a Docker engine answers.
 * With neither, the suite is skipped (the dev machines have no Docker engine).
 */
const KAFKA_IMAGE = 'confluentinc/cp-kafka:7.9.0';
/** The Kafka module's plaintext listener inside the container. */
const KAFKA_CONTAINER_PORT = 9093;

const configured = (process.env.KAFKA_BROKERS ?? '')
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b.length > 0);

async function dockerEngineAnswers(): Promise<boolean> {
  try {
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

const source: 'env' | 'testcontainers' | null =
  configured.length > 0 ? 'env' : (await dockerEngineAnswers()) ? 'testcontainers' : null;

let container: Promise<StartedKafkaContainer> | undefined;

/** The brokers to test against; the container starts on first use and is shared by the file. */
async function brokers(): Promise<string[]> {
  if (source === 'env') return configured;
  container ??= new KafkaContainer(KAFKA_IMAGE).withKraft().start();
  const started = await container;
  return [`${started.getHost()}:${started.getMappedPort(KAFKA_CONTAINER_PORT)}`];
}

afterAll(async () => {
  if (container !== undefined) await (await container).stop();
}, 60_000);

const SKIP_REASON = '(needs KAFKA_BROKERS or a Docker engine; neither on the dev machines)';

/**
 * Topics and groups are random per test. 6 s is the broker's default group.min.session.timeout.ms, hence the
 * longer session than PostgreSQL's.
 */
async function kafkaHarness(): Promise<BusHarness> {
  const logger = recordingLogger();
  const crypto = testCrypto();
  let buses: Bus[] = [];
  const settings = {
    brokers: await brokers(),
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

describeBusContract(`kafka adapter ${SKIP_REASON}`, kafkaHarness, {
  skip: source === null,
  killable: false,
});

describe.skipIf(source === null)(`ensureKafkaTopics (signal-cli kafka topics create) ${SKIP_REASON}`, () => {
  it('creates missing topics, accepts existing ones, reports a partition-count mismatch', async () => {
    const settings = { brokers: await brokers(), clientId: 'signal-topics-test' };
    const logger = recordingLogger();
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const specs = [
      { name: `${prefix}.raw-events`, partitions: 3, replicationFactor: 1 },
      { name: `${prefix}.dlq-events`, partitions: 1, replicationFactor: 1 },
    ];
    expect(await ensureKafkaTopics(settings, specs, logger)).toEqual([
      { name: `${prefix}.raw-events`, status: 'created', partitions: 3 },
      { name: `${prefix}.dlq-events`, status: 'created', partitions: 1 },
    ]);
    expect(await ensureKafkaTopics(settings, specs, logger)).toEqual([
      { name: `${prefix}.raw-events`, status: 'exists', partitions: 3 },
      { name: `${prefix}.dlq-events`, status: 'exists', partitions: 1 },
    ]);
    const wider = [{ name: `${prefix}.raw-events`, partitions: 6, replicationFactor: 1 }];
    expect(await ensureKafkaTopics(settings, wider, logger)).toEqual([
      { name: `${prefix}.raw-events`, status: 'partitions_differ', partitions: 3, wanted: 6 },
    ]);
  }, 120_000);
});

describe.skipIf(source === null)(`kafka publish larger than one produce request ${SKIP_REASON}`, () => {
  it('sends it in chunks under the broker limit, in order, and every message can be consumed', async () => {
    const settings = {
      brokers: await brokers(),
      clientId: 'signal-chunks-test',
      defaultReplicationFactor: 1,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
    };
    const bus = createKafkaBus(settings, { logger: recordingLogger(), crypto: testCrypto() });
    try {
      const topic = `t${randomBytes(4).toString('hex')}.delivery-big`;
      await bus.createTopics([{ name: topic, partitions: 1, replicationFactor: 1 }]);
      // Three ~500 KB messages of one key: over the broker's default 1 MiB batch limit as one request.
      const messages = ['a', 'b', 'c'].map((tag) => ({ key: 'one-visitor', value: tag.repeat(500_000) }));
      const receipts = await bus.publish(topic, messages);
      expect(receipts.reduce((n, r) => n + r.count, 0)).toBe(3);
      const seen: string[] = [];
      const subscription = await bus.subscribe({
        groupId: `g-${randomBytes(4).toString('hex')}`,
        topics: [topic],
        fromBeginning: true,
        handler: async (batch) => {
          for (const m of batch.messages) seen.push(m.value.slice(0, 1));
        },
      });
      const deadline = Date.now() + 60_000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await subscription.stop();
      expect(seen).toEqual(['a', 'b', 'c']);
    } finally {
      await bus.close();
    }
  }, 120_000);
});
