/**
 * Short timings so the contract suite runs in seconds: 3 s leases, 150 ms heartbeats, 20 ms polls. The lease
 * is long enough that a member starved of CPU for a couple of seconds (CI runs many suites at once on two
 * cores) keeps its partitions, so "no double consumption while both members live" tests ownership, not the
 * scheduler.
 */
export const TEST_TIMINGS = {
  sessionTimeoutMs: 3000,
  heartbeatIntervalMs: 150,
  pollIntervalMs: 20,
  retryBackoffMs: 20,
} as const;
