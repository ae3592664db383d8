import {
  constants,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CloudKmsSettings,
  type CloudKmsTestHooks,
  type KmsError,
  loadCloudKmsProvider,
} from '../src/index';
import {
  CONTEXT,
  createTestTls,
  describeProtocolCases,
  NO_CLOUD_SETTINGS,
  type Protocol,
  type RecordedRequest,
  type Reply,
  type StandInServer,
  type TestTls,
} from './support/protocol-stand-in';

/**
 * azure-keyvault against a Key Vault REST protocol stand-in: the bearer challenge (401 + WWW-Authenticate,
 * then the token for the challenge's resource), `GET /keys/{name}[/{version}]`, and `POST
 * /keys/{name}/{version}/wrapkey|unwrapkey?api-version=…` doing real RSA-OAEP-256 with a per-version RSA key.
 * Key Vault binds no context: that is asserted here, and is why DEK rows carry a commitment.
 */

const TOKEN = 'eyJ.standin-azure-access-token-0123456789';
const TENANT = '00000000-0000-0000-0000-00000000a11c';
const KEY_NAME = 'signal-kek';

interface KeyVersion {
  readonly version: string;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

interface AzureStandIn {
  readonly protocol: Protocol;
  rotate(): void;
}

function newVersion(): KeyVersion {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { version: randomBytes(16).toString('hex'), publicKey, privateKey };
}

function azureStandIn(origin: () => string): AzureStandIn {
  const versions: KeyVersion[] = [newVersion()];
  const error = (status: number, code: string, message: string): Reply => ({
    status,
    body: { error: { code, message } },
  });
  const bundle = (v: KeyVersion): Reply => {
    const jwk = v.publicKey.export({ format: 'jwk' });
    return {
      status: 200,
      body: {
        key: {
          kid: `${origin()}/keys/${KEY_NAME}/${v.version}`,
          kty: 'RSA',
          key_ops: ['wrapKey', 'unwrapKey'],
          n: jwk.n,
          e: jwk.e,
        },
        attributes: {
          enabled: true,
          created: 1_700_000_000,
          updated: 1_700_000_000,
          recoveryLevel: 'Recoverable+Purgeable',
        },
      },
    };
  };
  return {
    rotate: () => void versions.push(newVersion()),
    protocol(request: RecordedRequest): Reply {
      if (request.headers.authorization === undefined) {
        return {
          status: 401,
          headers: {
            'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${TENANT}", resource="https://vault.azure.net"`,
          },
          body: {
            error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
          },
        };
      }
      if (request.headers.authorization !== `Bearer ${TOKEN}`) return error(401, 'Unauthorized', 'bad token');
      const url = new URL(request.url, 'https://stand-in');
      if (!url.searchParams.has('api-version')) return error(400, 'BadParameter', 'api-version is required');
      const match = /^\/keys\/([^/]+)(?:\/([^/]*))?(?:\/(wrapkey|unwrapkey))?$/.exec(url.pathname);
      if (match === null || match[1] !== KEY_NAME)
        return error(404, 'KeyNotFound', 'A key with (name/id) was not found');
      const current = versions[versions.length - 1];
      const version = match[2] ? versions.find((v) => v.version === match[2]) : current;
      if (version === undefined) return error(404, 'KeyNotFound', 'version not found');
      if (request.method === 'GET' && match[3] === undefined) return bundle(version);
      const body = (request.json ?? {}) as { alg?: string; value?: string };
      if (request.method !== 'POST' || body.alg !== 'RSA-OAEP-256')
        return error(400, 'BadParameter', 'unsupported');
      const value = Buffer.from(body.value ?? '', 'base64url');
      const rsa = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
      const kid = `${origin()}/keys/${KEY_NAME}/${version.version}`;
      if (match[3] === 'wrapkey') {
        return {
          status: 200,
          body: {
            kid,
            value: publicEncrypt({ key: version.publicKey, ...rsa }, value).toString('base64url'),
          },
        };
      }
      try {
        const plaintext = privateDecrypt({ key: version.privateKey, ...rsa }, value);
        return { status: 200, body: { kid, value: plaintext.toString('base64url') } };
      } catch {
        return error(400, 'BadParameter', 'The parameter is incorrect.');
      }
    },
  };
}

/** The test credential: typed against @azure/core-auth's port, records what Key Vault's challenge asked for. */
class StandInCredential implements TokenCredential {
  readonly requests: { scopes: string[]; tenantId: string | undefined }[] = [];
  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    this.requests.push({ scopes: [scopes].flat(), tenantId: options?.tenantId });
    return { token: TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

let tls: TestTls;
let standIn: AzureStandIn;
let server: StandInServer;
const credential = new StandInCredential();

const settings = (origin: string): CloudKmsSettings => ({
  ...NO_CLOUD_SETTINGS,
  azureKeyVault: { keyId: `${origin}/keys/${KEY_NAME}` },
});

function hooks(overrides: { caPem?: string } = {}): CloudKmsTestHooks {
  return { caPem: overrides.caPem ?? tls.ca.certPem, azureCredential: credential };
}

beforeAll(async () => {
  tls = await createTestTls();
  standIn = azureStandIn(() => server.origin);
  server = await tls.serve(standIn.protocol);
});
afterAll(async () => {
  await tls.cleanup();
});

describeProtocolCases('azure-keyvault against a Key Vault REST protocol stand-in', async () => ({
  tls,
  server,
  bindsContext: false,
  kekRefNamesVersion: true,
  rotate: () => standIn.rotate(),
  denied: {
    status: 403,
    body: {
      error: {
        code: 'Forbidden',
        message: 'The user does not have keys wrapKey permission on key vault',
        innererror: { code: 'ForbiddenByPolicy' },
      },
    },
  },
  unavailable: {
    status: 503,
    body: { error: { code: 'ServiceUnavailable', message: 'The service is unavailable.' } },
  },
  secrets: [TOKEN],
  connect: (overrides = {}) =>
    loadCloudKmsProvider('azure-keyvault', settings(overrides.origin ?? server.origin), hooks(overrides)),
}));

describe('azure-keyvault against a Key Vault REST protocol stand-in: the exact requests', () => {
  const call = () => ({ signal: AbortSignal.timeout(10_000) });
  const dek = randomBytes(32);

  it('wrapkey/unwrapkey go to an explicit key version with RSA-OAEP-256 and the challenge token', async () => {
    const provider = await loadCloudKmsProvider('azure-keyvault', settings(server.origin), hooks());
    try {
      server.requests.length = 0;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      await provider.unwrap(wrapped, CONTEXT, call());
      const version = wrapped.kekRef.split('/').pop() ?? '';
      expect(wrapped.kekRef).toBe(`${server.origin}/keys/${KEY_NAME}/${version}`);
      expect(version).toMatch(/^[0-9a-f]{32}$/);

      const authenticated = server.requests.filter((r) => r.headers.authorization !== undefined);
      for (const request of authenticated) expect(request.headers.authorization).toBe(`Bearer ${TOKEN}`);
      const calls = authenticated.map((r) => `${r.method} ${new URL(r.url, 'https://x').pathname}`);
      // The SDK asks for the current version as `/keys/{name}/` (empty version segment).
      expect(calls).toContain(`GET /keys/${KEY_NAME}/`);
      expect(calls).toContain(`POST /keys/${KEY_NAME}/${version}/wrapkey`);
      expect(calls).toContain(`POST /keys/${KEY_NAME}/${version}/unwrapkey`);
      const wrapkey = authenticated.find((r) => r.url.includes('/wrapkey'));
      expect(new URL(wrapkey?.url ?? '', 'https://x').searchParams.get('api-version')).toMatch(
        /^\d{4}-\d{2}-\d{2}|^7\./,
      );
      expect(wrapkey?.json).toEqual({ alg: 'RSA-OAEP-256', value: dek.toString('base64url') });
      const unwrapkey = authenticated.find((r) => r.url.includes('/unwrapkey'));
      expect(unwrapkey?.json).toEqual({
        alg: 'RSA-OAEP-256',
        value: Buffer.from(wrapped.ciphertext).toString('base64url'),
      });
      // The token was asked for the resource and tenant that Key Vault's challenge named.
      expect(credential.requests).toContainEqual({
        scopes: ['https://vault.azure.net/.default'],
        tenantId: TENANT,
      });
    } finally {
      await provider.close();
    }
  });

  it('never sends the bearer token to a URL read from a wrapped key: another vault is refused locally', async () => {
    const provider = await loadCloudKmsProvider('azure-keyvault', settings(server.origin), hooks());
    try {
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      const seen = server.requests.length;
      for (const kekRef of [
        `https://attacker.example/keys/${KEY_NAME}/0123456789abcdef0123456789abcdef`,
        `${server.origin}/keys/other-key/0123456789abcdef0123456789abcdef`,
        `${server.origin}/keys/${KEY_NAME}`,
      ]) {
        const error = await provider.unwrap({ ...wrapped, kekRef }, CONTEXT, call()).catch((e: unknown) => e);
        expect((error as KmsError).code).toBe('kms_invalid_ciphertext');
      }
      expect(server.requests.length).toBe(seen);
    } finally {
      await provider.close();
    }
  });

  it('a deleted key (404) is kms_key_not_found', async () => {
    const provider = await loadCloudKmsProvider('azure-keyvault', settings(server.origin), hooks());
    try {
      server.fault = {
        status: 404,
        body: { error: { code: 'KeyNotFound', message: 'A key with (name/id) was not found' } },
      };
      const error = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect((error as KmsError).code).toBe('kms_key_not_found');
    } finally {
      server.fault = null;
      await provider.close();
    }
  });

  it('settings: a key URL that is not https://…/keys/NAME[/VERSION] is kms_misconfigured', async () => {
    for (const keyId of ['http://vault.example/keys/k', 'https://vault.example/secrets/k', 'not a url']) {
      const error = await loadCloudKmsProvider(
        'azure-keyvault',
        { ...settings(server.origin), azureKeyVault: { keyId } },
        hooks(),
      ).catch((e: unknown) => e);
      expect((error as KmsError).code).toBe('kms_misconfigured');
      expect((error as KmsError).message).toContain('ENCRYPTION_AZURE_KEY_ID must be a key URL');
    }
  });

  it('a missing @azure/keyvault-keys fails start-up with kms_sdk_missing naming it', async () => {
    const error = await loadCloudKmsProvider('azure-keyvault', settings(server.origin), {
      loadModule: async (name) => {
        throw Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' });
      },
    }).catch((e: unknown) => e);
    expect((error as KmsError).code).toBe('kms_sdk_missing');
    expect((error as KmsError).message).toContain('pnpm add @azure/keyvault-keys');
  });
});
