import { type Browser, type BrowserContext, chromium } from 'playwright-core';

/** Debian's Chromium (`.ci/run` installs it): the tests never download a browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches the system Chromium headless; each `newContext()` is a fresh profile (cookies, storage). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/**
 * A context that presents itself as the same Chromium with a window. Headless Chromium says
 * `HeadlessChrome` in its user agent, which the Org Data Layer's bot filter rightly drops as automation;
 * a test standing in for a visitor must look like one or nothing would reach the vendors.
 */
export async function visitorContext(browser: Browser): Promise<BrowserContext> {
  const probe = await browser.newContext();
  try {
    const page = await probe.newPage();
    const headless = await page.evaluate(() => navigator.userAgent);
    const context = await browser.newContext({ userAgent: headless.replace('HeadlessChrome', 'Chrome') });
    // Fail a step with its own message well before the test's timeout.
    context.setDefaultTimeout(15_000);
    return context;
  } finally {
    await probe.close();
  }
}

/** Polls `probe` until it returns a value other than `undefined`, or throws naming `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

/**
 * The value of one sample in a Prometheus text exposition: the metric `name` whose labels include every
 * pair in `labels`; 0 when absent (a counter not yet incremented is not exported).
 */
export function metricValue(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      found.set(pair[1] ?? '', pair[2] ?? '');
    }
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) total += Number(match[3]);
  }
  return total;
}
