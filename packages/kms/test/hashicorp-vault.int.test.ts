import { createHmac, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '@signal/config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsSettings, KmsError, type KmsProvider, loadCloudKmsProvider } from '../src/index';
import {
  CONTEXT,
  createTestTls,
  describeProtocolCases,
  NO_CLOUD_SETTINGS,
  open,
  type Protocol,
  type RecordedRequest,
  type Reply,
  type StandInServer,
  seal,
  sortedJson,
  type TestTls,
} from './support/protocol-stand-in';

/**
 * hashicorp-vault against a Vault/OpenBao transit REST protocol stand-in: `POST /v1/{mount}/encrypt|decrypt|
 * rewrap/{key}` with a derived key (the `context` picks the subkey, so the wrong context fails to decrypt),
 * `X-Vault-Token` and `X-Vault-Namespace`, and AppRole login at `/v1/auth/approle/login`.
 */

const TOKEN = 'hvs.standin-static-token-0123456789';
const APPROLE = { roleId: 'signal-role', secretId: 'standin-secret-id-0123456789' };
const NAMESPACE = 'acme/payments';

interface VaultStandIn {
  readonly protocol: Protocol;
  rotate(): void;
  /** Tokens the stand-in accepts; AppRole logins add theirs. */
  readonly tokens: Set<string>;
  logins: number;
}

function vaultStandIn(): VaultStandIn {
  const versions: Buffer[] = [randomBytes(32)];
  const tokens = new Set([TOKEN]);
  const errors = (status: number, ...messages: string[]): Reply => ({ status, body: { errors: messages } });
  const state: VaultStandIn = {
    tokens,
    logins: 0,
    rotate: () => void versions.push(randomBytes(32)),
    protocol(request: RecordedRequest): Reply {
      if (request.method === 'POST' && request.url === '/v1/auth/approle/login') {
        const body = request.json as { role_id?: string; secret_id?: string };
        if (body.role_id !== APPROLE.roleId || body.secret_id !== APPROLE.secretId) {
          return errors(400, 'invalid role or secret ID');
        }
        state.logins += 1;
        const token = `hvs.approle-${state.logins}-${randomBytes(8).toString('hex')}`;
        tokens.add(token);
        return {
          status: 200,
          body: { auth: { client_token: token, lease_duration: 3600, renewable: true } },
        };
      }
      if (request.url === '/v1/auth/token/lookup-self' || request.url === '/v1/auth/token/renew-self') {
        const token = request.headers['x-vault-token'];
        if (typeof token !== 'string' || !tokens.has(token)) return errors(403, 'permission denied');
        if (request.method === 'GET' && request.url.endsWith('lookup-self')) {
          return { status: 200, body: { data: { ttl: 3600, renewable: true, policies: ['signal'] } } };
        }
        if (request.method === 'POST' && request.url.endsWith('renew-self')) {
          return {
            status: 200,
            body: { auth: { client_token: token, lease_duration: 3600, renewable: true } },
          };
        }
      }
      const match = /^\/v1\/transit\/(encrypt|decrypt|rewrap)\/([A-Za-z0-9_.-]+)$/.exec(request.url);
      if (request.method !== 'POST' || match === null) return errors(404, 'no handler for route');
      const token = request.headers['x-vault-token'];
      if (typeof token !== 'string' || !tokens.has(token)) return errors(403, 'permission denied');
      if (match[2] !== 'signal') return errors(400, 'encryption key not found');
      const body = request.json as { plaintext?: string; ciphertext?: string; context?: string };
      if (!body.context) {
        return errors(400, "missing 'context' for key derivation; the key was created using a derived key");
      }
      const context = Buffer.from(body.context, 'base64');
      const subkey = (version: number) =>
        createHmac('sha256', versions[version - 1] ?? Buffer.alloc(32))
          .update(context)
          .digest();
      const encrypt = (plaintext: Buffer): Reply => {
        const version = versions.length;
        const sealed = seal(subkey(version), plaintext, Buffer.alloc(0));
        return {
          status: 200,
          body: {
            data: { ciphertext: `vault:v${version}:${sealed.toString('base64')}`, key_version: version },
          },
        };
      };
      if (match[1] === 'encrypt') return encrypt(Buffer.from(body.plaintext ?? '', 'base64'));
      const parts = /^vault:v(\d+):(.+)$/.exec(body.ciphertext ?? '');
      if (parts === null) return errors(400, 'invalid ciphertext: no prefix');
      const version = Number(parts[1]);
      if (version > versions.length) return errors(400, 'invalid ciphertext: key version not found');
      const plaintext = open(subkey(version), Buffer.from(parts[2] ?? '', 'base64'), Buffer.alloc(0));
      if (plaintext === null) return errors(400, 'cipher: message authentication failed');
      if (match[1] === 'rewrap') return encrypt(plaintext);
      return { status: 200, body: { data: { plaintext: plaintext.toString('base64') } } };
    },
  };
  return state;
}

const secret = (value: string) => ({ reveal: () => value });

function settings(vault: Partial<CloudKmsSettings['vault']>): CloudKmsSettings {
  return {
    ...NO_CLOUD_SETTINGS,
    vault: {
      ...NO_CLOUD_SETTINGS.vault,
      token: secret(TOKEN),
      namespace: NAMESPACE,
      key: 'signal',
      ...vault,
    },
  };
}

let tls: TestTls;
let standIn: VaultStandIn;
let server: StandInServer;
let caPath: string;

async function writeCa(pem: string, name: string): Promise<string> {
  const path = join(tls.pki.dir, name);
  await writeFile(path, pem);
  return path;
}

async function connect(vault: Partial<CloudKmsSettings['vault']> = {}): Promise<KmsProvider> {
  return loadCloudKmsProvider(
    'hashicorp-vault',
    settings({ address: secret(server.origin), caCertPath: caPath, ...vault }),
  );
}

beforeAll(async () => {
  tls = await createTestTls();
  standIn = vaultStandIn();
  server = await tls.serve(standIn.protocol);
  caPath = await writeCa(tls.ca.certPem, 'vault-ca.pem');
});
afterAll(async () => {
  await tls.cleanup();
});

describeProtocolCases('hashicorp-vault against a Vault/OpenBao transit protocol stand-in', async () => ({
  tls,
  server,
  bindsContext: true,
  rotate: () => standIn.rotate(),
  kekRefNamesVersion: true,
  denied: { status: 403, body: { errors: ['permission denied'] } },
  unavailable: { status: 503, body: { errors: ['Vault is sealed'] } },
  secrets: [TOKEN, APPROLE.secretId],
  connect: async (overrides = {}) =>
    connect({
      ...(overrides.origin === undefined ? {} : { address: secret(overrides.origin) }),
      ...(overrides.caPem === undefined
        ? {}
        : { caCertPath: await writeCa(overrides.caPem, `ca-${randomBytes(4).toString('hex')}.pem`) }),
    }),
}));

describe('hashicorp-vault against a Vault/OpenBao transit protocol stand-in: the exact requests', () => {
  const call = () => ({ signal: AbortSignal.timeout(10_000) });
  const dek = randomBytes(32);
  const expectedContext = sortedJson(CONTEXT).toString('base64');

  it('encrypt, decrypt and rewrap send the token, the namespace and the canonical context', async () => {
    const provider = await connect();
    try {
      server.requests.length = 0;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      await provider.unwrap(wrapped, CONTEXT, call());
      const rewrapped = await provider.rewrap(wrapped, CONTEXT, call());
      expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
        // First use looks the static token up, to renew it before its TTL runs out.
        'GET /v1/auth/token/lookup-self',
        'POST /v1/transit/encrypt/signal',
        'POST /v1/transit/decrypt/signal',
        'POST /v1/transit/rewrap/signal',
      ]);
      server.requests.shift();
      for (const request of server.requests) {
        expect(request.headers['x-vault-token']).toBe(TOKEN);
        expect(request.headers['x-vault-namespace']).toBe(NAMESPACE);
        expect((request.json as { context: string }).context).toBe(expectedContext);
      }
      expect(server.requests[0]?.json).toEqual({
        plaintext: dek.toString('base64'),
        context: expectedContext,
      });
      const stored = Buffer.from(wrapped.ciphertext).toString('utf8');
      expect(server.requests[1]?.json).toEqual({ ciphertext: stored, context: expectedContext });
      expect(wrapped.kekRef).toMatch(/^transit\/signal:v\d+$/);
      expect(rewrapped.kekRef).toMatch(/^transit\/signal:v\d+$/);
      expect(provider.kekId).toBe('transit/signal');
    } finally {
      await provider.close();
    }
  });

  it('takes config.encryption as it is: environment → loadConfig → adapter → stand-in', async () => {
    const config = loadConfig({
      cwd: tls.pki.dir,
      env: {
        ENCRYPTION_PROVIDER: 'hashicorp-vault',
        VAULT_ADDR: server.origin,
        VAULT_TOKEN: TOKEN,
        VAULT_NAMESPACE: NAMESPACE,
        VAULT_CACERT: caPath,
        ENCRYPTION_VAULT_KEY: 'signal',
      },
    });
    if (config.encryption.provider === 'local') throw new Error('expected a cloud provider');
    const provider = await loadCloudKmsProvider(config.encryption.provider, config.encryption);
    try {
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      expect(Buffer.from(await provider.unwrap(wrapped, CONTEXT, call())).equals(dek)).toBe(true);
      expect(server.requests.at(-1)?.headers['x-vault-namespace']).toBe(NAMESPACE);
    } finally {
      await provider.close();
    }
  });

  it('renews a renewable static token (renew-self) once half its TTL has passed', async () => {
    let clock = 1_000_000;
    const provider = await loadCloudKmsProvider(
      'hashicorp-vault',
      settings({ address: secret(server.origin), caCertPath: caPath }),
      { now: () => clock },
    );
    try {
      server.requests.length = 0;
      await provider.wrap(dek, CONTEXT, call());
      clock += 1_700_000; // under half of the 3600 s TTL: nothing to do
      await provider.wrap(dek, CONTEXT, call());
      clock += 200_000; // past half
      await provider.wrap(dek, CONTEXT, call());
      await provider.wrap(dek, CONTEXT, call());
      expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
        'GET /v1/auth/token/lookup-self',
        'POST /v1/transit/encrypt/signal',
        'POST /v1/transit/encrypt/signal',
        'POST /v1/auth/token/renew-self',
        'POST /v1/transit/encrypt/signal',
        'POST /v1/transit/encrypt/signal',
      ]);
      expect(server.requests[3]?.headers['x-vault-token']).toBe(TOKEN);
    } finally {
      await provider.close();
    }
  });

  it('logs in with AppRole once, and again when the token is refused', async () => {
    const provider = await connect({
      token: null,
      roleId: APPROLE.roleId,
      secretId: secret(APPROLE.secretId),
    });
    try {
      server.requests.length = 0;
      const loginsBefore = standIn.logins;
      await Promise.all([provider.wrap(dek, CONTEXT, call()), provider.wrap(dek, CONTEXT, call())]);
      expect(standIn.logins - loginsBefore).toBe(1);
      const login = server.requests.find((r) => r.url === '/v1/auth/approle/login');
      expect(login?.json).toEqual({ role_id: APPROLE.roleId, secret_id: APPROLE.secretId });
      expect(login?.headers['x-vault-namespace']).toBe(NAMESPACE);
      const first = server.requests.find((r) => r.url === '/v1/transit/encrypt/signal');
      const issued = first?.headers['x-vault-token'];
      expect(typeof issued === 'string' && issued.startsWith('hvs.approle-')).toBe(true);

      // Revoked behind our back: one 403, one fresh login, the call succeeds.
      standIn.tokens.delete(String(issued));
      await provider.wrap(dek, CONTEXT, call());
      expect(standIn.logins - loginsBefore).toBe(2);
    } finally {
      await provider.close();
    }
  });

  it('a wrong AppRole secret is kms_denied and the message does not echo it', async () => {
    const provider = await connect({
      token: null,
      roleId: APPROLE.roleId,
      secretId: secret('wrong-secret-id-987654321'),
    });
    try {
      const error = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KmsError);
      expect((error as KmsError).code).toBe('kms_denied');
      expect((error as KmsError).message).not.toContain('wrong-secret-id-987654321');
    } finally {
      await provider.close();
    }
  });

  it('with neither token nor AppRole on a loopback address, lets a local Vault Agent add the token', async () => {
    const provider = await connect({ token: null });
    try {
      server.requests.length = 0;
      const error = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      // The stand-in is no agent: it refuses the token-less request, which is what Vault itself would do.
      expect((error as KmsError).code).toBe('kms_denied');
      expect(server.requests.map((r) => r.headers['x-vault-token'])).toEqual([undefined]);
    } finally {
      await provider.close();
    }
  });

  it('a transit key that does not exist is kms_key_not_found', async () => {
    const provider = await connect({ key: 'missing' });
    try {
      const error = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect((error as KmsError).code).toBe('kms_key_not_found');
    } finally {
      await provider.close();
    }
  });

  it('refuses a wrapped key that names another transit key, without calling Vault', async () => {
    const provider = await connect();
    try {
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      const seen = server.requests.length;
      const error = await provider
        .unwrap({ ...wrapped, kekRef: 'transit/other:v1' }, CONTEXT, call())
        .catch((e: unknown) => e);
      expect((error as KmsError).code).toBe('kms_invalid_ciphertext');
      expect(server.requests.length).toBe(seen);
    } finally {
      await provider.close();
    }
  });

  it('settings: missing or unsafe values fail with kms_misconfigured naming the variable', async () => {
    const failure = (vault: Partial<CloudKmsSettings['vault']>) =>
      loadCloudKmsProvider('hashicorp-vault', settings(vault)).then(
        () => null,
        (e: unknown) => (e instanceof KmsError ? `${e.code}: ${e.message}` : String(e)),
      );
    expect(await failure({})).toBe(
      'kms_misconfigured: hashicorp-vault: VAULT_ADDR must be set when ENCRYPTION_PROVIDER=hashicorp-vault',
    );
    expect(await failure({ address: secret(server.origin), key: null })).toBe(
      'kms_misconfigured: hashicorp-vault: ENCRYPTION_VAULT_KEY must be set when ENCRYPTION_PROVIDER=hashicorp-vault',
    );
    expect(await failure({ address: secret('http://vault.internal:8200') })).toMatch(
      /^kms_misconfigured: .*VAULT_ADDR must start with https:\/\//,
    );
    expect(
      await failure({ address: secret(server.origin), caCertPath: join(tls.pki.dir, 'nope.pem') }),
    ).toMatch(/^kms_misconfigured: .*VAULT_CACERT must name a readable PEM file \(ENOENT\)/);
    expect(await failure({ address: secret(server.origin), mount: '../sys' })).toMatch(
      /^kms_misconfigured: .*ENCRYPTION_VAULT_MOUNT/,
    );
  });
});
