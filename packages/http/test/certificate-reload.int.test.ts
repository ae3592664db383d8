import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CertificateError,
  type CertificateEvent,
  createCertificateManager,
  createServer,
  createTestPki,
  registerCertificateMetrics,
  type SignalHttpServer,
  sendJson,
  type TestCa,
  type TestCertificate,
  type TestPki,
} from '../src/index';
import { handshake, waitFor } from './helpers';

/**
 * Certificate rotation under a running server: files are swapped the way Kubernetes secret volumes
 * (`..data` symlink swap) and cert-manager / plain deployments (write, then rename) do it.
 */

const DAY = 86_400_000;
const CBC_ONLY = {
  maxVersion: 'TLSv1.2',
  ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA',
} as const;

let pki: TestPki;
let ca: TestCa;
let workRoot: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa();
  workRoot = await mkdtemp(join(tmpdir(), 'signal-cert-reload-'));
});

afterAll(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
  await rm(workRoot, { recursive: true, force: true });
  await pki.cleanup();
});

let dirCounter = 0;
async function freshDir(): Promise<string> {
  dirCounter += 1;
  const dir = join(workRoot, `case-${dirCounter}`);
  await mkdir(dir);
  return dir;
}

/** Lays files out like a Kubernetes secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<version>. */
async function kubernetesSecret(
  dir: string,
  cert: TestCertificate,
): Promise<{ certPath: string; keyPath: string }> {
  await mkdir(join(dir, '..v1'));
  await writeFile(join(dir, '..v1', 'tls.crt'), cert.certPem);
  await writeFile(join(dir, '..v1', 'tls.key'), cert.keyPem);
  await symlink('..v1', join(dir, '..data'));
  await symlink(join('..data', 'tls.crt'), join(dir, 'tls.crt'));
  await symlink(join('..data', 'tls.key'), join(dir, 'tls.key'));
  return { certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key') };
}

/** The kubelet's atomic update: write a new versioned directory, then rename a new `..data` link over the old. */
async function kubernetesSwap(dir: string, version: string, cert: TestCertificate): Promise<void> {
  await mkdir(join(dir, version));
  await writeFile(join(dir, version, 'tls.crt'), cert.certPem);
  await writeFile(join(dir, version, 'tls.key'), cert.keyPem);
  await symlink(version, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
}

/** cert-manager / config-management style: write each file beside its target, then rename it into place. */
async function writeThenRename(path: string, content: string): Promise<void> {
  await writeFile(`${path}.tmp`, content);
  await rename(`${path}.tmp`, path);
}

async function plainFiles(
  dir: string,
  cert: TestCertificate,
): Promise<{ certPath: string; keyPath: string }> {
  const paths = { certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key') };
  await writeFile(paths.certPath, cert.certPem);
  await writeFile(paths.keyPath, cert.keyPem);
  return paths;
}

async function start(
  paths: { certPath: string; keyPath: string },
  reload: { watch?: boolean; pollIntervalMs?: number; debounceMs?: number },
): Promise<{ server: SignalHttpServer; port: number }> {
  const server = createServer({
    tls: { ...paths, reload },
    handler: (_req, res) => sendJson(res, 200, { ok: true }),
  });
  const { port } = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close(100));
  return { server, port };
}

function certificatesOf(server: SignalHttpServer) {
  if (server.certificates === undefined) throw new Error('expected a TLS server');
  return server.certificates;
}

/** One GET over a keep-alive agent: status, the peer certificate this connection saw, and socket reuse. */
function keepAliveGet(agent: HttpsAgent, port: number) {
  return new Promise<{ status: number; fingerprint256: string; reusedSocket: boolean }>((resolve, reject) => {
    const req = httpsGet({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      // Read before the body ends: a keep-alive socket is detached from the response once it is done.
      const fingerprint256 = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, fingerprint256, reusedSocket: req.reusedSocket }),
      );
    });
    req.on('error', reject);
  });
}

