import type { Metrics } from '@signal/telemetry';
import type { OutcomeKind } from '@signal/vendors';

/** Label values are bounded: vendor adapter ids (or `unknown`), outcome kinds, closed reason lists. */
export interface WorkerMetrics {
  outcome(vendor: string, outcome: OutcomeKind, count?: number): void;
  requestDuration(vendor: string, seconds: number): void;
  authFailure(vendor: string): void;
  consentDecision(decision: 'allow' | 'drop' | 'strip'): void;
  /** `already_delivered` (the ledger has it), `erased` (the person was erased after the event arrived). */
  skipped(reason: 'already_delivered' | 'erased', count: number): void;
  circuit(vendor: string, state: 'open' | 'closed'): void;
  dlqDepth(depth: number): void;
  /** A dead letter the DLQ index could not store (stays on `dlq-events` only; alert). */
  dlqUnindexed(): void;
  retriesPending(count: number): void;
  /** A due retry whose sealed payload does not open here (left scheduled; alert). */
  retryUnreadable(count: number): void;
}

export function workerMetrics(metrics: Metrics): WorkerMetrics {
  const deliveries = metrics.counter(
    'signal_deliveries_total',
    'Delivery outcomes per event: delivered, retry (scheduled), dead_letter, dropped',
    ['vendor', 'outcome'],
  );
  const duration = metrics.histogram(
    'signal_delivery_duration_seconds',
    'Duration of one vendor request',
    ['vendor'],
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  const dlqDepth = metrics.gauge('signal_dlq_depth', 'Dead letters indexed and not yet replayed');
  const auth = metrics.counter(
    'signal_delivery_auth_failures_total',
    'Vendor refused the integration credentials (alert: fix the credentials, then replay the DLQ)',
    ['vendor'],
  );
  const consent = metrics.counter(
    'signal_consent_decisions_total',
    'Consent decisions per event and integration, by stage (1 processor, 2 delivery) and decision',
    ['stage', 'decision'],
  );
  const skipped = metrics.counter(
    'signal_delivery_skipped_total',
    'Events not sent: the ledger shows the vendor already accepted them (already_delivered), or their person was erased after they arrived (erased)',
    ['reason'],
  );
  const circuit = metrics.counter(
    'signal_delivery_circuit_transitions_total',
    'Circuit breaker transitions per vendor',
    ['vendor', 'state'],
  );
  const unindexed = metrics.counter(
    'signal_dlq_unindexed_total',
    'Dead letters the DLQ index could not store: still on dlq-events, but not listable or replayable (alert)',
  );
  const retries = metrics.gauge('signal_delivery_retries_pending', 'Events waiting in the retry schedule');
  const unreadableRetries = metrics.counter(
    'signal_delivery_retries_unreadable_total',
    'Due retries whose sealed payload does not open with the keys this process holds: left scheduled, tried again after their lease (alert: restore the key)',
  );
  return {
    outcome: (vendor, outcome, count = 1) => deliveries.inc({ vendor, outcome }, count),
    requestDuration: (vendor, seconds) => duration.observe({ vendor }, seconds),
    authFailure: (vendor) => auth.inc({ vendor }),
    consentDecision: (decision) => consent.inc({ stage: '2', decision }),
    skipped: (reason, count) => skipped.inc({ reason }, count),
    circuit: (vendor, state) => circuit.inc({ vendor, state }),
    dlqDepth: (depth) => dlqDepth.set(depth),
    dlqUnindexed: () => unindexed.inc(),
    retriesPending: (count) => retries.set(count),
    retryUnreadable: (count) => unreadableRetries.inc(count),
  };
}
