import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type AuditLog, createAuditLog, cryptoAuditSink } from '@signal/audit';
import { type Bus, busMigrations, createPostgresBus } from '@signal/bus';
import { createMemoryCache } from '@signal/cache';
import { Secret } from '@signal/config';
import {
  type ControlPlane,
  createControlPlane,
  createScryptHasher,
  type PasswordHasher,
  type Role,
  type User,
} from '@signal/control-plane';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { createSubjectPurge, deliveryWorkerMigrations } from '@signal/delivery-worker';
import { createRouter, createServer, type SignalHttpServer } from '@signal/http';
import {
  createIdentityErasure,
  createIdentityGraph,
  type IdentityGraph,
  identityHubMigrations,
  loadBlindIndex,
} from '@signal/identity-hub';
import type { Database } from '@signal/store';
import { createMetrics } from '@signal/telemetry';
import { vi } from 'vitest';
import { createAccessTokens } from '../src/auth/tokens';
import { MANAGEMENT_API_SCHEMA } from '../src/container';
import type { ApiLogger } from '../src/logger';
import { createManagementApi, type ManagementApi, type ManagementApiOptions } from '../src/management-api';
import { DEFAULT_OPERATOR_ORG_SLUG } from '../src/rbac/deployment-authority';

/**
 * The Management API's tables plus the ones its optional dependencies read: the bus, the delivery worker's
 * DLQ index and the identity graph (what the all-in-one migrates).
 */
export const FULL_SCHEMA = Object.freeze([
  ...MANAGEMENT_API_SCHEMA,
  ...busMigrations,
  ...deliveryWorkerMigrations,
  ...identityHubMigrations,
]);

export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789';
export const PASSWORD = 'correct horse battery staple';

export interface LogLine {
  readonly level: string;
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

export function captureLogger(): ApiLogger & { readonly lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => {
    lines.push({ level, obj, msg });
  };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () =>
      JSON.stringify(lines, (_key, value: unknown) => (value instanceof Error ? value.message : value)),
  };
}

/** The scrypt hasher at a test-only cost, with spies on its port (not a mock: the real hasher runs). */
export function spiedHasher() {
  const real = createScryptHasher({ cost: { N: 2 ** 8, r: 8, p: 1 } });
  return {
    hash: vi.fn((password: string) => real.hash(password)),
    verify: vi.fn((password: string, encoded: string) => real.verify(password, encoded)),
    needsRehash: vi.fn((encoded: string) => real.needsRehash(encoded)),
  } satisfies PasswordHasher;
}

export function cryptoFor(
  logger: ApiLogger,
  audit: AuditLog,
  current: Buffer,
  previous?: Buffer,
): CryptoService {
  return createCryptoService({
    keyring: createKeyring({ current, previous }),
    audit: cryptoAuditSink(audit, logger),
  });
}

export interface Response {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Parsed JSON body (validate with a schema before use), or null for other content types. */
  readonly json: unknown;
}

export interface TestApi {
  readonly url: string;
  readonly db: Database;
  readonly api: ManagementApi;
  readonly cp: ControlPlane;
  readonly crypto: CryptoService;
  /** The keys the API runs with (another API on the same database must use them too). */
  readonly keys: { readonly current: Buffer; readonly previous?: Buffer };
  readonly audit: AuditLog;
  readonly hasher: ReturnType<typeof spiedHasher>;
  readonly logs: ReturnType<typeof captureLogger>;
  /** With `operations`: the bus replays publish to, the namespace, and the identity graph erasure reads. */
  readonly operations: {
    readonly bus: Bus;
    readonly namespace: string;
    readonly graph: IdentityGraph;
  } | null;
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
  /** A valid access token for `user`, issued with the API's own secret (no login round trip). */
  tokenFor(user: Pick<User, 'id' | 'orgId' | 'role'>): Promise<string>;
  /** Everything in the audit log, as one string to search. */
  auditDump(): Promise<string>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  readonly keys?: { readonly current: Buffer; readonly previous?: Buffer };
  readonly clock?: () => Date;
  readonly reencryption?: ManagementApiOptions['reencryption'];
  readonly loginThrottle?: ManagementApiOptions['loginThrottle'];
  readonly trustedProxyHops?: number;
  readonly trustedProxyCidrs?: readonly string[];
  /** The operator org's slug (default: the API's default, `DEFAULT_OPERATOR_ORG_SLUG`; see `seedOperatorOrg`). */
  readonly operatorOrg?: string | null;
  /** Wraps the database the API sees (fault injection typed against the port). */
  readonly wrapDb?: (db: Database) => Database;
  /**
   * Wire the optional dependencies (DLQ over a real PostgreSQL bus on the same database, identity erasure
   * over a real identity graph). The database must have `FULL_SCHEMA`. `bus` replaces the bus replays use.
   */
  readonly operations?: { readonly bus?: Pick<Bus, 'publish' | 'maxMessageBytes'> };
}

