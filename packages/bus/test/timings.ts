/** Short timings so the contract suite runs in seconds: 1 s leases, 100 ms heartbeats, 20 ms polls. */
export const TEST_TIMINGS = {
  sessionTimeoutMs: 1000,
  heartbeatIntervalMs: 100,
  pollIntervalMs: 20,
  retryBackoffMs: 20,
} as const;
