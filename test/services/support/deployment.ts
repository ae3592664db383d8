import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { databaseSchemaFor } from '@signal/runtime';
import { createDatabase, type Database } from '@signal/store';
import { POSTGRES_URL, REDIS_URL, repoRoot } from '@signal/testkit';
import { Redis } from 'ioredis';

/**
 * One isolated Signal deployment for a test file: its own PostgreSQL database (`signal_svc_<random>`,
 * dropped afterwards), its own SIGNAL_NAMESPACE (the database schema, topic and Redis key prefix; the keys
 * are deleted afterwards) and its own ENCRYPTION_KEY. Services started against it share all three, like
 * replicas of one production install.
 */
export interface TestDeployment {
  readonly databaseUrl: string;
  readonly namespace: string;
  /** 64 hex characters. */
  readonly encryptionKey: string;
  /** A connection to the deployment's database and schema, for seeding and reading back. */
  readonly db: Database;
  /** The environment a service process of this deployment gets (nothing inherited but PATH and HOME). */
  env(extra?: Readonly<Record<string, string>>): Record<string, string>;
  cleanup(): Promise<void>;
}

/**
 * Only what a service needs: a developer's own DATABASE_URL or ENCRYPTION_KEY must not leak in. LOG_LEVEL
 * info: services started with PORT=0 say in their "listening" line which port they bound.
 */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info' };
}

function databaseUrl(name: string): string {
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withAdmin<T>(fn: (admin: Database) => Promise<T>): Promise<T> {
  const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

async function deleteRedisNamespace(namespace: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** `pnpm signal-cli migrate` against the database, as an operator runs it before starting services. */
export async function runMigrate(url: string, namespace: string): Promise<string> {
  const child = spawn(process.execPath, ['services/signal/bin/signal-cli.mjs', 'migrate'], {
    cwd: repoRoot(),
    env: { ...baseEnv(), DATABASE_URL: url, SIGNAL_NAMESPACE: namespace },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`signal-cli migrate exited with ${code}:\n${output}`);
  return output;
}

export async function createTestDeployment(options: { migrate: boolean }): Promise<TestDeployment> {
  const suffix = randomBytes(6).toString('hex');
  const name = `signal_svc_${suffix}`;
  // Lower-case letters, digits and _: valid as a topic prefix, a Redis prefix and a PostgreSQL schema name.
  const namespace = `svc_${suffix}`;
  const encryptionKey = randomBytes(32).toString('hex');
  await withAdmin((admin) => admin.exec(`CREATE DATABASE "${name}"`));
  const url = databaseUrl(name);
  if (options.migrate) await runMigrate(url, namespace);
  const db = await createDatabase({
    kind: 'postgres',
    url,
    schema: databaseSchemaFor(namespace),
    maxConnections: 4,
  });
  return {
    databaseUrl: url,
    namespace,
    encryptionKey,
    db,
    env(extra = {}) {
      return {
        ...baseEnv(),
        DATABASE_URL: url,
        REDIS_URL,
        SIGNAL_NAMESPACE: namespace,
        ENCRYPTION_KEY: encryptionKey,
        BUS: 'postgres',
        // The tests' vendor sinks listen on loopback, which deliveries may not reach otherwise.
        DELIVERY_ALLOWED_PRIVATE_CIDRS: '127.0.0.1/32,::1/128',
        ...extra,
      };
    },
    async cleanup() {
      await db.close();
      await deleteRedisNamespace(namespace);
      // FORCE: a service killed by a failing test may still hold connections.
      await withAdmin((admin) => admin.exec(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}
