import type { Metrics } from '@signal/telemetry';

/** Bounded label values only (STYLE §9): reasons are closed lists, never ids. */
export const EVENT_DROP_REASONS = [
  'consent',
  'bot',
  'duplicate',
  'no_integrations',
  'not_routed',
  'erased',
] as const;
export type EventDropReason = (typeof EVENT_DROP_REASONS)[number];

export const INTEGRATION_SKIP_REASONS = [
  'disabled',
  'consent',
  'routing',
  'pipeline_filter',
  'strip_unkeyable',
  'invalid_result',
] as const;
export type IntegrationSkipReason = (typeof INTEGRATION_SKIP_REASONS)[number];

export interface ProcessorMetrics {
  consentDecision(stage: 1 | 2, decision: 'allow' | 'drop' | 'strip'): void;
  event(outcome: 'routed' | 'dropped' | 'dead_letter', reason?: EventDropReason): void;
  published(count: number): void;
  skipped(reason: IntegrationSkipReason): void;
  configReload(result: 'compiled' | 'failed'): void;
  batchDuration(seconds: number): void;
}

export function processorMetrics(metrics: Metrics): ProcessorMetrics {
  const consent = metrics.counter(
    'signal_consent_decisions_total',
    'Consent decisions per event and integration, by stage (1 processor, 2 delivery) and decision',
    ['stage', 'decision'],
  );
  const processed = metrics.counter(
    'signal_processor_events_total',
    'Events the processor finished: routed to at least one integration, dropped, or dead-lettered',
    ['outcome'],
  );
  const dropped = metrics.counter(
    'signal_processor_events_dropped_total',
    'Events dropped by the Org Data Layer, by reason',
    ['reason'],
  );
  const published = metrics.counter(
    'signal_processor_deliveries_published_total',
    'Messages published to delivery-{integration} topics',
  );
  const skipped = metrics.counter(
    'signal_processor_integration_skips_total',
    'Event copies not sent to one integration, by reason',
    ['reason'],
  );
  const reloads = metrics.counter(
    'signal_processor_config_compilations_total',
    'Org Data Layer compilations (a new config version) and failures',
    ['result'],
  );
  const duration = metrics.histogram(
    'signal_processor_batch_duration_seconds',
    'Time to process and publish one raw-events batch',
    [],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  return {
    consentDecision: (stage, decision) => consent.inc({ stage: String(stage), decision }),
    event: (outcome, reason) => {
      processed.inc({ outcome });
      if (reason !== undefined) dropped.inc({ reason });
    },
    published: (count) => published.inc(count),
    skipped: (reason) => skipped.inc({ reason }),
    configReload: (result) => reloads.inc({ result }),
    batchDuration: (seconds) => duration.observe(seconds),
  };
}
