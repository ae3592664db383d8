import { type Bus, type Subscription, subscribeTo } from '@signal/bus';
import { consumerGroup, topics } from '@signal/events';
import type { Metrics } from '@signal/telemetry';
import type { IdentityHubLogger } from '../ports';
import type { IdentityGraph } from './identity-graph';

export interface GraphConsumerOptions {
  readonly bus: Bus;
  readonly namespace: string;
  readonly graph: Pick<IdentityGraph, 'ingest'>;
  readonly logger: IdentityHubLogger;
  readonly metrics: Metrics;
  /** Events per batch (default 100). */
  readonly batchSize?: number;
}

export interface GraphConsumer {
  start(): Promise<void>;
  stop(deadlineMs: number): Promise<void>;
}

/**
 * Feeds `raw-events` into the identity graph, as consumer group `<ns>.identity-hub`. Events of one
 * visitor arrive in order (the topic is keyed by anonymous id); each is applied in its own transaction and
 * the batch is committed only once all are applied, so a crash or a database error redelivers it, which the
 * graph tolerates (every write is idempotent). A message that does not decode is skipped and counted: the
 * Event Processor owns dead-lettering `raw-events`, so two consumers do not file the same dead letter. An
 * event of a person erased after it was received is dropped by the graph and counted as `erased`.
 */
export function createGraphConsumer(options: GraphConsumerOptions): GraphConsumer {
  const { bus, namespace, graph, logger, metrics } = options;
  const processed = metrics.counter(
    'signal_identity_graph_events_total',
    'raw-events applied to the identity graph (or dropped: no identifier, undecodable, erased subject), by outcome',
    ['outcome'],
  );
  const merges = metrics.counter('signal_identity_profile_merges_total', 'Profiles merged into another');
  let subscription: Subscription | undefined;

  return {
    async start() {
      if (subscription !== undefined) return;
      subscription = await subscribeTo(bus, {
        groupId: consumerGroup(namespace, 'identity-hub'),
        topics: [topics.rawEvents(namespace)],
        batchSize: options.batchSize ?? 100,
        handler: async (batch) => {
          for (const item of batch.items) {
            if (batch.signal.aborted) throw new Error('partition lost; the batch will be redelivered');
            if (!item.ok) {
              processed.inc({ outcome: 'undecodable' });
              logger.warn(
                { topic: item.message.topic, partition: item.message.partition, offset: item.message.offset },
                'raw event skipped: it does not decode',
              );
              continue;
            }
            const result = await graph.ingest(item.value);
            processed.inc({
              outcome: result.dropped ?? (result.profileId === null ? 'no_identifier' : 'applied'),
            });
            if (result.merged.length > 0) merges.inc(result.merged.length);
          }
        },
      });
    },
    async stop(deadlineMs) {
      const running = subscription;
      subscription = undefined;
      await running?.stop({ deadlineMs });
    },
  };
}
