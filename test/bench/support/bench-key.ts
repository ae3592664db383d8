export const BENCH_KEY = `dk_test_${'benchBenchBench0'.repeat(2)}`;
