import { Socket } from 'node:net';

/**
 * Real-service integration tests (PostgreSQL, Redis) run whenever the service answers. `.ci/run` sets
 * SIGNAL_REQUIRE_SERVICES=1 so that in CI an unreachable service fails the run instead of skipping; on a
 * newcomer's laptop without PostgreSQL/Redis the same tests are skipped with a reason.
 */
export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function tcpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

async function available(name: string, url: string): Promise<boolean> {
  const u = new URL(url);
  const ok = await tcpReachable(u.hostname, Number(u.port));
  if (!ok && process.env.SIGNAL_REQUIRE_SERVICES === '1') {
    throw new Error(
      `${name} at ${u.hostname}:${u.port} is required (SIGNAL_REQUIRE_SERVICES=1) but unreachable`,
    );
  }
  return ok;
}

/** True when PostgreSQL answers; throws in CI (SIGNAL_REQUIRE_SERVICES=1) when it does not. */
export const postgresAvailable = (): Promise<boolean> => available('PostgreSQL', POSTGRES_URL);
/** True when Redis answers; throws in CI (SIGNAL_REQUIRE_SERVICES=1) when it does not. */
export const redisAvailable = (): Promise<boolean> => available('Redis', REDIS_URL);
