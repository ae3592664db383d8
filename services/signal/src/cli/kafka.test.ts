import { loadConfig } from '@signal/config';
import { describe, expect, it } from 'vitest';
import { cli } from './cli.fixtures';
import { kafkaTopicPlan } from './kafka';

const config = (env: Record<string, string>) => loadConfig({ env, cwd: '/nonexistent-signal-cwd' });

describe('kafkaTopicPlan', () => {
  it('raw-events, dlq-events and one delivery topic per integration, sized from configuration', () => {
    const plan = kafkaTopicPlan(
      config({
        SIGNAL_NAMESPACE: 'shop',
        KAFKA_REPLICATION_FACTOR: '1',
        KAFKA_RAW_EVENTS_PARTITIONS: '24',
        KAFKA_DELIVERY_PARTITIONS: '4',
        KAFKA_DLQ_PARTITIONS: '2',
      }),
      ['int_b', 'int_a', 'int_b'],
    );
    expect(plan).toEqual([
      { name: 'shop.raw-events', partitions: 24, replicationFactor: 1 },
      { name: 'shop.dlq-events', partitions: 2, replicationFactor: 1 },
      { name: 'shop.delivery-int_a', partitions: 4, replicationFactor: 1 },
      { name: 'shop.delivery-int_b', partitions: 4, replicationFactor: 1 },
    ]);
  });

  it('defaults: 12/3/8 partitions, 3 replicas', () => {
    expect(kafkaTopicPlan(config({}), ['int_1'])).toEqual([
      { name: 'signal.raw-events', partitions: 12, replicationFactor: 3 },
      { name: 'signal.dlq-events', partitions: 3, replicationFactor: 3 },
      { name: 'signal.delivery-int_1', partitions: 8, replicationFactor: 3 },
    ]);
  });
});

describe('signal-cli kafka topics create (without a broker)', () => {
  it('--dry-run --integration prints the plan without Kafka or a database', async () => {
    const { code, stdout, stderr } = await cli(
      ['kafka', 'topics', 'create', '--dry-run', '--integration', 'int_a,int_b'],
      { KAFKA_REPLICATION_FACTOR: '1' },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trimEnd().split('\n')).toEqual([
      'wanted    signal.raw-events  partitions=12  replicas=1',
      'wanted    signal.dlq-events  partitions=3  replicas=1',
      'wanted    signal.delivery-int_a  partitions=8  replicas=1',
      'wanted    signal.delivery-int_b  partitions=8  replicas=1',
    ]);
  });

  it('without KAFKA_BROKERS: exit 1 naming the variable, before any database is opened', async () => {
    // No DATABASE_URL either: reaching the database would open an embedded one; the check comes first.
    const { code, stdout, stderr } = await cli(['kafka', 'topics', 'create'], {});
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      'kafka topics create failed: KAFKA_BROKERS must be set: list the Kafka bootstrap brokers as host:port,host:port\n',
    );
  });

  it('a configuration error is reported as such (exit 1)', async () => {
    const { code, stderr } = await cli(['kafka', 'topics', 'create'], {
      KAFKA_BROKERS: 'k:9092',
      KAFKA_SASL_MECHANISM: 'scram-sha-256',
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set/);
  });

  it.each([
    [['kafka'], /expected "topics create"/],
    [['kafka', 'topics', 'delete'], /expected "topics create"/],
    [['kafka', 'topics', 'create', '--partitions', '3'], /unknown option --partitions/],
    [['kafka', 'topics', 'create', '--integration', 'bad id!'], /--integration: "bad id!" is not a valid/],
    [['kafka', 'topics', 'create', '--integration', ','], /--integration needs at least one/],
  ])('usage error for %j: exit 2 with the usage', async (argv, message) => {
    const { code, stderr } = await cli(argv, { KAFKA_BROKERS: 'k:9092' });
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain('usage: signal-cli kafka topics create');
  });

  it('is listed in the verbs and has --help', async () => {
    expect((await cli(['--help'], {})).stdout).toMatch(/kafka +kafka topics create/);
    const help = await cli(['kafka', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('KAFKA_REPLICATION_FACTOR');
  });
});
