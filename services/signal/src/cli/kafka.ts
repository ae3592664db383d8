import { ensureKafkaTopics, type TopicOutcome, type TopicSpec } from '@signal/bus';
import { ConfigError, loadConfig, type SignalConfig } from '@signal/config';
import { type ControlPlaneCrypto, createControlPlane } from '@signal/control-plane';
import { TopicNameError, topics } from '@signal/events';
import { kafkaBusSettings } from '@signal/runtime';
import { cliLogger } from './cli-logger';
import { describeError, withDatabase } from './database';
import { parseOptions, UsageError } from './options';
import type { CliIo, Verb } from './verb';

const USAGE = `usage: signal-cli kafka topics create [--integration ID[,ID…]] [--dry-run]

Creates the Kafka topics of the deployment (SIGNAL_NAMESPACE) that are missing: raw-events, dlq-events and
delivery-<integration_id> for every integration in the database (DATABASE_URL), or only for the integrations
given with --integration. Partitions come from KAFKA_RAW_EVENTS_PARTITIONS, KAFKA_DELIVERY_PARTITIONS and
KAFKA_DLQ_PARTITIONS, replicas from KAFKA_REPLICATION_FACTOR; the connection from KAFKA_BROKERS,
KAFKA_TLS_*, KAFKA_SASL_*.

Safe to run again: an existing topic is left as it is. One with a different partition count is reported
(stderr) and not changed: adding partitions moves keys (see docs/kafka.md, "Partitions").

  --integration  comma-separated integration ids; the database is not read
  --dry-run      print the topics that would be wanted, without connecting to Kafka

Output: one line per topic on stdout: created | exists | differs, name, partitions, replicas.`;

/** The topics a deployment needs on Kafka, sized from configuration. */
export function kafkaTopicPlan(config: SignalConfig, integrationIds: readonly string[]): TopicSpec[] {
  const { partitions, replicationFactor } = config.bus.kafka;
  return [
    { name: topics.rawEvents(config.namespace).name, partitions: partitions.rawEvents, replicationFactor },
    { name: topics.dlqEvents(config.namespace).name, partitions: partitions.dlq, replicationFactor },
    ...[...new Set(integrationIds)].sort().map((id) => ({
      name: topics.delivery(config.namespace, id).name,
      partitions: partitions.delivery,
      replicationFactor,
    })),
  ];
}

/**
 * The control plane needs a crypto service; listing integration ids never seals or opens anything, so the
 * CLI passes one that refuses, and this verb needs no ENCRYPTION_KEY.
 */
const idsOnly: ControlPlaneCrypto = {
  sealText() {
    throw new Error('signal-cli kafka reads integration ids only');
  },
  openText() {
    throw new Error('signal-cli kafka reads integration ids only');
  },
  keyIdOf() {
    throw new Error('signal-cli kafka reads integration ids only');
  },
};

function integrationsFromFlag(value: string | undefined, namespace: string): string[] | undefined {
  if (value === undefined) return undefined;
  const ids = value
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id.length > 0);
  if (ids.length === 0) throw new UsageError('--integration needs at least one integration id');
  for (const id of ids) {
    try {
      topics.delivery(namespace, id);
    } catch (err) {
      if (err instanceof TopicNameError) {
        throw new UsageError(`--integration: "${id}" is not a valid integration id (${err.message})`);
      }
      throw err;
    }
  }
  return ids;
}

function line(spec: TopicSpec, outcome: TopicOutcome | undefined): string {
  const status =
    outcome === undefined ? 'wanted' : outcome.status === 'partitions_differ' ? 'differs' : outcome.status;
  const partitions = outcome?.partitions ?? spec.partitions;
  return `${status.padEnd(8)}  ${spec.name}  partitions=${partitions}  replicas=${spec.replicationFactor ?? '-'}\n`;
}

async function topicsCreate(args: readonly string[], io: CliIo): Promise<number> {
  const options = parseOptions(args, { valued: ['integration'], flags: ['dry-run'] });
  const config = loadConfig({ env: io.env, cwd: io.cwd });
  const dryRun = options.flags.has('dry-run');
  // Before the database is opened: without brokers there is nothing to do.
  const settings = dryRun ? null : kafkaBusSettings(config, 'signal-cli');
  const ids =
    integrationsFromFlag(options.values.get('integration'), config.namespace) ??
    (await withDatabase(io, (db) => createControlPlane({ db, crypto: idsOnly }).integrations.listIds()));
  const plan = kafkaTopicPlan(config, ids);
  if (settings === null) {
    for (const spec of plan) io.stdout(line(spec, undefined));
    return 0;
  }
  const outcomes = await ensureKafkaTopics(settings, plan, cliLogger(io, config));
  const byName = new Map(outcomes.map((o) => [o.name, o]));
  for (const spec of plan) io.stdout(line(spec, byName.get(spec.name)));
  for (const o of outcomes) {
    if (o.status === 'partitions_differ') {
      io.stderr(
        `warning: ${o.name} has ${o.partitions} partitions, the configuration asks for ${o.wanted}; left unchanged (docs/kafka.md, "Partitions")\n`,
      );
    }
  }
  return 0;
}

export const kafkaVerb: Verb = {
  name: 'kafka',
  summary: 'kafka topics create: create the Kafka topics of the deployment',
  help: USAGE,
  async run(args, io) {
    const [group, action, ...rest] = args;
    if (group !== 'topics' || action !== 'create') {
      io.stderr(`signal-cli kafka: expected "topics create"\n\n${USAGE}\n`);
      return 2;
    }
    try {
      return await topicsCreate(rest, io);
    } catch (err) {
      if (err instanceof UsageError) {
        io.stderr(`kafka topics create: ${err.message}\n\n${USAGE}\n`);
        return 2;
      }
      if (err instanceof ConfigError) {
        io.stderr(`${err.message}\n`);
        return 1;
      }
      io.stderr(`kafka topics create failed: ${describeError(err)}\n`);
      return 1;
    }
  },
};