describe('certificate hot reload', () => {
  it('serves a swapped Kubernetes secret to new connections while an open keep-alive connection keeps working', async () => {
    const v1 = await ca.issueServerCertificate();
    const v2 = await ca.issueServerCertificate();
    const dir = await freshDir();
    const { server, port } = await start(await kubernetesSecret(dir, v1), {
      pollIntervalMs: 0,
      debounceMs: 50,
    });
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: ca.certPem });
    cleanups.push(async () => agent.destroy());

    const first = await keepAliveGet(agent, port);
    expect(first).toEqual({ status: 200, fingerprint256: v1.fingerprint256, reusedSocket: false });

    const reloaded = waitFor<CertificateEvent>(
      (listener) => certificatesOf(server).subscribe(listener),
      (event) => event.type === 'reloaded',
    );
    await kubernetesSwap(dir, '..v2', v2);
    expect(await reloaded).toMatchObject({
      type: 'reloaded',
      certificate: { fingerprint256: v2.fingerprint256 },
      previous: { fingerprint256: v1.fingerprint256 },
    });

    // The established connection finishes on the certificate it negotiated...
    expect(await keepAliveGet(agent, port)).toEqual({
      status: 200,
      fingerprint256: v1.fingerprint256,
      reusedSocket: true,
    });
    // ...and every new one gets the new certificate, with the TLS policy intact.
    expect(await handshake(port, { ca: ca.certPem })).toMatchObject({
      ok: true,
      protocol: 'TLSv1.3',
      fingerprint256: v2.fingerprint256,
    });
    expect(await handshake(port, { ca: ca.certPem, ...CBC_ONLY })).toMatchObject({ ok: false });
    expect(certificatesOf(server).certificate.fingerprint256).toBe(v2.fingerprint256);
  });

  it('picks up write-then-rename replacements by polling when file events are unavailable', async () => {
    const v1 = await ca.issueServerCertificate();
    const v2 = await ca.issueServerCertificate();
    const paths = await plainFiles(await freshDir(), v1);
    const { server, port } = await start(paths, { watch: false, pollIntervalMs: 100 });

    const reloaded = waitFor<CertificateEvent>(
      (listener) => certificatesOf(server).subscribe(listener),
      (event) => event.type === 'reloaded',
    );
    await writeThenRename(paths.keyPath, v2.keyPem);
    await writeThenRename(paths.certPath, v2.certPem);
    await reloaded;

    expect(await handshake(port, { ca: ca.certPem })).toMatchObject({
      ok: true,
      fingerprint256: v2.fingerprint256,
    });
  });

  it('refuses invalid replacements, keeps serving the current certificate, and recovers on a valid one', async () => {
    const v1 = await ca.issueServerCertificate();
    const other = await ca.issueServerCertificate();
    const expired = await ca.issueServerCertificate({
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const paths = await plainFiles(await freshDir(), v1);
    const { server, port } = await start(paths, { watch: false, pollIntervalMs: 0 });
    const certificates = certificatesOf(server);
    const events: CertificateEvent[] = [];
    certificates.subscribe((event) => events.push(event));

    const attempts: Array<{ cert: string; key: string; reason: string }> = [
      { cert: other.certPem, key: v1.keyPem, reason: 'key_mismatch' },
      { cert: expired.certPem, key: expired.keyPem, reason: 'expired' },
      { cert: 'not a certificate', key: v1.keyPem, reason: 'invalid_certificate' },
      {
        cert: v1.certPem.replace(/[A-Za-z0-9]{8}\n/, 'AAAAAAAA\n'),
        key: v1.keyPem,
        reason: 'invalid_certificate',
      },
      {
        cert: other.certPem,
        key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
        reason: 'invalid_key',
      },
    ];
    for (const attempt of attempts) {
      await writeThenRename(paths.certPath, attempt.cert);
      await writeThenRename(paths.keyPath, attempt.key);
      expect(await certificates.check()).toMatchObject({ outcome: 'rejected', reason: attempt.reason });
      expect(await handshake(port, { ca: ca.certPem })).toMatchObject({
        ok: true,
        fingerprint256: v1.fingerprint256,
      });
    }
    await unlink(paths.keyPath);
    expect(await certificates.check()).toMatchObject({ outcome: 'rejected', reason: 'unreadable' });

    // The same refused state seen again (every poll) is reported once, not on every check.
    expect(await certificates.check()).toMatchObject({ outcome: 'rejected', reason: 'unreadable' });
    expect(events.map((event) => (event.type === 'rejected' ? event.reason : event.type))).toEqual([
      ...attempts.map((attempt) => attempt.reason),
      'unreadable',
    ]);
    expect(certificates.certificate.fingerprint256).toBe(v1.fingerprint256);

    await writeThenRename(paths.keyPath, other.keyPem);
    expect(await certificates.check()).toMatchObject({ outcome: 'reloaded' });
    expect(await certificates.check()).toEqual({ outcome: 'unchanged' });
    expect(await handshake(port, { ca: ca.certPem })).toMatchObject({
      ok: true,
      fingerprint256: other.fingerprint256,
    });
  });
});

