import type { Harness } from './harness';

/** The sum of a metric's values whose labels include `labels`. */
export async function metric(
  harness: Pick<Harness, 'metrics'>,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const json = await harness.metrics.registry.getMetricsAsJSON();
  const m = json.find((x) => x.name === name);
  let sum = 0;
  for (const v of (m?.values ?? []) as { labels: Record<string, string | number>; value: number }[]) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}
