import { request } from 'node:http';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { cryptoEventEntry } from '@signal/audit';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { MANAGEMENT_API_SCHEMA } from '../src/container';
import type { DbTarget } from './db-targets';
import {
  PASSWORD,
  type SeededOrg,
  seedOperatorOrg,
  seedOrg,
  startTestApi,
  type TestApi,
  type TestApiOptions,
} from './harness';

const A = '/v1/admin';
const errorSchema = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string() }) });
const tokenPairSchema = z.object({ access_token: z.string(), refresh_token: z.string() });
const auditPageSchema = z.object({
  data: z.array(
    z
      .object({
        action: z.string(),
        user_id: z.string().nullable(),
        org_id: z.string().nullable(),
        resource_id: z.string().nullable(),
        changes: z.record(z.string(), z.unknown()),
      })
      .passthrough(),
  ),
});

interface Reply {
  readonly status: number;
  readonly retryAfter: number | null;
  readonly json: unknown;
}

/**
 * POSTs a login from another loopback address (127.0.0.0/8 is all local on Linux), so tests can act as many
 * clients: the API keys lockouts on the TCP peer address.
 */
function loginFrom(url: string, localAddress: string, body: unknown): Promise<Reply> {
  const target = new URL(`${url}${A}/auth/login`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const retryAfter = res.headers['retry-after'];
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: retryAfter === undefined ? null : Number(retryAfter),
            json: text === '' ? null : JSON.parse(text),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Whether this host answers on 127.0.0.2 (Linux: all of 127.0.0.0/8 is loopback; macOS: only 127.0.0.1). */
function extraLoopbackAddresses(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(0, '127.0.0.2', () => server.close(() => resolve(true)));
  });
}

/** Makes the spied hasher's `verify` as slow as production scrypt, so concurrent requests overlap. */
function slowVerify(t: TestApi, ms: number): void {
  const real = t.hasher.verify.getMockImplementation();
  if (real === undefined) throw new Error('the hasher spy has no implementation');
  t.hasher.verify.mockImplementation(async (password, encoded) => {
    await sleep(ms);
    return real(password, encoded);
  });
}

