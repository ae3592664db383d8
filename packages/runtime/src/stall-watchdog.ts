import { Worker } from 'node:worker_threads';

export interface StallWatchdogOptions {
  /** How long the main thread may go without turning before the process is ended. */
  readonly stallMs: number;
  /** Written (as a fatal JSON log line) to stderr by the watchdog before it ends the process. */
  readonly message: string;
}

/**
 * Runs on its own thread: reads the main thread's heartbeat counter and, once it has not moved for `stallMs`,
 * says so on stderr and ends the process with SIGKILL (a stuck main thread cannot run a signal handler, and a
 * worker's `process.exit` would only end the worker).
 */
const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const beats = new Int32Array(workerData.beats);
const every = Math.max(10, Math.min(200, Math.floor(workerData.stallMs / 5)));
let last = Atomics.load(beats, 0);
let since = Date.now();
let previousTick = Date.now();
setInterval(() => {
  const now = Atomics.load(beats, 0);
  const tickedAt = Date.now();
  // Late itself by far (the whole process was descheduled or stopped): the main thread gets a fresh window.
  if (tickedAt - previousTick > every * 5 + 1000) since = tickedAt;
  previousTick = tickedAt;
  if (now !== last) {
    last = now;
    since = Date.now();
  } else if (Date.now() - since >= workerData.stallMs) {
    const line = { level: 60, time: new Date().toISOString(), stalledMs: Date.now() - since, msg: workerData.message };
    writeSync(2, JSON.stringify(line) + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}, every);
`;

/**
 * Ends the process if its main thread stops turning for `stallMs`. Armed when the process has to stop and must
 * not hang instead: after the embedded database died, a call that still reaches its backend spins inside
 * PGlite's synchronous WASM for ever, and then neither the graceful stop nor its deadline can run, so the
 * process would neither serve nor exit and its supervisor would never restart it (seen under heavy load,
 * cause not yet pinned down). The main thread beats a shared counter from a timer; a watchdog thread watches
 * it. A main thread that keeps turning (a slow but live stop) is never ended by it. Returns a disarm.
 */
export function armStallWatchdog(options: StallWatchdogOptions): () => void {
  if (!Number.isInteger(options.stallMs) || options.stallMs < 50) {
    throw new RangeError('stallMs must be a whole number of milliseconds, at least 50');
  }
  const shared = new SharedArrayBuffer(4);
  const beats = new Int32Array(shared);
  const worker = new Worker(WATCHDOG_SOURCE, {
    eval: true,
    workerData: { beats: shared, stallMs: options.stallMs, message: options.message },
    stdout: false,
    stderr: false,
  });
  const beat = setInterval(() => Atomics.add(beats, 0, 1), Math.max(5, Math.floor(options.stallMs / 10)));
  // Neither keeps the process alive: it exits as it would have, the watchdog only ends a stuck one.
  beat.unref();
  worker.unref();
  return () => {
    clearInterval(beat);
    void worker.terminate();
  };
}
