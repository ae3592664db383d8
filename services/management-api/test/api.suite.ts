import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MANAGEMENT_API_SCHEMA } from '../src/container';
import type { DbTarget } from './db-targets';
import { PASSWORD, type SeededOrg, seedOrg, startTestApi, type TestApi } from './harness';

const A = '/v1/admin';
const errorSchema = z.strictObject({ error: z.strictObject({ code: z.string(), message: z.string() }) });
const tokenPairSchema = z.strictObject({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.literal(900),
  password_change_required: z.boolean(),
});
const pageSchema = z.strictObject({
  data: z.array(z.object({ id: z.string() }).passthrough()),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});
const createdPipelineSchema = z.object({
  id: z.string(),
  key: z.string().regex(/^dk_live_[0-9A-Za-z]{32}$/),
  hmac_secret: z.string().regex(/^[0-9a-f]{64}$/),
});

const errorCode = (json: unknown) => errorSchema.parse(json).error.code;

export function describeApiSuite(target: DbTarget, skip = false): void {
  describe.skipIf(skip)(`Management API on ${target.name}`, () => {
    let t: TestApi;
    let org: SeededOrg;
    let tokens: Record<'owner' | 'admin' | 'editor' | 'viewer', string>;

    beforeAll(async () => {
      await target.setup();
    });
    afterAll(() => target.teardown());

    beforeEach(async () => {
      t = await startTestApi(await target.fresh(MANAGEMENT_API_SCHEMA), {
        loginThrottle: { maxFailures: 3, baseLockMs: 60_000 },
      });
      org = await seedOrg(t.cp, t.db);
      tokens = {
        owner: await t.tokenFor(org.users.owner),
        admin: await t.tokenFor(org.users.admin),
        editor: await t.tokenFor(org.users.editor),
        viewer: await t.tokenFor(org.users.viewer),
      };
      return () => t.close();
    });

    const login = (email: string, password: string, extra: Record<string, unknown> = {}) =>
      t.call('POST', `${A}/auth/login`, { body: { email, password, ...extra } });

    describe('login', () => {
      it('issues a Bearer token pair for the right password and audits the login', async () => {
        const res = await login(org.users.editor.email.toUpperCase(), PASSWORD);
        expect(res.status).toBe(200);
        const pair = tokenPairSchema.parse(res.json);
        const me = await t.call('GET', `${A}/auth/me`, { token: pair.access_token });
        expect(me.json).toMatchObject({ id: org.users.editor.id, role: 'editor', org_id: org.orgId });
        const audit = await t.audit.list({ action: 'auth.login' });
        expect(audit.data[0]).toMatchObject({ user_id: org.users.editor.id, ip_address: '127.0.0.1' });
      });

      it('fails the same way for a wrong password and an unknown email, running scrypt for both', async () => {
        t.hasher.verify.mockClear();
        t.hasher.hash.mockClear();
        const wrong = await login(org.users.editor.email, 'not the password');
        expect(t.hasher.verify).toHaveBeenCalledTimes(1);
        const unknown = await login('nobody@nowhere.example', 'whatever password');
        // The unknown email was verified too, against the stand-in hash prepared at start-up (no hashing now).
        expect(t.hasher.verify).toHaveBeenCalledTimes(2);
        expect(t.hasher.verify.mock.calls[1]?.[1]).toMatch(/^\$scrypt\$/);
        expect(t.hasher.hash).not.toHaveBeenCalled();
        for (const res of [wrong, unknown]) {
          expect(res.status).toBe(401);
          expect(res.json).toEqual({ error: { code: 'unauthorized', message: 'invalid email or password' } });
        }
        const failed = await t.audit.list({ action: 'auth.login_failed' });
        expect(failed.data.map((e) => e.user_email)).toEqual([null, org.users.editor.email]);
        const dump = await t.auditDump();
        expect(dump).not.toContain('nobody@nowhere.example');
        expect(dump).not.toContain('not the password');
        expect(t.logs.text()).not.toContain('not the password');
      });

      it('locks an account + address out after repeated failures, with Retry-After', async () => {
        const email = org.users.viewer.email;
        expect((await login(email, 'wrong-1')).status).toBe(401);
        expect((await login(email, 'wrong-2')).status).toBe(401);
        const third = await login(email, 'wrong-3');
        expect(third.status).toBe(429);
        expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
        t.hasher.verify.mockClear();
        const right = await login(email, PASSWORD);
        expect(right.status).toBe(429);
        expect(t.hasher.verify).not.toHaveBeenCalled();
        // Other accounts are unaffected.
        expect((await login(org.users.editor.email, PASSWORD)).status).toBe(200);
      });

      // Users are per org: an email invited into a second org has a second account (its own password).
      it('signs a user of several orgs in predictably: without "org" a clear 409 (to the password holder only), with "org" each account', async () => {
        const email = org.users.editor.email;
        const second = await seedOrg(t.cp, t.db);
        const invited = await t.call('POST', `${A}/users`, {
          token: await t.tokenFor(second.users.admin),
          body: { email, role: 'viewer' },
        });
        expect(invited.status).toBe(201);
        const otp = z.object({ one_time_password: z.string() }).parse(invited.json).one_time_password;
        const logins = async () => (await t.audit.list({ action: 'auth.login' })).data.length;
        const loginsBefore = await logins();

        // The right password of the first account, no org: 409 asking for the slug, naming no org. Repeated
        // (more often than the lockout allows failures), it never locks the user out.
        for (let i = 0; i < 4; i++) {
          t.hasher.verify.mockClear();
          const ambiguous = await login(email, PASSWORD);
          expect(ambiguous.status).toBe(409);
          const { error } = errorSchema.parse(ambiguous.json);
          expect(error.code).toBe('conflict');
          expect(error.message).toMatch(/several orgs.*"org".*slug/);
          for (const secret of [org.slug, second.slug, org.orgId, second.orgId]) {
            expect(ambiguous.text).not.toContain(secret);
          }
          // One password check, as for any other attempt (no timing difference by number of orgs).
          expect(t.hasher.verify).toHaveBeenCalledTimes(1);
        }
        expect(await logins()).toBe(loginsBefore);

        // A wrong password, or the other account's, without org: the plain answer an unknown email gets.
        for (const password of ['not the password', otp]) {
          t.hasher.verify.mockClear();
          const wrong = await login(email, password);
          expect(wrong.status).toBe(401);
          expect(wrong.json).toEqual({
            error: { code: 'unauthorized', message: 'invalid email or password' },
          });
          expect(t.hasher.verify).toHaveBeenCalledTimes(1);
        }
        const unknown = await login('nobody@nowhere.example', 'whatever password');
        expect(unknown.json).toEqual({
          error: { code: 'unauthorized', message: 'invalid email or password' },
        });

        // With org, each account signs in to its own org.
        const first = await login(email, PASSWORD, { org: org.slug });
        expect(first.status).toBe(200);
        const firstMe = await t.call('GET', `${A}/auth/me`, {
          token: tokenPairSchema.parse(first.json).access_token,
        });
        expect(firstMe.json).toMatchObject({ id: org.users.editor.id, org_id: org.orgId, role: 'editor' });
        const other = await login(email, otp, { org: second.slug });
        expect(other.status).toBe(200);
        const pair = tokenPairSchema.parse(other.json);
        expect(pair.password_change_required).toBe(true);
        const otherMe = await t.call('GET', `${A}/auth/me`, { token: pair.access_token });
        expect(otherMe.json).toMatchObject({ org_id: second.orgId, role: 'viewer' });
        // The first org's password does not open the second org's account.
        expect((await login(email, PASSWORD, { org: second.slug })).status).toBe(401);
      });

      it('refuses malformed bodies with 400/415', async () => {
        expect((await t.call('POST', `${A}/auth/login`, { body: { email: 'a@b.example' } })).status).toBe(
          400,
        );
        const text = await t.call('POST', `${A}/auth/login`, {
          body: 'email=a',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        expect(text.status).toBe(415);
      });
    });

    describe('refresh and logout', () => {
      it('rotates refresh tokens; reusing one revokes every token of the user', async () => {
        const first = tokenPairSchema.parse((await login(org.users.admin.email, PASSWORD)).json);
        const other = tokenPairSchema.parse((await login(org.users.admin.email, PASSWORD)).json);
        const refreshed = await t.call('POST', `${A}/auth/refresh`, {
          body: { refresh_token: first.refresh_token },
        });
        expect(refreshed.status).toBe(200);
        const second = tokenPairSchema.parse(refreshed.json);
        expect(second.refresh_token).not.toBe(first.refresh_token);
        expect((await t.call('GET', `${A}/users`, { token: second.access_token })).status).toBe(200);

        const reuse = await t.call('POST', `${A}/auth/refresh`, {
          body: { refresh_token: first.refresh_token },
        });
        expect(reuse.status).toBe(401);
        expect(errorSchema.parse(reuse.json).error.message).toMatch(/every session was revoked/);
        for (const token of [second.access_token, other.access_token]) {
          expect((await t.call('GET', `${A}/users`, { token })).status).toBe(401);
        }
        for (const refresh of [second.refresh_token, other.refresh_token]) {
          expect(
            (await t.call('POST', `${A}/auth/refresh`, { body: { refresh_token: refresh } })).status,
          ).toBe(401);
        }
        const audit = await t.audit.list({ action: 'auth.refresh_reuse_detected' });
        expect(audit.data).toHaveLength(1);
        expect(audit.data[0]?.user_id).toBe(org.users.admin.id);
        // A fresh login works again.
        expect((await login(org.users.admin.email, PASSWORD)).status).toBe(200);
      });

      it('logout voids the access token and the refresh token family', async () => {
        const pair = tokenPairSchema.parse((await login(org.users.viewer.email, PASSWORD)).json);
        const out = await t.call('POST', `${A}/auth/logout`, {
          token: pair.access_token,
          body: { refresh_token: pair.refresh_token },
        });
        expect(out.status).toBe(204);
        expect((await t.call('GET', `${A}/auth/me`, { token: pair.access_token })).status).toBe(401);
        expect(
          (await t.call('POST', `${A}/auth/refresh`, { body: { refresh_token: pair.refresh_token } })).status,
        ).toBe(401);
      });
    });

    describe('users and ownership', () => {
      it('invites with a one-time password that only allows choosing a new one', async () => {
        const invite = await t.call('POST', `${A}/users`, {
          token: tokens.admin,
          body: { email: 'New.Person@Example.com', role: 'editor' },
        });
        expect(invite.status).toBe(201);
        const { one_time_password: otp, email } = z
          .object({ one_time_password: z.string(), email: z.string() })
          .parse(invite.json);
        expect(email).toBe('new.person@example.com');
        const pair = tokenPairSchema.parse((await login(email, otp)).json);
        expect(pair.password_change_required).toBe(true);
        expect((await t.call('GET', `${A}/pipelines`, { token: pair.access_token })).status).toBe(403);
        const changed = await t.call('POST', `${A}/auth/password`, {
          token: pair.access_token,
          body: { current_password: otp, new_password: 'my own long password' },
        });
        expect(changed.status).toBe(200);
        const fresh = tokenPairSchema.parse(changed.json);
        expect(fresh.password_change_required).toBe(false);
        expect((await t.call('GET', `${A}/pipelines`, { token: fresh.access_token })).status).toBe(200);
        expect((await t.call('GET', `${A}/pipelines`, { token: pair.access_token })).status).toBe(401);
        expect((await login(email, otp)).status).toBe(401);
        expect(await t.auditDump()).not.toContain(otp);
        expect(t.logs.text()).not.toContain(otp);
      });

      it('keeps exactly one owner: no demotion, no removal, no second owner; transfer by the owner only', async () => {
        const owner = org.users.owner;
        const admin = org.users.admin;
        const demote = await t.call('PATCH', `${A}/users/${owner.id}`, {
          token: tokens.admin,
          body: { role: 'viewer' },
        });
        expect(demote.status).toBe(409);
        expect((await t.call('DELETE', `${A}/users/${owner.id}`, { token: tokens.admin })).status).toBe(409);
        const promote = await t.call('PATCH', `${A}/users/${admin.id}`, {
          token: tokens.owner,
          body: { role: 'owner' },
        });
        expect(promote.status).toBe(409);
        expect(
          (
            await t.call('POST', `${A}/users`, {
              token: tokens.owner,
              body: { email: 'x@y.example', role: 'owner' },
            })
          ).status,
        ).toBe(400);
        expect((await t.call('DELETE', `${A}/users/${owner.id}`, { token: tokens.owner })).status).toBe(409);
        expect(
          (await t.call('POST', `${A}/users/${admin.id}/transfer-ownership`, { token: tokens.admin })).status,
        ).toBe(403);

        const transfer = await t.call('POST', `${A}/users/${admin.id}/transfer-ownership`, {
          token: tokens.owner,
        });
        expect(transfer.status).toBe(200);
        expect(transfer.json).toMatchObject({
          previous_owner: { id: owner.id, role: 'admin' },
          owner: { id: admin.id, role: 'owner' },
        });
        // Both users' tokens carried the old roles: void now.
        expect((await t.call('GET', `${A}/auth/me`, { token: tokens.owner })).status).toBe(401);
        expect((await t.call('GET', `${A}/auth/me`, { token: tokens.admin })).status).toBe(401);
        const { rows } = await t.db.query("SELECT id FROM users WHERE org_id = $1 AND role = 'owner'", [
          org.orgId,
        ]);
        expect(rows).toEqual([{ id: admin.id }]);
        const audit = await t.audit.list({ action: 'org.ownership_transferred' });
        expect(audit.data[0]?.changes).toEqual({ owner_user_id: { old: owner.id, new: admin.id } });
      });

      it('an admin manages other users but cannot grant more than its own role; others’ orgs are invisible', async () => {
        const other = await seedOrg(t.cp, t.db);
        const target = org.users.editor;
        const res = await t.call('PATCH', `${A}/users/${target.id}`, {
          token: tokens.admin,
          body: { role: 'admin' },
        });
        expect(res.status).toBe(200);
        expect(
          (await t.call('GET', `${A}/users/${other.users.editor.id}`, { token: tokens.admin })).status,
        ).toBe(404);
        expect(
          (await t.call('DELETE', `${A}/users/${other.users.editor.id}`, { token: tokens.admin })).status,
        ).toBe(404);
        const audit = await t.audit.list({ action: 'user.role_changed' });
        expect(audit.data[0]?.changes).toEqual({ role: { old: 'editor', new: 'admin' } });
        expect((await t.call('DELETE', `${A}/users/${target.id}`, { token: tokens.admin })).status).toBe(204);
        expect((await t.call('GET', `${A}/users/${target.id}`, { token: tokens.admin })).status).toBe(404);
      });
    });

    describe('pipelines and integrations', () => {
      it('shows a pipeline key and HMAC secret once, never again, never in the audit log or the logs', async () => {
        const created = await t.call('POST', `${A}/pipelines`, {
          token: tokens.editor,
          body: {
            name: 'Web shop',
            type: 'web',
            allowed_domains: ['shop.example'],
            linked_domains: ['shop.example'],
          },
        });
        expect(created.status).toBe(201);
        const { id, key, hmac_secret: secret } = createdPipelineSchema.parse(created.json);
        const got = await t.call('GET', `${A}/pipelines/${id}`, { token: tokens.viewer });
        expect(got.json).toMatchObject({ id, slug: 'web-shop', allowed_domains: ['shop.example'] });
        expect(got.text).not.toContain(key);
        expect(got.text).not.toContain(secret);
        const keys = await t.call('GET', `${A}/pipelines/${id}/keys`, { token: tokens.viewer });
        expect(keys.text).not.toContain(key);
        expect(keys.json).toMatchObject({ keys: [{ status: 'active', hint: `${key.slice(0, 12)}…` }] });

        const rotated = await t.call('POST', `${A}/pipelines/${id}/rotate-key`, {
          token: tokens.admin,
          body: { grace_seconds: 0 },
        });
        const newKey = z.object({ key: z.string() }).parse(rotated.json).key;
        expect(await t.cp.findPipelineByKey(key)).toBeNull();
        expect((await t.cp.findPipelineByKey(newKey))?.pipelineId).toBe(id);
        const rotatedSecret = await t.call('POST', `${A}/pipelines/${id}/rotate-secret`, {
          token: tokens.admin,
        });
        const newSecret = z.object({ hmac_secret: z.string() }).parse(rotatedSecret.json).hmac_secret;
        expect((await t.cp.findPipelineByKey(newKey))?.hmacSecrets).toEqual([
          Buffer.from(newSecret),
          Buffer.from(secret),
        ]);

        const dump = await t.auditDump();
        const logs = t.logs.text();
        for (const value of [key, secret, newKey, newSecret]) {
          expect(dump).not.toContain(value);
          expect(logs).not.toContain(value);
        }
        const entries = await t.audit.list({ resource_id: id });
        expect(entries.data.map((e) => e.action)).toEqual([
          'pipeline.key_rotated',
          'pipeline.key_rotated',
          'pipeline.created',
        ]);
      });

      it('updates and deletes with audited changes; validation errors name the field', async () => {
        const { id } = createdPipelineSchema.parse(
          (
            await t.call('POST', `${A}/pipelines`, {
              token: tokens.editor,
              body: { name: 'P', type: 'server' },
            })
          ).json,
        );
        const bad = await t.call('PATCH', `${A}/pipelines/${id}`, {
          token: tokens.editor,
          body: { allowed_domains: ['https://bad.example'] },
        });
        expect(bad.status).toBe(400);
        expect(errorSchema.parse(bad.json).error.message).toMatch(/allowed_domains/);
        const dup = await t.call('POST', `${A}/pipelines`, {
          token: tokens.editor,
          body: { name: 'P', type: 'web' },
        });
        expect(dup.status).toBe(409);
        const updated = await t.call('PATCH', `${A}/pipelines/${id}`, {
          token: tokens.editor,
          body: { enabled: false, rate_limit_rps: 10 },
        });
        expect(updated.json).toMatchObject({ enabled: false, rate_limit_rps: 10 });
        const audit = await t.audit.list({ action: 'pipeline.updated' });
        expect(audit.data[0]?.changes).toEqual({
          enabled: { old: true, new: false },
          rateLimitRps: { old: null, new: 10 },
        });
        expect((await t.call('DELETE', `${A}/pipelines/${id}`, { token: tokens.admin })).status).toBe(204);
        expect((await t.call('GET', `${A}/pipelines/${id}`, { token: tokens.admin })).status).toBe(404);
      });

      it('never returns, logs or audits integration credentials in plaintext', async () => {
        const SECRET = 'EAAB-super-secret-access-token-7f3e';
        const NEXT = 'EAAB-replacement-secret-token-9c1d';
        const { id: pipelineId } = createdPipelineSchema.parse(
          (await t.call('POST', `${A}/pipelines`, { token: tokens.editor, body: { name: 'P', type: 'web' } }))
            .json,
        );
        const created = await t.call('POST', `${A}/pipelines/${pipelineId}/integrations`, {
          token: tokens.editor,
          body: {
            vendor: 'meta',
            name: 'Meta CAPI',
            settings: { pixel_id: '42' },
            credentials: { access_token: SECRET },
          },
        });
        expect(created.status).toBe(201);
        expect(created.json).toMatchObject({
          credentials: { access_token: '••••7f3e' },
          consent: { category: 'marketing' },
        });
        const id = z.object({ id: z.string() }).parse(created.json).id;
        const read = await t.call('GET', `${A}/integrations/${id}`, { token: tokens.viewer });
        const list = await t.call('GET', `${A}/pipelines/${pipelineId}/integrations`, {
          token: tokens.viewer,
        });
        const updated = await t.call('PATCH', `${A}/integrations/${id}`, {
          token: tokens.editor,
          body: { credentials: { access_token: NEXT } },
        });
        expect(updated.json).toMatchObject({ credentials: { access_token: '••••9c1d' } });
        expect(await t.cp.getIntegrationCredentials(id)).toEqual({ access_token: NEXT });
        const { rows } = await t.db.query('SELECT * FROM integrations');
        const stored = JSON.stringify(rows);
        const dump = await t.auditDump();
        const logs = t.logs.text();
        for (const value of [SECRET, NEXT]) {
          for (const text of [read.text, list.text, updated.text, created.text, stored, dump, logs]) {
            expect(text).not.toContain(value);
          }
        }
        const audit = await t.audit.list({ action: 'integration.updated' });
        expect(Object.keys(audit.data[0]?.changes ?? {})).toEqual(['credentials']);
        const secretLike = await t.call('POST', `${A}/pipelines/${pipelineId}/integrations`, {
          token: tokens.editor,
          body: { vendor: 'meta', name: 'x', settings: { access_token: SECRET } },
        });
        expect(secretLike.status).toBe(400);
        expect(secretLike.text).not.toContain(SECRET);
      });

      it('will not point stored credentials at another host unless they are sent again', async () => {
        const SECRET = 'EAAB-stored-token-an-editor-never-sees-4b2a';
        const { id: pipelineId } = createdPipelineSchema.parse(
          (await t.call('POST', `${A}/pipelines`, { token: tokens.editor, body: { name: 'P', type: 'web' } }))
            .json,
        );
        const created = await t.call('POST', `${A}/pipelines/${pipelineId}/integrations`, {
          token: tokens.admin,
          body: {
            vendor: 'meta',
            name: 'Meta CAPI',
            settings: { pixelId: '42' },
            credentials: { accessToken: SECRET },
          },
        });
        const id = z.object({ id: z.string() }).parse(created.json).id;
        // An editor redirects the integration to a host of theirs: the next event would carry the token there.
        for (const settings of [
          { pixelId: '42', endpoint: 'https://collector.attacker.example' },
          { pixelId: '42', extraCaPem: '-----BEGIN CERTIFICATE-----' },
          { url: 'https://collector.attacker.example/hook' },
        ]) {
          const redirect = await t.call('PATCH', `${A}/integrations/${id}`, {
            token: tokens.editor,
            body: { settings },
          });
          expect(redirect.status).toBe(400);
          expect(redirect.text).toContain('credentials');
        }
        expect(await t.cp.getIntegrationCredentials(id)).toEqual({ accessToken: SECRET });
        // Other settings change as before, and the credentials stay.
        const renamed = await t.call('PATCH', `${A}/integrations/${id}`, {
          token: tokens.editor,
          body: { settings: { pixelId: '43' } },
        });
        expect(renamed.status).toBe(200);
        expect(await t.cp.getIntegrationCredentials(id)).toEqual({ accessToken: SECRET });
        // A new destination with credentials of the sender's own: allowed, and the old ones are gone.
        const moved = await t.call('PATCH', `${A}/integrations/${id}`, {
          token: tokens.editor,
          body: {
            settings: { pixelId: '43', endpoint: 'https://eu.collector.example' },
            credentials: { accessToken: 'EAAB-the-editors-own-token-77aa' },
          },
        });
        expect(moved.status).toBe(200);
        expect(await t.cp.getIntegrationCredentials(id)).toEqual({
          accessToken: 'EAAB-the-editors-own-token-77aa',
        });
        // Without stored credentials there is nothing to redirect.
        await t.call('PATCH', `${A}/integrations/${id}`, {
          token: tokens.admin,
          body: { credentials: null },
        });
        const bare = await t.call('PATCH', `${A}/integrations/${id}`, {
          token: tokens.editor,
          body: { settings: { pixelId: '43', endpoint: 'https://other.collector.example' } },
        });
        expect(bare.status).toBe(200);
      });

      it('pages lists with opaque cursors: limit default 50, max 100', async () => {
        for (let i = 0; i < 5; i++) {
          await t.cp.pipelines.create(org.orgId, { name: `Pipeline ${i}`, type: 'web' });
        }
        const first = pageSchema.parse(
          (await t.call('GET', `${A}/pipelines?limit=2`, { token: tokens.viewer })).json,
        );
        expect(first.data).toHaveLength(2);
        expect(first.has_more).toBe(true);
        const ids = [...first.data.map((p) => p.id)];
        let cursor = first.next_cursor;
        while (cursor !== null) {
          const page = pageSchema.parse(
            (
              await t.call('GET', `${A}/pipelines?limit=2&cursor=${encodeURIComponent(cursor)}`, {
                token: tokens.viewer,
              })
            ).json,
          );
          ids.push(...page.data.map((p) => p.id));
          cursor = page.next_cursor;
        }
        expect(ids).toHaveLength(5);
        expect(new Set(ids).size).toBe(5);
        const all = pageSchema.parse((await t.call('GET', `${A}/pipelines`, { token: tokens.viewer })).json);
        expect(all).toMatchObject({ has_more: false, next_cursor: null });
        expect((await t.call('GET', `${A}/pipelines?limit=101`, { token: tokens.viewer })).status).toBe(400);
        expect((await t.call('GET', `${A}/pipelines?limit=abc`, { token: tokens.viewer })).status).toBe(400);
        expect((await t.call('GET', `${A}/pipelines?cursor=forged`, { token: tokens.viewer })).status).toBe(
          400,
        );
      });
    });

    describe('Org Data Layer', () => {
      it('reads defaults, saves with a version, refuses stale and invalid configs', async () => {
        const initial = await t.call('GET', `${A}/data-layer`, { token: tokens.viewer });
        expect(initial.json).toMatchObject({ version: 0, routing_rules: [] });
        const saved = await t.call('PUT', `${A}/data-layer`, {
          token: tokens.admin,
          body: { pii_rules: { hash_fields: ['traits.email'] }, expected_version: 0 },
        });
        expect(saved.status).toBe(200);
        expect(saved.json).toMatchObject({
          version: 1,
          pii_rules: { hash_fields: [{ field: 'traits.email' }] },
        });
        const stale = await t.call('PUT', `${A}/data-layer`, {
          token: tokens.admin,
          body: { expected_version: 0 },
        });
        expect(stale.status).toBe(409);
        const invalid = await t.call('PUT', `${A}/data-layer`, {
          token: tokens.admin,
          body: { pii_rules: { hash_algorithm: 'md5' } },
        });
        expect(invalid.status).toBe(400);
        expect((await t.call('PUT', `${A}/data-layer`, { token: tokens.editor, body: {} })).status).toBe(403);
        expect((await t.cp.getDataLayerConfig(org.orgId)).version).toBe(1);
        expect((await t.audit.list({ action: 'data_layer.updated' })).data).toHaveLength(1);
      });
    });

    describe('Org Data Layer settings the processor runs (shared schema)', () => {
      const condition = { field: 'context.provenance', op: 'neq', value: 'hmac' };

      it('accepts a routing condition and bot threshold/action/browser_signals, returns and audits them', async () => {
        const saved = await t.call('PUT', `${A}/data-layer`, {
          token: tokens.admin,
          body: {
            bot_filtering: { threshold: 30, action: 'flag', browser_signals: false },
            routing_rules: [{ name: 'server only', integrations: ['webhook'], action: 'drop', condition }],
          },
        });
        expect(saved.status).toBe(200);
        const read = await t.call('GET', `${A}/data-layer`, { token: tokens.viewer });
        for (const res of [saved, read]) {
          expect(res.json).toMatchObject({
            version: 1,
            bot_filtering: { threshold: 30, action: 'flag', browser_signals: false },
            routing_rules: [{ name: 'server only', action: 'exclude', condition }],
          });
        }
        const [entry] = (await t.audit.list({ action: 'data_layer.updated' })).data;
        expect(entry?.user_id).toBe(org.users.admin.id);
        expect(entry?.changes).toMatchObject({
          version: { old: 0, new: 1 },
          bot_filtering: {
            old: { threshold: 50, action: 'drop', browser_signals: true },
            new: { threshold: 30, action: 'flag', browser_signals: false },
          },
          routing_rules: { old: [], new: [{ condition }] },
        });
        expect(Object.keys(entry?.changes ?? {}).sort()).toEqual([
          'bot_filtering',
          'routing_rules',
          'version',
        ]);
      });

      it('answers 400 naming the first bad field, and changes nothing', async () => {
        const cases: [unknown, string][] = [
          [{ bot_filtering: { threshold: 101 } }, 'bot_filtering.threshold'],
          [{ bot_filtering: { action: 'block' } }, 'bot_filtering.action'],
          [{ bot_filtering: { browser_signals: 'yes' } }, 'bot_filtering.browser_signals'],
          [{ bot_filtering: { treshold: 30 } }, 'bot_filtering'],
          [
            {
              routing_rules: [{ name: 'r', action: 'drop', condition: { field: 'x', op: 'like', value: 1 } }],
            },
            'routing_rules.0.condition',
          ],
          [
            {
              routing_rules: [
                { name: 'r', action: 'drop', condition: { field: 'constructor', op: 'exists' } },
              ],
            },
            'routing_rules.0.condition',
          ],
        ];
        for (const [body, path] of cases) {
          const res = await t.call('PUT', `${A}/data-layer`, { token: tokens.admin, body });
          expect(res.status, JSON.stringify(body)).toBe(400);
          const error = errorSchema.parse(res.json).error;
          expect(error.code).toBe('validation_failed');
          expect(
            error.message.replace('the request body is invalid: ', '').startsWith(path),
            error.message,
          ).toBe(true);
        }
        expect((await t.cp.getDataLayerConfig(org.orgId)).version).toBe(0);
        expect((await t.audit.list({ action: 'data_layer.updated' })).data).toHaveLength(0);
      });

      it('sets, replaces and clears an integration pipeline; audits the change; refuses bad steps with their path', async () => {
        const { id: pipelineId } = createdPipelineSchema.parse(
          (await t.call('POST', `${A}/pipelines`, { token: tokens.editor, body: { name: 'P', type: 'web' } }))
            .json,
        );
        const steps = [
          { type: 'map', rename: {}, set: { 'properties.channel': 'web' }, remove: ['properties.internal'] },
          { type: 'filter', condition: { field: 'properties.value', op: 'exists' } },
        ];
        const created = await t.call('POST', `${A}/pipelines/${pipelineId}/integrations`, {
          token: tokens.editor,
          body: {
            vendor: 'webhook',
            name: 'Hook',
            consent: { category: 'analytics' },
            pipeline: steps,
            credentials: { signing_secret: 'whsec_not-for-the-audit-log-0001' },
          },
        });
        expect(created.status).toBe(201);
        expect(created.json).toMatchObject({ pipeline: steps });
        const id = z.object({ id: z.string() }).parse(created.json).id;
        const plain = await t.call('POST', `${A}/pipelines/${pipelineId}/integrations`, {
          token: tokens.editor,
          body: { vendor: 'webhook', name: 'Plain', consent: { category: 'analytics' } },
        });
        expect(plain.json).toMatchObject({ pipeline: [] });

        const next = [{ type: 'filter', condition: { field: 'event', op: 'eq', value: 'Order Completed' } }];
        const updated = await t.call('PATCH', `${A}/integrations/${id}`, {
          token: tokens.editor,
          body: { pipeline: next },
        });
        expect(updated.status).toBe(200);
        expect(updated.json).toMatchObject({ pipeline: next });
        const [entry] = (await t.audit.list({ action: 'integration.updated' })).data;
        expect(entry?.changes).toEqual({ pipeline: { old: steps, new: next } });

        const bad: [unknown, string][] = [
          [[{ type: 'map', set: { 'context.provenance': 'hmac' } }], 'pipeline.0.set'],
          [[{ type: 'filter' }], 'pipeline.0.condition'],
          [[{ type: 'sort' }], 'pipeline.0'],
          [Array.from({ length: 51 }, () => ({ type: 'map' })), 'pipeline'],
        ];
        for (const [pipeline, path] of bad) {
          const res = await t.call('PATCH', `${A}/integrations/${id}`, {
            token: tokens.editor,
            body: { pipeline },
          });
          expect(res.status).toBe(400);
          const { message } = errorSchema.parse(res.json).error;
          expect(message.replace('the request body is invalid: ', '').startsWith(path), message).toBe(true);
        }
        const cleared = await t.call('PATCH', `${A}/integrations/${id}`, {
          token: tokens.editor,
          body: { pipeline: [] },
        });
        expect(cleared.json).toMatchObject({ pipeline: [] });
        expect((await t.cp.listIntegrations(pipelineId)).find((i) => i.id === id)?.pipeline).toEqual([]);
        expect(await t.auditDump()).not.toContain('not-for-the-audit-log');
        expect(
          (await t.call('PATCH', `${A}/integrations/${id}`, { token: tokens.viewer, body: { pipeline: [] } }))
            .status,
        ).toBe(403);
      });
    });

    describe('audit logs', () => {
      it('lists with filters and exports NDJSON (and records the export)', async () => {
        await t.call('POST', `${A}/pipelines`, {
          token: tokens.editor,
          body: { name: 'Audited', type: 'web' },
        });
        const list = await t.call('GET', `${A}/audit-logs?action=pipeline.created&limit=10`, {
          token: tokens.admin,
        });
        const page = pageSchema.parse(list.json);
        expect(page.data).toHaveLength(1);
        expect(page.data[0]).toMatchObject({ action: 'pipeline.created', user_id: org.users.editor.id });
        expect((await t.call('GET', `${A}/audit-logs?action=nope`, { token: tokens.admin })).status).toBe(
          400,
        );
        const exported = await t.call('GET', `${A}/audit-logs/export?action=pipeline.created`, {
          token: tokens.admin,
        });
        expect(exported.status).toBe(200);
        expect(exported.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
        const lines = exported.text
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line));
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({
          action: 'pipeline.created',
          seq: expect.any(Number),
          hash: expect.any(String),
        });
        expect((await t.audit.list({ action: 'audit.exported' })).data[0]?.user_id).toBe(org.users.admin.id);
        expect(
          (await t.call('GET', `${A}/audit-logs/export?from=yesterday`, { token: tokens.admin })).status,
        ).toBe(400);
      });
    });

    describe('rate limit', () => {
      it('allows 100 requests per minute per user, then 429 with Retry-After', async () => {
        for (let i = 0; i < 100; i++) {
          const res = await t.call('GET', `${A}/auth/me`, { token: tokens.viewer });
          expect(res.status).toBe(200);
        }
        const limited = await t.call('GET', `${A}/auth/me`, { token: tokens.viewer });
        expect(limited.status).toBe(429);
        expect(errorCode(limited.json)).toBe('rate_limited');
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        // Per user: someone else is not affected.
        expect((await t.call('GET', `${A}/auth/me`, { token: tokens.editor })).status).toBe(200);
      });
    });
  });
}
