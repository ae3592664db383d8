import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  counter<L extends string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>;
  gauge<L extends string>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>;
  histogram<L extends string>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    buckets?: readonly number[],
  ): Histogram<L>;
  /** Prometheus text exposition for `/metrics`. */
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface CreateMetricsOptions {
  /** Process metrics (CPU, memory, event loop lag) with the `signal_process_` prefix. Default true. */
  readonly processMetrics?: boolean;
  readonly defaultLabels?: Readonly<Record<string, string>>;
}

/**
 * Metrics on a registry of their own: no global default registry, so tests and the all-in-one process
 * can build several without name clashes. Asking twice for the same name returns the same metric, so the
 * components of one process can share a registry. Label values must be bounded (vendor, outcome), never ids.
 */
export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultLabels) registry.setDefaultLabels({ ...options.defaultLabels });
  if (options.processMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'signal_process_' });

  function existing<T>(name: string): T | undefined {
    return registry.getSingleMetric(name) as T | undefined;
  }

  return {
    registry,
    counter(name, help, labelNames = []) {
      return (
        existing(name) ?? new Counter({ name, help, labelNames: [...labelNames], registers: [registry] })
      );
    },
    gauge(name, help, labelNames = []) {
      return existing(name) ?? new Gauge({ name, help, labelNames: [...labelNames], registers: [registry] });
    },
    histogram(name, help, labelNames = [], buckets) {
      return (
        existing(name) ??
        new Histogram({
          name,
          help,
          labelNames: [...labelNames],
          registers: [registry],
          ...(buckets ? { buckets: [...buckets] } : {}),
        })
      );
    },
    contentType: registry.contentType,
    metrics: () => registry.metrics(),
  };
}
