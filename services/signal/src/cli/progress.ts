import type { CliIo } from './verb';

export interface ProgressView {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
}

const WIDTH = 30;

export function progressLine(view: ProgressView, ratePerSecond: number | null): string {
  const fraction = view.total <= 0 ? 1 : Math.min(1, view.done / view.total);
  const filled = Math.round(fraction * WIDTH);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}`;
  const rate = ratePerSecond === null ? '' : `, ${Math.round(ratePerSecond)} records/s`;
  return `[${bar}] ${(fraction * 100).toFixed(1).padStart(5)}%  ${view.done}/${view.total} records, ${view.failed} failed${rate}`;
}

/**
 * Progress on stderr, never stdout (stdout carries only the result, so it can be piped). On a terminal the
 * bar is redrawn in place; otherwise a plain line at most every `plainEveryMs`, so logs and CI output stay
 * readable. Other stderr writers call `clear()` first so a log line never lands inside the bar.
 */
export function createProgress(io: Pick<CliIo, 'stderr' | 'stderrIsTty'>, plainEveryMs = 2000) {
  const tty = io.stderrIsTty === true;
  let drawn = false;
  let lastPlain = 0;
  let first: { at: number; done: number } | null = null;
  return {
    update(view: ProgressView): void {
      const now = Date.now();
      first ??= { at: now, done: view.done };
      const elapsed = (now - first.at) / 1000;
      const rate = elapsed >= 1 ? (view.done - first.done) / elapsed : null;
      const line = progressLine(view, rate);
      if (tty) {
        io.stderr(`\r\x1b[2K${line}`);
        drawn = true;
      } else if (now - lastPlain >= plainEveryMs) {
        io.stderr(`${line}\n`);
        lastPlain = now;
      }
    },
    clear(): void {
      if (drawn) io.stderr('\r\x1b[2K');
      drawn = false;
    },
    /** Ends the bar with the final state on its own line. */
    finish(view: ProgressView): void {
      if (tty) io.stderr(`\r\x1b[2K${progressLine(view, null)}\n`);
      else io.stderr(`${progressLine(view, null)}\n`);
      drawn = false;
    },
  };
}