export async function startTestApi(db: Database, options: TestApiOptions = {}): Promise<TestApi> {
  const logs = captureLogger();
  const clock = options.clock ?? (() => new Date());
  const audit = createAuditLog({ db, logger: logs });
  const keys = options.keys ?? { current: randomBytes(32) };
  const crypto = cryptoFor(logs, audit, keys.current, keys.previous);
  const hasher = spiedHasher();
  const apiDb = options.wrapDb ? options.wrapDb(db) : db;
  const cp = createControlPlane({ db: apiDb, crypto, hasher, clock });
  let operations: TestApi['operations'] = null;
  let wiring: Pick<ManagementApiOptions, 'dlq' | 'identityErasure'> = {};
  if (options.operations !== undefined) {
    const bus = createPostgresBus({ db, logger: logs, crypto });
    const namespace = `t${randomBytes(4).toString('hex')}`;
    const graph = createIdentityGraph({ db, crypto, index: await loadBlindIndex(db, crypto) });
    operations = { bus, namespace, graph };
    wiring = {
      dlq: { db: apiDb, bus: options.operations.bus ?? bus, namespace },
      identityErasure: createIdentityErasure({
        graph,
        audit,
        logger: logs,
        deliveries: createSubjectPurge(apiDb, crypto),
      }),
    };
  }
  const api = createManagementApi({
    db: apiDb,
    cache: createMemoryCache(),
    crypto,
    audit,
    logger: logs,
    metrics: createMetrics({ processMetrics: false }),
    config: {
      management: {
        jwtSecret: new Secret(JWT_SECRET),
        accessTokenTtlSeconds: 900,
        refreshTokenTtlSeconds: 604_800,
        sessionMaxAgeSeconds: 2_592_000,
        operatorOrg: 'demo',
      },
    },
    clock,
    controlPlane: cp,
    hasher,
    ...(options.reencryption ? { reencryption: options.reencryption } : {}),
    ...(options.loginThrottle ? { loginThrottle: options.loginThrottle } : {}),
    ...(options.trustedProxyHops === undefined ? {} : { trustedProxyHops: options.trustedProxyHops }),
    ...(options.trustedProxyCidrs === undefined ? {} : { trustedProxyCidrs: options.trustedProxyCidrs }),
    ...(options.operatorOrg === undefined ? {} : { operatorOrg: options.operatorOrg }),
    ...wiring,
  });
  const router = createRouter({ logger: logs });
  api.register(router);
  const server: SignalHttpServer = createServer({
    handler: (req, res) => router.handle(req, res),
    logger: logs,
  });
  await api.start();
  const address: AddressInfo = await server.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;
  const tokens = createAccessTokens({ secret: Buffer.from(JWT_SECRET), ttlSeconds: 900, clock });

  return {
    url,
    db,
    api,
    cp,
    crypto,
    keys,
    audit,
    hasher,
    logs,
    operations,
    async call(method, path, callOptions = {}) {
      const headers: Record<string, string> = { ...callOptions.headers };
      if (callOptions.token !== undefined) headers.authorization = `Bearer ${callOptions.token}`;
      let body: string | undefined;
      if (callOptions.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        body = typeof callOptions.body === 'string' ? callOptions.body : JSON.stringify(callOptions.body);
      }
      const res = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      let json: unknown = null;
      if (res.headers.get('content-type')?.startsWith('application/json')) json = JSON.parse(text);
      return { status: res.status, headers: res.headers, text, json };
    },
    async tokenFor(user) {
      const record = await cp.users.authRecord(user.id);
      const issued = await tokens.issue({
        id: user.id,
        orgId: user.orgId,
        role: record?.role ?? user.role,
        tokensValidAfter: record?.tokensValidAfter ?? null,
      });
      return issued.token;
    },
    async auditDump() {
      const { rows } = await db.query('SELECT * FROM audit_log ORDER BY seq');
      return JSON.stringify(rows);
    },
    async close() {
      await server.close(1000);
      await api.stop();
      await operations?.bus.close();
    },
  };
}

export interface SeededOrg {
  readonly orgId: string;
  readonly slug: string;
  readonly users: Readonly<Record<Role, User>>;
}

/** An org with one user per role, all with `PASSWORD`. */
export async function seedOrg(
  cp: ControlPlane,
  db: Database,
  // 64 bits: the RBAC matrix seeds ~100 orgs in one schema, and slugs are unique (24 bits collided ~1 in 4,000).
  label = randomBytes(8).toString('hex'),
  slug = `org-${label}`,
): Promise<SeededOrg> {
  const { org, owner } = await cp.orgs.createWithOwner({
    name: `Org ${label}`,
    slug,
    owner: { email: `owner@${label}.example`, password: PASSWORD },
  });
  const add = (role: 'admin' | 'editor' | 'viewer') =>
    db.transaction((tx) =>
      cp.users.insert(tx, org.id, { email: `${role}@${label}.example`, role, password: PASSWORD }),
    );
  const admin = await add('admin');
  const editor = await add('editor');
  const viewer = await add('viewer');
  return { orgId: org.id, slug: org.slug, users: { owner, admin, editor, viewer } };
}

/**
 * The deployment's operator org (slug `DEFAULT_OPERATOR_ORG_SLUG`, as the all-in-one seeds it), one user per
 * role: its admin and owner hold the deployment authority. One per database (slugs are unique).
 */
export function seedOperatorOrg(cp: ControlPlane, db: Database): Promise<SeededOrg> {
  return seedOrg(cp, db, randomBytes(8).toString('hex'), DEFAULT_OPERATOR_ORG_SLUG);
}
