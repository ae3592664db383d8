/**
 * Test fixtures for the CLI's integration tests (imported by `*.int.test.ts` only): a fresh PostgreSQL
 * database per file, created and dropped on the test server, and an in-process runner for the verbs.
 */
import { randomBytes } from 'node:crypto';
import {
  type ControlPlane,
  type ControlPlaneCrypto,
  createControlPlane,
  createScryptHasher,
} from '@signal/control-plane';
import { databaseSchemaFor } from '@signal/runtime';
import { createDatabase, type Database } from '@signal/store';
import { POSTGRES_URL } from '@signal/testkit';
import { runCli } from './run';

export interface FreshDatabase {
  readonly url: string;
  /** The deployment's schema in it (SIGNAL_NAMESPACE, as every Signal process and the CLI use it). */
  open(namespace: string): Promise<Database>;
  drop(): Promise<void>;
}

/** `CREATE DATABASE` with a random name on the test server; `drop()` closes what was opened and drops it. */
export async function freshDatabase(prefix: string): Promise<FreshDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
  try {
    await admin.exec(`CREATE DATABASE ${name}`);
  } finally {
    await admin.close();
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  const opened: Database[] = [];
  return {
    url: url.toString(),
    async open(namespace) {
      const db = await createDatabase({
        kind: 'postgres',
        url: url.toString(),
        maxConnections: 4,
        schema: databaseSchemaFor(namespace),
      });
      opened.push(db);
      return db;
    },
    async drop() {
      await Promise.all(opened.map((db) => db.close()));
      const cleanup = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
      try {
        await cleanup.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleanup.close();
      }
    },
  };
}

/** An org with its owner and one server pipeline, through the control plane (a cheap password hash). */
export async function seedOrgPipeline(
  db: Database,
  crypto: ControlPlaneCrypto,
): Promise<{
  readonly cp: ControlPlane;
  readonly orgId: string;
  readonly made: Awaited<ReturnType<ControlPlane['pipelines']['create']>>;
}> {
  const cp = createControlPlane({
    db,
    crypto,
    hasher: createScryptHasher({ cost: { N: 2 ** 8, r: 8, p: 1 } }),
  });
  const { org } = await cp.orgs.createWithOwner({
    name: 'CLI',
    slug: `cli-${randomBytes(3).toString('hex')}`,
    owner: { email: 'owner@cli.example', password: 'a long enough password' },
  });
  const made = await cp.pipelines.create(org.id, { name: 'Server', type: 'server' });
  return { cp, orgId: org.id, made };
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `signal-cli <argv>` in this process with exactly `env` (nothing inherited). */
export async function cli(
  argv: readonly string[],
  env: Record<string, string>,
  options: { signal?: AbortSignal; onStderr?: (text: string) => void } = {},
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
      options.onStderr?.(text);
    },
    env,
    cwd: '/nonexistent-signal-cwd',
    stderrIsTty: false,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { code, stdout, stderr };
}
