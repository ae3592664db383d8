import { randomBytes } from 'node:crypto';
import { ROLES, type Role } from '@signal/control-plane';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createAccessTokens, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../src/auth/tokens';
import { roleAllows } from '../src/rbac/permissions';
import { ADMIN_PREFIX, ROUTES, type RouteId, type RouteSpec } from '../src/rbac/route-table';
import type { DbTarget } from './db-targets';
import {
  FULL_SCHEMA,
  JWT_SECRET,
  PASSWORD,
  type SeededOrg,
  seedOperatorOrg,
  seedOrg,
  startTestApi,
  type TestApi,
} from './harness';
import { plantDeadLetter, sampleEvent } from './operations.support';

const errorSchema = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string() }) });

interface Fixture {
  readonly org: SeededOrg;
  readonly pipelineId: string;
  readonly integrationId: string;
  readonly victimId: string;
  readonly graceKeyId: string;
  /** A pending dead letter of the fixture's integration. */
  readonly deadLetterId: string;
  /** A user id the identity graph knows (of the fixture's org). */
  readonly identitySubject: string;
}

/** Routes that act on the whole deployment: only the operator org's admins and owner pass. */
const deploymentScoped = (route: RouteSpec): boolean => route.scope === 'deployment';

async function fixture(t: TestApi, seeded?: SeededOrg): Promise<Fixture> {
  const org = seeded ?? (await seedOrg(t.cp, t.db));
  const made = await t.cp.pipelines.create(org.orgId, { name: 'Fixture', type: 'web' });
  const rotated = await t.cp.pipelines.rotateKey(org.orgId, made.pipeline.id);
  const integration = await t.cp.integrations.create(org.orgId, made.pipeline.id, {
    vendor: 'meta',
    name: 'Meta',
    credentials: { access_token: 'fixture-access-token-value' },
  });
  const { user: victim } = await t.cp.users.invite(org.orgId, {
    email: `victim-${randomBytes(8).toString('hex')}@x.example`,
    role: 'editor',
  });
  const operations = t.operations;
  if (operations === null) throw new Error('the RBAC suite needs the optional dependencies wired');
  const deadLetterId = await plantDeadLetter(t.db, operations.namespace, integration.id);
  const identitySubject = `subject-${randomBytes(4).toString('hex')}`;
  await operations.graph.ingest({ ...sampleEvent({ userId: identitySubject }), org: org.orgId });
  return {
    org,
    pipelineId: made.pipeline.id,
    integrationId: integration.id,
    victimId: victim.id,
    graceKeyId: rotated.previous.id,
    deadLetterId,
    identitySubject,
  };
}

interface Case {
  readonly path: string;
  readonly body?: unknown;
  /** The status an allowed role gets. */
  readonly status: number;
}

