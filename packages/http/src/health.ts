import { type Logger, silentLogger } from './logger';
import { sendJson } from './respond';
import type { Router } from './router';

/**
 * Liveness and readiness from component states (STYLE §3). Liveness only says the process answers; readiness
 * asks every registered component and fails (503) when any of them fails, so an orchestrator stops routing
 * traffic here. `warn` (a certificate close to expiry, say) stays ready but is visible to operators.
 */

export type ComponentStatus = 'ok' | 'warn' | 'fail';

export type HealthDetail = string | number | boolean | null;

export interface ComponentHealth {
  readonly status: ComponentStatus;
  /** Public, low-cardinality facts only: readiness endpoints are often reachable from outside. */
  readonly details?: Readonly<Record<string, HealthDetail>>;
}

export type HealthCheck = () => ComponentHealth | Promise<ComponentHealth>;

export interface ReadinessReport {
  readonly status: ComponentStatus;
  readonly checks: Readonly<Record<string, ComponentHealth>>;
}

const SEVERITY: Readonly<Record<ComponentStatus, number>> = { ok: 0, warn: 1, fail: 2 };

function failed(reason: string): ComponentHealth {
  return { status: 'fail', details: { error: reason } };
}

async function runCheck(check: HealthCheck, timeoutMs: number): Promise<ComponentHealth> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ComponentHealth>((resolve) => {
    timer = setTimeout(() => resolve(failed('timeout')), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(check), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs every check concurrently, each bounded by `timeoutMs` (a hung dependency fails its check instead of
 * hanging the probe). A check that throws counts as `fail`; the error is logged, not returned.
 */
export async function evaluateReadiness(
  checks: Readonly<Record<string, HealthCheck>>,
  options: { timeoutMs?: number; logger?: Logger } = {},
): Promise<ReadinessReport> {
  const logger = options.logger ?? silentLogger;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, ComponentHealth]> => {
      try {
        return [name, await runCheck(check, timeoutMs)];
      } catch (cause) {
        logger.warn({ component: name, err: cause }, 'readiness check failed');
        return [name, failed('check_failed')];
      }
    }),
  );
  let status: ComponentStatus = 'ok';
  for (const [, health] of entries) {
    if (SEVERITY[health.status] > SEVERITY[status]) status = health.status;
  }
  return { status, checks: Object.fromEntries(entries) };
}

export interface HealthRoutesOptions {
  readonly checks: Readonly<Record<string, HealthCheck>>;
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

/**
 * Registers `GET /health/live` (`{"status":"ok"}` while the process serves requests) and
 * `GET /health/ready` (`{"status", "checks": {name: {status, ...details}}}`, 503 when any check fails).
 */
export function registerHealthRoutes(router: Router, options: HealthRoutesOptions): void {
  router.on('GET', '/health/live', (_req, res) => sendJson(res, 200, { status: 'ok' }));
  router.on('GET', '/health/ready', async (_req, res) => {
    const report = await evaluateReadiness(options.checks, options);
    const checks: Record<string, Record<string, HealthDetail>> = {};
    for (const [name, health] of Object.entries(report.checks)) {
      checks[name] = { ...health.details, status: health.status };
    }
    sendJson(res, report.status === 'fail' ? 503 : 200, { status: report.status, checks });
  });
}
