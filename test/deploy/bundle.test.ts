import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MANAGEMENT_API_SCHEMA } from '@signal/management-api';
import { createDatabase, type Migration, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable, REDIS_URL, redisAvailable, repoRoot } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BundleResult,
  bundleServices,
  EXTERNAL_PACKAGES,
  SERVICES,
  type ServiceName,
} from '../../deploy/build/bundle';

/**
 * The production bundles (deploy/build/bundle.ts, what the Dockerfile's build stage runs): each service with
 * a main.ts bundles; the Management API's bundle starts from its output directory alone — the layout the
 * image copies — and answers its health endpoints; the `signal` bundle's CLI (the migration job's
 * signal-cli) runs.
 */

const run = promisify(execFile);
const root = repoRoot();
const outRoot = mkdtempSync(join(tmpdir(), 'signal-bundle-test-'));
afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

const withMain = SERVICES.filter((s) => existsSync(join(root, 'services', s, 'src', 'main.ts')));

function outDir(service: ServiceName): string {
  return join(outRoot, service);
}

/** Starts `node main.js` in `dir` with only `env`, resolving with the port it reports listening on. */
async function start(
  dir: string,
  env: Record<string, string>,
): Promise<{ port: number; child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, ['--enable-source-maps', join(dir, 'main.js')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on('data', (chunk) => {
    output += String(chunk);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not start in 30 s:\n${output}`)), 30_000);
    const poll = setInterval(() => {
      const match = /"port":(\d+)[^\n]*listening/.exec(output);
      if (match?.[1]) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening:\n${output}`));
    });
  });
  return { port, child, output: () => output };
}

/**
 * A schema of its own on the test PostgreSQL, handed to the processes through the URL's search_path (and
 * SIGNAL_NAMESPACE), so whatever they create lands there and is dropped afterwards.
 */
async function isolatedDatabase(): Promise<{
  env: Record<string, string>;
  migrate(schema: readonly Migration[]): Promise<void>;
  drop(): Promise<void>;
}> {
  const schema = `bundle_${randomBytes(6).toString('hex')}`;
  const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1, schema });
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    env: { DATABASE_URL: url.toString(), SIGNAL_NAMESPACE: schema },
    async migrate(migrations) {
      await migrate(admin, migrations);
    },
    async drop() {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    },
  };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

const postgres = await postgresAvailable();

