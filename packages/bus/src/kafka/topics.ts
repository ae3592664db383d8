import type { TopicSpec } from '../port';

/** What `ensureKafkaTopics` did or found for one wanted topic. */
export type TopicOutcome =
  | { readonly name: string; readonly status: 'created'; readonly partitions: number }
  | { readonly name: string; readonly status: 'exists'; readonly partitions: number }
  /**
   * The topic exists with another partition count. Left as it is: adding partitions moves keys between
   * partitions (per-visitor order breaks once) and removing them is impossible, so that is an operator's call.
   */
  | {
      readonly name: string;
      readonly status: 'partitions_differ';
      readonly partitions: number;
      readonly wanted: number;
    };

/**
 * Splits wanted topics into those to create and those that already exist (`existing`: name → partition
 * count), comparing partition counts. Duplicate names in `specs` are planned once.
 */
export function reconcileTopics(
  specs: readonly TopicSpec[],
  existing: ReadonlyMap<string, number>,
): { readonly create: readonly TopicSpec[]; readonly outcomes: readonly TopicOutcome[] } {
  const seen = new Set<string>();
  const create: TopicSpec[] = [];
  const outcomes: TopicOutcome[] = [];
  for (const spec of specs) {
    if (seen.has(spec.name)) continue;
    seen.add(spec.name);
    const partitions = existing.get(spec.name);
    if (partitions === undefined) {
      create.push(spec);
      outcomes.push({ name: spec.name, status: 'created', partitions: spec.partitions });
    } else if (partitions === spec.partitions) {
      outcomes.push({ name: spec.name, status: 'exists', partitions });
    } else {
      outcomes.push({ name: spec.name, status: 'partitions_differ', partitions, wanted: spec.partitions });
    }
  }
  return { create, outcomes };
}