describe('certificate expiry reporting', () => {
  it('reports days left, warns under 14 days, and exports the expiry gauge and reload counter', async () => {
    const soon = await ca.issueServerCertificate({ notAfter: new Date(Date.now() + 10 * DAY + 3_600_000) });
    const later = await ca.issueServerCertificate({ notAfter: new Date(Date.now() + 60 * DAY + 3_600_000) });
    const paths = await plainFiles(await freshDir(), soon);
    const certificates = createCertificateManager({
      ...paths,
      name: 'ingress',
      watch: false,
      pollIntervalMs: 0,
    });
    const registry = new Registry();
    registerCertificateMetrics(registry, [certificates]);

    expect(certificates.notAfter).toEqual(soon.notAfter);
    expect(certificates.daysUntilExpiry()).toBe(10);
    expect(certificates.status()).toBe('warn');
    expect(certificates.health()).toEqual({
      status: 'warn',
      details: {
        not_after: soon.notAfter.toISOString(),
        days_until_expiry: 10,
        fingerprint_sha256: soon.fingerprint256,
      },
    });
    const gauge = (await registry.getSingleMetric('signal_tls_certificate_expiry_seconds')?.get())?.values[0];
    expect(gauge?.labels).toEqual({ certificate: 'ingress' });
    expect(gauge?.value).toBeGreaterThan(10 * 86_400);
    expect(gauge?.value).toBeLessThan(10 * 86_400 + 3_600);

    await writeThenRename(paths.certPath, later.certPem);
    await writeThenRename(paths.keyPath, later.keyPem);
    await certificates.check();
    expect(certificates.status()).toBe('ok');
    expect(certificates.daysUntilExpiry()).toBe(60);
    const text = await registry.metrics();
    expect(text).toContain('signal_tls_certificate_reloads_total{certificate="ingress",result="reloaded"} 1');
    expect(text).toContain('signal_tls_certificate_reloads_total{certificate="ingress",result="rejected"} 0');
    expect(text).toContain(
      `signal_tls_certificate_not_after_timestamp_seconds{certificate="ingress"} ${later.notAfter.getTime() / 1000}`,
    );
  });

  it('reports a certificate that expired while running as failing readiness', async () => {
    const cert = await ca.issueServerCertificate({ notAfter: new Date(Date.now() + 5 * DAY) });
    const paths = await plainFiles(await freshDir(), cert);
    let now = Date.now();
    const certificates = createCertificateManager({
      ...paths,
      watch: false,
      pollIntervalMs: 0,
      clock: () => now,
    });
    expect(certificates.health().status).toBe('warn');

    now += 6 * DAY;
    expect(certificates.status()).toBe('expired');
    expect(certificates.daysUntilExpiry()).toBe(-1);
    expect(certificates.health().status).toBe('fail');
  });

  it('fails start-up with a named reason when the configured files are unusable', async () => {
    const valid = await ca.issueServerCertificate();
    const expired = await ca.issueServerCertificate({
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const expiredPaths = await plainFiles(await freshDir(), expired);
    const mismatched = await plainFiles(await freshDir(), valid);
    await writeFile(mismatched.keyPath, expired.keyPem);

    const attempt = (paths: { certPath: string; keyPath: string }) => () =>
      createServer({ tls: paths, handler: () => {} });
    expect(attempt(expiredPaths)).toThrow(CertificateError);
    expect(attempt(expiredPaths)).toThrow(/expired/);
    expect(attempt(mismatched)).toThrow(/does not belong to the certificate/);
    expect(attempt({ certPath: join(workRoot, 'missing.crt'), keyPath: mismatched.keyPath })).toThrow(
      /ENOENT/,
    );
  });
});