describe.skipIf(!postgres)('production bundles', () => {
  let results: ReadonlyMap<ServiceName, BundleResult>;

  beforeAll(async () => {
    // One esbuild run for every service (shared modules parsed once), as the Dockerfile's build stage does.
    const bundled = await bundleServices({ services: withMain, outDirOf: outDir });
    results = new Map(withMain.map((service, i) => [service, bundled[i] as BundleResult]));
  }, 120_000);

  it.each(withMain)('%s bundles to main.js with only the unbundleable packages beside it', (service) => {
    const result = results.get(service);
    if (!result) throw new Error(`${service} was not bundled`);
    expect(result.outDir).toBe(outDir(service));
    expect(result.files).toContain('main.js');
    expect(result.bytes).toBeGreaterThan(10_000);
    // Beside the bundle: PGlite, and the optional cloud KMS SDKs (with their own dependencies) because they
    // are installed here and imported lazily when their provider is selected. Everything else is inlined: pg,
    // ioredis, kafkajs, pino, zod… are not shipped as packages, and esbuild is not needed at run time (d.js is
    // prebuilt).
    const shippedExternals = result.shippedPackages.filter((name) => name in EXTERNAL_PACKAGES);
    expect(shippedExternals).toEqual([
      '@aws-sdk/client-kms',
      '@azure/identity',
      '@azure/keyvault-keys',
      '@electric-sql/pglite',
      'google-auth-library',
    ]);
    for (const inlined of ['pg', 'ioredis', 'kafkajs', 'pino', 'prom-client', 'esbuild', '@signal/crypto']) {
      expect(result.shippedPackages).not.toContain(inlined);
    }
    const code = readFileSync(join(result.outDir, 'main.js'), 'utf8');
    expect(code).not.toMatch(/from ["']tsx/);
    expect(code).not.toMatch(/from ["']@signal\//);
    expect(code).not.toMatch(/from ["']esbuild["']/);
    expect(JSON.parse(readFileSync(join(result.outDir, 'package.json'), 'utf8'))).toMatchObject({
      type: 'module',
    });
  });

  it.runIf(withMain.includes('management-api'))(
    'the Management API bundle refuses an unmigrated database, then starts alone and answers /health/live and /health/crypto',
    async () => {
      const database = await isolatedDatabase();
      const dataDir = mkdtempSync(join(tmpdir(), 'signal-bundle-data-'));
      try {
        const env = {
          PORT: '0',
          LOG_LEVEL: 'info',
          SIGNAL_DATA_DIR: dataDir,
          ...database.env,
          ENCRYPTION_KEY: randomBytes(32).toString('hex'),
          REQUIRE_ENCRYPTION: 'true',
          JWT_SECRET: randomBytes(32).toString('hex'),
        };
        // Like every service, it leaves migrations to `signal-cli migrate`.
        await expect(start(outDir('management-api'), env)).rejects.toThrow(
          /exited with 1 before listening:[\s\S]*management-api: refusing to start: the database is not migrated/,
        );
        await database.migrate(MANAGEMENT_API_SCHEMA);
        const server = await start(outDir('management-api'), env);
        try {
          const live = await fetch(`http://127.0.0.1:${server.port}/health/live`);
          expect(live.status).toBe(200);
          const crypto = await fetch(`http://127.0.0.1:${server.port}/health/crypto`);
          expect(crypto.status).toBe(200);
          expect(await crypto.json()).toMatchObject({
            status: 'healthy',
            provider: 'local',
            dual_key_mode: false,
          });
        } finally {
          expect(await stop(server.child)).toBe(0);
        }
        expect(server.output()).not.toMatch(/ENCRYPTION_KEY=|JWT_SECRET=/);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
        await database.drop();
      }
    },
  );

  it.runIf(withMain.includes('ingestion-gateway') && withMain.includes('signal'))(
    'as in compose and the Helm hook: `signal-cli migrate`, then the gateway bundle starts and serves the prebuilt d.js',
    async () => {
      const database = await isolatedDatabase();
      const redis = await redisAvailable();
      try {
        const migrate = await run(process.execPath, [join(outDir('signal'), 'signal-cli.js'), 'migrate'], {
          cwd: outDir('signal'),
          env: { PATH: process.env.PATH ?? '', ...database.env },
        });
        expect(migrate.stdout).toMatch(/applied \d+ migration/);
        const server = await start(outDir('ingestion-gateway'), {
          PORT: '0',
          LOG_LEVEL: 'info',
          ...database.env,
          ...(redis ? { REDIS_URL } : {}),
          BUS: 'postgres',
          ENCRYPTION_KEY: randomBytes(32).toString('hex'),
          REQUIRE_ENCRYPTION: 'true',
        });
        try {
          const ready = await fetch(`http://127.0.0.1:${server.port}/health/ready`);
          expect(ready.status).toBe(200);
          const sdk = await fetch(`http://127.0.0.1:${server.port}/d.js`);
          expect(sdk.status).toBe(200);
          expect(await sdk.text()).toMatch(/^"use strict";\(\(\)=>/);
        } finally {
          expect(await stop(server.child)).toBe(0);
        }
      } finally {
        await database.drop();
      }
    },
  );

  it.runIf(withMain.includes('signal'))(
    'the signal bundle carries signal-cli (the migration job’s entry point)',
    async () => {
      const dir = outDir('signal');
      expect(results.get('signal')?.files).toEqual(['main.js', 'signal-cli.js']);
      const { stdout } = await run(process.execPath, [join(dir, 'signal-cli.js'), 'generate-key'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '' },
      });
      expect(stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    },
  );
});
