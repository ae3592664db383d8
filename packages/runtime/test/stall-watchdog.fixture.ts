/**
 * Child of the stall watchdog test (stall-watchdog.test.ts): arms the watchdog, then either blocks its main
 * thread for good (`stuck`, as a call spinning inside PGlite's WASM does) or keeps turning for a while and
 * exits on its own (`live`).
 */
import { armStallWatchdog } from '../src/stall-watchdog';

const mode = process.argv[2];
armStallWatchdog({ stallMs: 1000, message: 'main thread stalled after a fatal error: ending the process' });
process.stdout.write('armed\n');
if (mode === 'stuck') {
  setTimeout(() => {
    for (;;) {
      // Spin: nothing on this thread runs again.
    }
  }, 50);
} else {
  // A slow but live stop: busy for 150 ms at a time, well under the watchdog's limit, for about two seconds.
  let rounds = 0;
  const tick = () => {
    const until = Date.now() + 150;
    while (Date.now() < until) {}
    rounds += 1;
    if (rounds < 12) setTimeout(tick, 10);
    else process.exit(3);
  };
  tick();
}