/** A valid request per route. Every route of the table must be here (checked below). */
const CASES: Readonly<Record<RouteId, (f: Fixture) => Case>> = {
  'auth.login': () => ({ path: '/auth/login', status: 200 }),
  'auth.refresh': () => ({ path: '/auth/refresh', status: 200 }),
  'auth.logout': () => ({ path: '/auth/logout', status: 204 }),
  'auth.password': () => ({
    path: '/auth/password',
    body: { current_password: PASSWORD, new_password: 'another long password' },
    status: 200,
  }),
  'auth.me': () => ({ path: '/auth/me', status: 200 }),
  'users.list': () => ({ path: '/users', status: 200 }),
  'users.invite': () => ({
    path: '/users',
    body: { email: `invitee-${randomBytes(8).toString('hex')}@x.example`, role: 'viewer' },
    status: 201,
  }),
  'users.get': (f) => ({ path: `/users/${f.victimId}`, status: 200 }),
  'users.update': (f) => ({ path: `/users/${f.victimId}`, body: { role: 'viewer' }, status: 200 }),
  'users.remove': (f) => ({ path: `/users/${f.victimId}`, status: 204 }),
  'users.transferOwnership': (f) => ({ path: `/users/${f.victimId}/transfer-ownership`, status: 200 }),
  'pipelines.list': () => ({ path: '/pipelines', status: 200 }),
  'pipelines.create': () => ({ path: '/pipelines', body: { name: 'New', type: 'web' }, status: 201 }),
  'pipelines.get': (f) => ({ path: `/pipelines/${f.pipelineId}`, status: 200 }),
  'pipelines.update': (f) => ({ path: `/pipelines/${f.pipelineId}`, body: { enabled: false }, status: 200 }),
  'pipelines.delete': (f) => ({ path: `/pipelines/${f.pipelineId}`, status: 204 }),
  'pipelines.keys': (f) => ({ path: `/pipelines/${f.pipelineId}/keys`, status: 200 }),
  'pipelines.rotateKey': (f) => ({ path: `/pipelines/${f.pipelineId}/rotate-key`, status: 200 }),
  'pipelines.revokeKey': (f) => ({
    path: `/pipelines/${f.pipelineId}/keys/${f.graceKeyId}/revoke`,
    status: 200,
  }),
  'pipelines.rotateSecret': (f) => ({
    path: `/pipelines/${f.pipelineId}/rotate-secret`,
    body: { grace_seconds: 60 },
    status: 200,
  }),
  'integrations.list': (f) => ({ path: `/pipelines/${f.pipelineId}/integrations`, status: 200 }),
  'integrations.create': (f) => ({
    path: `/pipelines/${f.pipelineId}/integrations`,
    body: { vendor: 'ga4', name: 'GA4' },
    status: 201,
  }),
  'integrations.get': (f) => ({ path: `/integrations/${f.integrationId}`, status: 200 }),
  'integrations.update': (f) => ({
    path: `/integrations/${f.integrationId}`,
    body: { enabled: false },
    status: 200,
  }),
  'integrations.delete': (f) => ({ path: `/integrations/${f.integrationId}`, status: 204 }),
  'dataLayer.get': () => ({ path: '/data-layer', status: 200 }),
  'dataLayer.put': () => ({ path: '/data-layer', body: {}, status: 200 }),
  'auditLogs.list': () => ({ path: '/audit-logs', status: 200 }),
  'auditLogs.export': () => ({ path: '/audit-logs/export', status: 200 }),
  'crypto.reencryptStart': () => ({ path: '/crypto/re-encrypt', status: 202 }),
  'crypto.reencryptStatus': () => ({ path: '/crypto/re-encrypt', status: 200 }),
  'dlq.list': (f) => ({ path: `/dlq?integration_id=${f.integrationId}`, status: 200 }),
  'dlq.get': (f) => ({ path: `/dlq/${f.deadLetterId}`, status: 200 }),
  'dlq.replay': (f) => ({ path: '/dlq/replay', body: { ids: [f.deadLetterId] }, status: 200 }),
  'identity.erase': (f) => ({ path: `/identity/${f.identitySubject}`, status: 200 }),
};

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function describeRbacSuite(target: DbTarget, skip = false): void {
  describe.skipIf(skip)(`Management API security on ${target.name}`, () => {
    let t: TestApi;
    /** The operator org's fixture (one per database: its slug is fixed). */
    let operator: Fixture;
    beforeAll(async () => {
      await target.setup();
      t = await startTestApi(await target.fresh(FULL_SCHEMA), { operations: {} });
      operator = await fixture(t, await seedOperatorOrg(t.cp, t.db));
    });
    afterAll(async () => {
      await t?.close();
      await target.teardown();
    });

    it('has a test case for every route of the table', () => {
      expect(Object.keys(CASES).sort()).toEqual(ROUTES.map((r) => r.id).sort());
    });

    it('allows and denies every route × every role exactly as the RBAC table says', async () => {
      const mismatches: string[] = [];
      for (const route of ROUTES) {
        if (route.permission === 'public') continue;
        // Reads change nothing, so the roles can share a fixture; every write gets a fresh one.
        const shared = route.method === 'GET' ? await fixture(t) : undefined;
        for (const role of ROLES) {
          const f = shared ?? (await fixture(t));
          const c = CASES[route.id](f);
          const res = await t.call(route.method, `${ADMIN_PREFIX}${c.path}`, {
            token: await t.tokenFor(f.org.users[role]),
            ...(c.body === undefined ? {} : { body: c.body }),
          });
          // An ordinary org's role never reaches a deployment-scoped route, whatever it is.
          const allowed = roleAllows(role, route.permission) && !deploymentScoped(route);
          const expected = allowed ? c.status : 403;
          const denialShape = allowed || errorSchema.safeParse(res.json).success;
          if (res.status !== expected || !denialShape) {
            mismatches.push(
              `${route.id} as ${role}: ${res.status} (expected ${expected}) ${res.text.slice(0, 120)}`,
            );
          }
        }
      }
      expect(mismatches).toEqual([]);
    });

    it("allows the deployment-scoped routes to the operator org's roles exactly as the RBAC table says", async () => {
      const mismatches: string[] = [];
      for (const route of ROUTES) {
        if (route.permission === 'public' || !deploymentScoped(route)) continue;
        for (const role of ROLES) {
          const c = CASES[route.id](operator);
          const res = await t.call(route.method, `${ADMIN_PREFIX}${c.path}`, {
            token: await t.tokenFor(operator.org.users[role]),
            ...(c.body === undefined ? {} : { body: c.body }),
          });
          // A started job finishes before the next role starts one (409 while it runs).
          await t.api.reencryption.idle();
          const allowed = roleAllows(role, route.permission);
          const expected = allowed ? c.status : 403;
          const denialShape = allowed || errorSchema.safeParse(res.json).success;
          if (res.status !== expected || !denialShape) {
            mismatches.push(
              `${route.id} as the operator org's ${role}: ${res.status} (expected ${expected}) ${res.text.slice(0, 120)}`,
            );
          }
        }
      }
      expect(mismatches).toEqual([]);
    });

    it('records every change a protected route makes in the audit log, with the actor and their org', async () => {
      const missing: string[] = [];
      for (const route of ROUTES) {
        if (route.permission === 'public' || route.method === 'GET') continue;
        const f = deploymentScoped(route) ? operator : await fixture(t);
        const c = CASES[route.id](f);
        const { rows: head } = await t.db.query<{ seq: string | null }>(
          'SELECT max(seq)::text AS seq FROM audit_log',
        );
        const res = await t.call(route.method, `${ADMIN_PREFIX}${c.path}`, {
          token: await t.tokenFor(f.org.users.owner),
          ...(c.body === undefined ? {} : { body: c.body }),
        });
        expect(res.status, `${route.id}: ${res.text.slice(0, 120)}`).toBe(c.status);
        await t.api.reencryption.idle();
        const { rows } = await t.db.query<{ action: string; user_id: string | null; org_id: string | null }>(
          'SELECT action, user_id, org_id FROM audit_log WHERE seq > $1 ORDER BY seq',
          [head[0]?.seq ?? '0'],
        );
        const orgRecorded = rows.some((r) => r.org_id === f.org.orgId);
        if (!rows.some((r) => r.user_id === f.org.users.owner.id) || !orgRecorded) {
          missing.push(`${route.id}: ${JSON.stringify(rows)}`);
        }
      }
      expect(missing).toEqual([]);
    });

    it("never lets another org's owner read or change an org's resources by id, on any route", async () => {
      const victim = await fixture(t);
      const intruder = await seedOrg(t.cp, t.db);
      const token = await t.tokenFor(intruder.users.owner);
      const before = await t.cp.pipelines.listKeys(victim.org.orgId, victim.pipelineId);
      const leaks: string[] = [];
      const secrets = [victim.pipelineId, victim.integrationId, victim.victimId, victim.org.orgId];
      for (const route of ROUTES) {
        // Session routes act on the caller's own account (and logout would end the intruder's session).
        if (route.permission === 'public' || route.permission === 'session') continue;
        const c = CASES[route.id](victim);
        const res = await t.call(route.method, `${ADMIN_PREFIX}${c.path}`, {
          token,
          ...(c.body === undefined ? {} : { body: c.body }),
        });
        const addressed = route.path.includes(':');
        const leaked = secrets.filter((id) => !c.path.includes(id) && res.text.includes(id));
        if ((addressed && res.status !== 404) || leaked.length > 0) {
          leaks.push(`${route.id}: ${res.status} ${leaked.join(',')} ${res.text.slice(0, 100)}`);
        }
      }
      expect(leaks).toEqual([]);
      // Nothing of the victim org changed.
      expect(await t.cp.pipelines.get(victim.org.orgId, victim.pipelineId)).toMatchObject({ enabled: true });
      expect(await t.cp.pipelines.listKeys(victim.org.orgId, victim.pipelineId)).toEqual(before);
      expect(await t.cp.integrations.get(victim.org.orgId, victim.integrationId)).toMatchObject({
        enabled: true,
      });
      expect(await t.cp.users.get(victim.org.orgId, victim.victimId)).toMatchObject({ role: 'editor' });
      expect((await t.cp.users.get(victim.org.orgId, victim.org.users.owner.id))?.role).toBe('owner');
    });

    // Dead-letter ids are sequential, so guessable: every DLQ route is scoped to the caller's org.
    it("never shows or replays another org's dead letters", async () => {
      const victim = await fixture(t);
      const intruder = await seedOrg(t.cp, t.db);
      const token = await t.tokenFor(intruder.users.editor);
      const list = await t.call('GET', `${ADMIN_PREFIX}/dlq?include_replayed=true`, { token });
      expect(list.text).not.toContain(victim.integrationId);
      expect((await t.call('GET', `${ADMIN_PREFIX}/dlq/${victim.deadLetterId}`, { token })).status).toBe(404);
      const replay = await t.call('POST', `${ADMIN_PREFIX}/dlq/replay`, {
        token,
        body: { ids: [victim.deadLetterId] },
      });
      expect(replay.json).toMatchObject({ replayed: 0 });
    });

    it('answers 401 with a Bearer challenge on every protected route without a token', async () => {
      const f = await fixture(t);
      for (const route of ROUTES) {
        if (route.permission === 'public') continue;
        const c = CASES[route.id](f);
        const res = await t.call(route.method, `${ADMIN_PREFIX}${c.path}`);
        expect(res.status, route.id).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
        expect(errorSchema.parse(res.json).error.code).toBe('unauthorized');
      }
    });

    describe('forged, altered and stale tokens', () => {
      const path = `${ADMIN_PREFIX}/pipelines`;
      let org: SeededOrg;
      let viewerToken: string;
      const claims = () => ({ org_id: org.orgId, role: 'owner' as Role });

      beforeAll(async () => {
        org = await seedOrg(t.cp, t.db);
        viewerToken = await t.tokenFor(org.users.viewer);
      });

      async function refused(token: string, why: string): Promise<void> {
        const res = await t.call('GET', path, { token });
        expect(res.status, why).toBe(401);
        expect(errorSchema.parse(res.json).error.code).toBe('unauthorized');
      }

      it('accepts a valid token (control)', async () => {
        expect((await t.call('GET', path, { token: viewerToken })).status).toBe(200);
      });

      it('refuses alg "none"', async () => {
        const now = Date.now() / 1000;
        const payload = {
          ...claims(),
          sub: org.users.owner.id,
          iss: TOKEN_ISSUER,
          aud: TOKEN_AUDIENCE,
          iat: now,
          exp: now + 600,
          jti: randomBytes(16).toString('hex'),
        };
        await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`, 'alg none');
        await refused(`${b64({ alg: 'none' })}.${b64(payload)}.c2ln`, 'alg none with junk signature');
      });

      it('refuses a token signed with another key, or with HS512 under the right key', async () => {
        const other = new TextEncoder().encode('another-secret-another-secret-another');
        const sign = (alg: string, key: Uint8Array) =>
          new SignJWT(claims())
            .setProtectedHeader({ alg })
            .setSubject(org.users.owner.id)
            .setIssuer(TOKEN_ISSUER)
            .setAudience(TOKEN_AUDIENCE)
            .setIssuedAt()
            .setExpirationTime('10m')
            .setJti(randomBytes(16).toString('hex'))
            .sign(key);
        await refused(await sign('HS256', other), 'other key');
        await refused(await sign('HS512', Buffer.from(JWT_SECRET)), 'algorithm not pinned');
      });

      it('refuses a tampered role claim', async () => {
        const [header, payload, signature] = viewerToken.split('.');
        const decoded = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
        const forged = `${header}.${b64({ ...decoded, role: 'owner' })}.${signature}`;
        await refused(forged, 'tampered role');
      });

      it('refuses a wrong issuer or audience', async () => {
        const sign = (iss: string, aud: string) =>
          new SignJWT(claims())
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject(org.users.owner.id)
            .setIssuer(iss)
            .setAudience(aud)
            .setIssuedAt()
            .setExpirationTime('10m')
            .setJti(randomBytes(16).toString('hex'))
            .sign(Buffer.from(JWT_SECRET));
        await refused(await sign('someone-else', TOKEN_AUDIENCE), 'wrong iss');
        await refused(await sign(TOKEN_ISSUER, 'another-api'), 'wrong aud');
      });

      it('refuses an expired token and says so', async () => {
        const past = createAccessTokens({
          secret: Buffer.from(JWT_SECRET),
          ttlSeconds: 900,
          clock: () => new Date(Date.now() - 3600_000),
        });
        const { token } = await past.issue({ ...org.users.viewer, tokensValidAfter: null });
        const res = await t.call('GET', path, { token });
        expect(res.status).toBe(401);
        expect(errorSchema.parse(res.json).error.message).toMatch(/expired/);
      });

      it('refuses malformed Authorization headers', async () => {
        for (const header of [
          'Basic dXNlcjpwYXNz',
          'Bearer',
          `Token ${viewerToken}`,
          'Bearer a.b',
          `Bearer ${'x'.repeat(20)}`,
        ]) {
          const res = await t.call('GET', path, { headers: { authorization: header } });
          expect(res.status, header).toBe(401);
        }
      });

      it('refuses tokens of removed users and tokens issued before a revocation', async () => {
        const extra = await seedOrg(t.cp, t.db);
        const editorToken = await t.tokenFor(extra.users.editor);
        expect((await t.call('GET', path, { token: editorToken })).status).toBe(200);
        await t.cp.users.remove(extra.orgId, extra.users.editor.id);
        await refused(editorToken, 'removed user');

        const adminToken = await t.tokenFor(extra.users.admin);
        await t.cp.users.revokeAccessTokens(extra.users.admin.id);
        await refused(adminToken, 'revoked');
        // Issued after the cut-off: valid again at once, even within the same millisecond.
        expect((await t.call('GET', path, { token: await t.tokenFor(extra.users.admin) })).status).toBe(200);
      });

      it('applies a role change immediately (old token void, new role enforced)', async () => {
        const extra = await seedOrg(t.cp, t.db);
        const token = await t.tokenFor(extra.users.editor);
        const create = () => t.call('POST', path, { token: tokenNow, body: { name: 'x', type: 'web' } });
        let tokenNow = token;
        expect((await create()).status).toBe(201);
        await t.cp.users.changeRole(extra.orgId, extra.users.editor.id, 'viewer');
        expect((await create()).status).toBe(401);
        tokenNow = await t.tokenFor({ ...extra.users.editor, role: 'viewer' });
        expect((await create()).status).toBe(403);
      });
    });
  });
}