export function describeSecuritySuite(target: DbTarget, skip = false): void {
  describe.skipIf(skip)(`Management API hardening on ${target.name}`, () => {
    let t: TestApi;
    let org: SeededOrg;
    let now = Date.now();
    let running: TestApi | undefined;

    beforeAll(() => target.setup());
    afterAll(() => target.teardown());

    async function start(options: TestApiOptions = {}): Promise<void> {
      t = await startTestApi(await target.fresh(MANAGEMENT_API_SCHEMA), options);
      running = t;
      org = await seedOrg(t.cp, t.db);
    }

    beforeEach(() => {
      now = Date.now();
      return async () => {
        await running?.close();
        running = undefined;
      };
    });

    const login = (email: string, password: string) =>
      t.call('POST', `${A}/auth/login`, { body: { email, password } });

    describe('login throttling', () => {
      it('counts concurrent attempts before checking the password: a burst gets no more guesses than the limit', async () => {
        await start({ loginThrottle: { maxFailures: 3 } });
        slowVerify(t, 50);
        t.hasher.verify.mockClear();
        const replies = await Promise.all(
          Array.from({ length: 20 }, (_, i) => login(org.users.viewer.email, `wrong password ${i}`)),
        );
        expect(t.hasher.verify.mock.calls.length).toBeLessThanOrEqual(3);
        expect(replies.filter((r) => r.status === 401).length).toBeLessThanOrEqual(3);
        expect(replies.every((r) => r.status === 401 || r.status === 429)).toBe(true);
        expect((await login(org.users.viewer.email, PASSWORD)).status).toBe(429);
      });

      it('locks an account after 10 failures from any mix of client addresses, for 30 minutes (PCI DSS 8.3.4)', async (ctx) => {
        if (!(await extraLoopbackAddresses())) ctx.skip();
        await start({ loginThrottle: { maxFailures: 5 } });
        const email = org.users.owner.email;
        const replies: Reply[] = [];
        // Two guesses from each of 6 addresses: never enough to lock any one (address, account) pair.
        for (let host = 2; host < 8; host++) {
          for (let i = 0; i < 2; i++) {
            replies.push(
              await loginFrom(t.url, `127.0.0.${host}`, { email, password: `guess ${host}-${i}` }),
            );
          }
        }
        expect(replies.slice(0, 9).map((r) => r.status)).toEqual(Array(9).fill(401));
        expect(replies.slice(9).map((r) => r.status)).toEqual([429, 429, 429]);
        t.hasher.verify.mockClear();
        const right = await loginFrom(t.url, '127.0.0.40', { email, password: PASSWORD });
        expect(right.status).toBe(429);
        expect(errorSchema.parse(right.json).error.message).toMatch(/too many failed logins/);
        expect(right.retryAfter).toBeGreaterThanOrEqual(29 * 60);
        expect(t.hasher.verify).not.toHaveBeenCalled();
        // Other accounts are not affected, from the same addresses.
        expect(
          (await loginFrom(t.url, '127.0.0.2', { email: org.users.admin.email, password: PASSWORD })).status,
        ).toBe(200);
        // Unknown emails lock the same way (the lock says nothing about which emails exist).
        const unknown: number[] = [];
        for (let host = 2; host < 13; host++) {
          unknown.push(
            (await loginFrom(t.url, `127.0.0.${host}`, { email: 'nobody@nowhere.example', password: 'x' }))
              .status,
          );
        }
        expect(unknown).toEqual([...Array(9).fill(401), 429, 429]);
      });

      it('audits a wrong current password on a password change, and throttles it like a login', async () => {
        await start({ loginThrottle: { maxFailures: 3 } });
        const pair = tokenPairSchema.parse((await login(org.users.editor.email, PASSWORD)).json);
        const change = (current: string) =>
          t.call('POST', `${A}/auth/password`, {
            token: pair.access_token,
            body: { current_password: current, new_password: 'a brand new long password' },
          });
        expect((await change('not my password')).status).toBe(403);
        const failed = await t.audit.list({ action: 'auth.login_failed' });
        expect(failed.data).toHaveLength(1);
        expect(failed.data[0]).toMatchObject({
          user_id: org.users.editor.id,
          org_id: org.orgId,
          changes: { reason: { old: null, new: 'wrong_current_password' } },
        });
        expect(await t.auditDump()).not.toContain('not my password');
        expect((await change('not my password 2')).status).toBe(403);
        expect((await change('not my password 3')).status).toBe(429);
        expect((await change(PASSWORD)).status).toBe(429);
      });
    });

    describe('behind reverse proxies (TRUSTED_PROXY_HOPS, TRUSTED_PROXY_CIDRS)', () => {
      const loginVia = (forwardedFor: string, password: string, email = org.users.owner.email) =>
        t.call('POST', `${A}/auth/login`, {
          body: { email, password },
          headers: { 'x-forwarded-for': forwardedFor },
        });

      it('with one trusted hop, throttles and audits each client by its forwarded address', async () => {
        await start({ trustedProxyHops: 1, loginThrottle: { maxFailures: 2 } });
        // The client behind the ingress locks its own (address, account) pair...
        const attacker = [];
        for (let i = 0; i < 3; i++) attacker.push((await loginVia('203.0.113.7', `guess ${i}`)).status);
        expect(attacker).toEqual([401, 429, 429]); // the failure that reaches the limit answers with the lock
        // ...not another client's, although both reach the API through the same proxy (the socket peer).
        expect((await loginVia('198.51.100.23', PASSWORD)).status).toBe(200);
        // A forged entry left of the proxy's is not believed: the proxy's own entry names the client.
        expect((await loginVia('198.51.100.23, 203.0.113.7', 'guess 4')).status).toBe(429);
        const logins = await t.audit.list({ action: 'auth.login' });
        expect(logins.data[0]).toMatchObject({ user_id: org.users.owner.id, ip_address: '198.51.100.23' });
        const failures = await t.audit.list({ action: 'auth.login_failed' });
        expect(new Set(failures.data.map((e) => e.ip_address))).toEqual(new Set(['203.0.113.7']));
      });

      // The test client is 127.0.0.1: with no trusted hop, and outside TRUSTED_PROXY_CIDRS (a client that
      // reaches the pod directly, past the ingress), X-Forwarded-For is its own writing and is ignored.
      it.each([
        ['with none (the default)', {}],
        [
          'with TRUSTED_PROXY_CIDRS, from outside the list',
          { trustedProxyHops: 1, trustedProxyCidrs: ['10.0.0.0/8'] },
        ],
      ])('%s, X-Forwarded-For is ignored: a client cannot pick its address', async (_case, proxies) => {
        await start({ ...proxies, loginThrottle: { maxFailures: 2 } });
        const statuses = [];
        for (let i = 0; i < 3; i++)
          statuses.push((await loginVia(`203.0.113.${i + 1}`, `guess ${i}`)).status);
        // Three "different" forwarded addresses, one socket peer: the pair locks at the second failure.
        expect(statuses).toEqual([401, 429, 429]);
        const failures = await t.audit.list({ action: 'auth.login_failed' });
        expect(new Set(failures.data.map((e) => e.ip_address))).toEqual(new Set(['127.0.0.1']));
      });
    });

    describe('one-time passwords', () => {
      it('expire 72 hours after the invitation', async () => {
        await start({ clock: () => new Date(now) });
        const admin = await t.tokenFor(org.users.admin);
        const invite = async (email: string) => {
          const res = await t.call('POST', `${A}/users`, { token: admin, body: { email, role: 'admin' } });
          expect(res.status).toBe(201);
          return z.object({ one_time_password: z.string() }).parse(res.json).one_time_password;
        };
        const early = await invite('early@invited.example');
        const late = await invite('late@invited.example');
        now += 72 * 3600_000 - 1000;
        expect((await login('early@invited.example', early)).status).toBe(200);
        now += 2000;
        const expired = await login('late@invited.example', late);
        expect(expired.status).toBe(401);
        expect(errorSchema.parse(expired.json).error.message).toMatch(/one-time password has expired/);
        const entry = (await t.audit.list({ action: 'auth.login_failed' })).data[0];
        expect(entry?.changes).toEqual({ reason: { old: null, new: 'one_time_password_expired' } });
        expect(await t.auditDump()).not.toContain(late);
        // A wrong password still gets the generic answer (the expiry is only told to whoever knows the OTP).
        const wrong = await login('late@invited.example', 'not the one-time password');
        expect(errorSchema.parse(wrong.json).error.message).toBe('invalid email or password');
      });
    });

    describe('audit log tenancy', () => {
      it("an org's admins see their org's entries, never another org's", async () => {
        await start();
        const other = await seedOrg(t.cp, t.db);
        const editorA = await t.tokenFor(org.users.editor);
        const created = await t.call('POST', `${A}/pipelines`, {
          token: editorA,
          body: { name: 'Confidential launch', type: 'web', allowed_domains: ['launch.example'] },
        });
        const pipelineId = z.object({ id: z.string() }).parse(created.json).id;
        expect((await login(org.users.viewer.email, 'a wrong password')).status).toBe(401);

        const adminA = await t.tokenFor(org.users.admin);
        const adminB = await t.tokenFor(other.users.admin);
        const mine = auditPageSchema.parse(
          (await t.call('GET', `${A}/audit-logs?limit=100`, { token: adminA })).json,
        ).data;
        expect(mine.find((e) => e.action === 'pipeline.created')).toMatchObject({
          user_id: org.users.editor.id,
          org_id: org.orgId,
          resource_id: pipelineId,
        });
        expect(mine.find((e) => e.action === 'auth.login_failed')).toMatchObject({
          user_id: org.users.viewer.id,
          org_id: org.orgId,
        });

        const theirs = await t.call('GET', `${A}/audit-logs?limit=100`, { token: adminB });
        const seen = auditPageSchema.parse(theirs.json).data;
        expect(seen.filter((e) => e.org_id === org.orgId)).toEqual([]);
        expect(theirs.text).not.toContain(pipelineId);
        expect(theirs.text).not.toContain(org.users.editor.id);
        expect(theirs.text).not.toContain(org.users.editor.email);
        // Nor the deployment's own entries (recorded without an org): those are the operator org's to read.
        expect(seen.filter((e) => e.org_id !== other.orgId)).toEqual([]);
        for (const query of [`user_id=${org.users.editor.id}`, `resource_id=${pipelineId}`]) {
          const filtered = auditPageSchema.parse(
            (await t.call('GET', `${A}/audit-logs?${query}`, { token: adminB })).json,
          );
          expect(filtered.data, query).toEqual([]);
        }
        const exported = await t.call('GET', `${A}/audit-logs/export`, { token: adminB });
        expect(exported.status).toBe(200);
        expect(exported.text).not.toContain(pipelineId);
        expect(exported.text).not.toContain(org.users.editor.email);
        expect(exported.text).not.toContain('crypto.key_loaded');
        // The export is recorded in the exporting org's log only.
        const exports = auditPageSchema.parse(
          (await t.call('GET', `${A}/audit-logs?action=audit.exported`, { token: adminA })).json,
        );
        expect(exports.data).toEqual([]);
      });

      // Deployment-wide code paths (the delivery worker, the re-encryption job, the gateway's key lookup) open
      // any org's ciphertexts; a failure is recorded without an org and names the table and row id.
      it("never shows an org-less decrypt failure (another org's row id) to an ordinary org; the operator org sees it", async () => {
        await start();
        const victim = await seedOrg(t.cp, t.db);
        const operator = await seedOperatorOrg(t.cp, t.db);
        const made = await t.cp.pipelines.create(victim.orgId, { name: 'Victim', type: 'server' });
        const integration = await t.cp.integrations.create(victim.orgId, made.pipeline.id, {
          vendor: 'meta',
          name: 'Victim Meta',
          credentials: { access_token: 'victim-access-token-value' },
        });
        // Modified outside Signal, then opened by a deployment-wide reader: crypto.decrypt_failed, no org.
        const { rows } = await t.db.query<{ credentials: string }>(
          'SELECT credentials FROM integrations WHERE id = $1',
          [integration.id],
        );
        const original = rows[0]?.credentials ?? '';
        const at = original.length - 10;
        const corrupted = `${original.slice(0, at)}${original[at] === 'A' ? 'B' : 'A'}${original.slice(at + 1)}`;
        await t.db.query('UPDATE integrations SET credentials = $2 WHERE id = $1', [
          integration.id,
          corrupted,
        ]);
        await expect(t.cp.getIntegrationCredentials(integration.id)).rejects.toThrow();
        await vi.waitFor(
          async () => {
            const failures = await t.audit.list({ action: 'crypto.decrypt_failed' });
            expect(failures.data.some((e) => e.org_id === null && e.changes.row_id !== undefined)).toBe(true);
          },
          { timeout: 5000 },
        );
        // Entries of the reader's own org, each followed by more org-less failures, to page through.
        const editorA = await t.tokenFor(org.users.editor);
        for (let i = 0; i < 3; i++) {
          const res = await t.call('POST', `${A}/pipelines`, {
            token: editorA,
            body: { name: `Mine ${i}`, type: 'web' },
          });
          expect(res.status).toBe(201);
          for (let j = 0; j < 3; j++) {
            await t.audit.record(
              cryptoEventEntry({
                action: 'crypto.decrypt_failed',
                code: 'authentication_failed',
                keyId: null,
                purpose: 'integration-credentials',
                dataClass: 'credentials',
                table: 'integrations',
                column: 'credentials',
                rowId: integration.id,
              }),
            );
          }
        }

        for (const reader of [org, victim]) {
          const token = await t.tokenFor(reader.users.admin);
          for (const query of ['limit=100', 'action=crypto.decrypt_failed', 'resource_type=crypto']) {
            const res = await t.call('GET', `${A}/audit-logs?${query}`, { token });
            expect(res.status, query).toBe(200);
            const entries = auditPageSchema.parse(res.json).data;
            expect(
              entries.filter((e) => e.org_id !== reader.orgId),
              query,
            ).toEqual([]);
            expect(res.text, query).not.toContain(integration.id);
            expect(res.text, query).not.toContain('crypto.decrypt_failed');
          }
          const exported = await t.call('GET', `${A}/audit-logs/export`, { token });
          expect(exported.status).toBe(200);
          expect(exported.text).not.toContain(integration.id);
          expect(exported.text).not.toContain('crypto.decrypt_failed');
          for (const line of exported.text.split('\n').filter((l) => l !== '')) {
            expect(z.object({ org_id: z.string() }).parse(JSON.parse(line)).org_id).toBe(reader.orgId);
          }
        }

        // Small pages skip past the hidden entries without losing or repeating any of the reader's own.
        const adminA = await t.tokenFor(org.users.admin);
        const expected = (await t.audit.list({ org_id: org.orgId }, { limit: 100 })).data
          .filter((e) => e.org_id === org.orgId)
          .map((e) => e.id);
        const paged: string[] = [];
        let cursor: string | null = null;
        do {
          const res = await t.call(
            'GET',
            `${A}/audit-logs?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
            { token: adminA },
          );
          const page = z
            .object({
              data: z.array(z.object({ id: z.string(), org_id: z.string().nullable() })),
              next_cursor: z.string().nullable(),
              has_more: z.boolean(),
            })
            .parse(res.json);
          expect(page.data.length).toBeLessThanOrEqual(2);
          paged.push(...page.data.map((e) => e.id));
          cursor = page.has_more ? page.next_cursor : null;
        } while (cursor !== null);
        expect(paged).toEqual(expected);

        // The deployment's operator org sees the deployment-wide entries, the decrypt failure included.
        const deployment = await t.call('GET', `${A}/audit-logs?action=crypto.decrypt_failed`, {
          token: await t.tokenFor(operator.users.admin),
        });
        const failures = auditPageSchema.parse(deployment.json).data;
        expect(
          failures.some((e) => e.org_id === null && JSON.stringify(e.changes).includes(integration.id)),
        ).toBe(true);
      });
    });
  });
}
