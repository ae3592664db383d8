import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsSettings, type CloudKmsTestHooks, KmsError, loadCloudKmsProvider } from '../src/index';
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
 * gcp-kms against a Cloud KMS REST protocol stand-in: `POST /v1/{cryptoKey}:encrypt|decrypt` with a bearer
 * token, `additionalAuthenticatedData` bound as AAD (another context fails to decrypt), errors as
 * `{"error": {code, status, message}}`. The ciphertext names its key version, as Cloud KMS's does.
 */

const KEY = 'projects/signal-test/locations/europe-west1/keyRings/signal/cryptoKeys/dek-kek';
const TOKEN = 'ya29.standin-access-token-0123456789';

interface GcpStandIn {
  readonly protocol: Protocol;
  rotate(): void;
}

function gcpStandIn(): GcpStandIn {
  const versions: Buffer[] = [randomBytes(32)];
  const error = (code: number, status: string, message: string): Reply => ({
    status: code,
    body: { error: { code, status, message } },
  });
  return {
    rotate: () => void versions.push(randomBytes(32)),
    protocol(request: RecordedRequest): Reply {
      if (request.headers.authorization !== `Bearer ${TOKEN}`) {
        return error(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
      }
      const match = /^\/v1\/(.+):(encrypt|decrypt)$/.exec(request.url);
      if (request.method !== 'POST' || match === null) return error(404, 'NOT_FOUND', 'not found');
      if (match[1] !== KEY) return error(404, 'NOT_FOUND', `${match[1]} not found.`);
      const body = (request.json ?? {}) as {
        plaintext?: string;
        ciphertext?: string;
        additionalAuthenticatedData?: string;
      };
      const aad = Buffer.from(body.additionalAuthenticatedData ?? '', 'base64');
      if (match[2] === 'encrypt') {
        const version = versions.length;
        const sealed = seal(
          versions[version - 1] ?? Buffer.alloc(32),
          Buffer.from(body.plaintext ?? '', 'base64'),
          aad,
        );
        return {
          status: 200,
          body: {
            name: `${KEY}/cryptoKeyVersions/${version}`,
            ciphertext: Buffer.concat([Buffer.from([version]), sealed]).toString('base64'),
            protectionLevel: 'HSM',
          },
        };
      }
      const blob = Buffer.from(body.ciphertext ?? '', 'base64');
      const secret = versions[(blob[0] ?? 0) - 1];
      const plaintext = secret === undefined ? null : open(secret, blob.subarray(1), aad);
      if (plaintext === null) {
        return error(
          400,
          'INVALID_ARGUMENT',
          "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
        );
      }
      return {
        status: 200,
        body: { plaintext: plaintext.toString('base64'), usedPrimary: blob[0] === versions.length },
      };
    },
  };
}

const SETTINGS: CloudKmsSettings = { ...NO_CLOUD_SETTINGS, gcpKms: { keyResourceName: KEY } };

let tls: TestTls;
let standIn: GcpStandIn;
let server: StandInServer;

function hooks(overrides: { origin?: string; caPem?: string } = {}): CloudKmsTestHooks {
  return {
    endpoint: overrides.origin ?? server.origin,
    caPem: overrides.caPem ?? tls.ca.certPem,
    gcpAccessToken: async () => TOKEN,
  };
}

beforeAll(async () => {
  tls = await createTestTls();
  standIn = gcpStandIn();
  server = await tls.serve(standIn.protocol);
});
afterAll(async () => {
  await tls.cleanup();
});

describeProtocolCases('gcp-kms against a Cloud KMS REST protocol stand-in', async () => ({
  tls,
  server,
  bindsContext: true,
  kekRefNamesVersion: true,
  rotate: () => standIn.rotate(),
  denied: {
    status: 403,
    body: {
      error: {
        code: 403,
        status: 'PERMISSION_DENIED',
        message: "Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied",
      },
    },
  },
  unavailable: {
    status: 503,
    body: { error: { code: 503, status: 'UNAVAILABLE', message: 'The service is currently unavailable.' } },
  },
  secrets: [TOKEN],
  connect: (overrides = {}) => loadCloudKmsProvider('gcp-kms', SETTINGS, hooks(overrides)),
}));

describe('gcp-kms against a Cloud KMS REST protocol stand-in: the exact requests', () => {
  const call = () => ({ signal: AbortSignal.timeout(10_000) });
  const dek = randomBytes(32);
  const aad = sortedJson(CONTEXT).toString('base64');

  it('encrypt and decrypt go to the key with a bearer token and the canonical context as AAD', async () => {
    const provider = await loadCloudKmsProvider('gcp-kms', SETTINGS, hooks());
    try {
      server.requests.length = 0;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      await provider.unwrap(wrapped, CONTEXT, call());
      await provider.rewrap(wrapped, CONTEXT, call());
      expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
        `POST /v1/${KEY}:encrypt`,
        `POST /v1/${KEY}:decrypt`,
        // Cloud KMS has no re-encrypt: rewrap is decrypt + encrypt.
        `POST /v1/${KEY}:decrypt`,
        `POST /v1/${KEY}:encrypt`,
      ]);
      for (const request of server.requests) {
        expect(request.headers.authorization).toBe(`Bearer ${TOKEN}`);
        expect(request.headers['content-type']).toBe('application/json');
      }
      expect(server.requests[0]?.json).toEqual({
        plaintext: dek.toString('base64'),
        additionalAuthenticatedData: aad,
      });
      expect(server.requests[1]?.json).toEqual({
        ciphertext: Buffer.from(wrapped.ciphertext).toString('base64'),
        additionalAuthenticatedData: aad,
      });
      expect(wrapped.kekRef).toMatch(new RegExp(`^${KEY}/cryptoKeyVersions/\\d+$`));
    } finally {
      await provider.close();
    }
  });

  it('a disabled key version (FAILED_PRECONDITION) is kms_denied; a missing key is kms_key_not_found', async () => {
    const provider = await loadCloudKmsProvider('gcp-kms', SETTINGS, hooks());
    try {
      server.fault = {
        status: 400,
        body: {
          error: { code: 400, status: 'FAILED_PRECONDITION', message: 'CryptoKeyVersion is not enabled.' },
        },
      };
      const disabled = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect((disabled as KmsError).code).toBe('kms_denied');
      server.fault = {
        status: 404,
        body: { error: { code: 404, status: 'NOT_FOUND', message: 'not found' } },
      };
      const missing = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect((missing as KmsError).code).toBe('kms_key_not_found');
    } finally {
      server.fault = null;
      await provider.close();
    }
  });

  it('no credentials from ADC is kms_denied, and nothing is sent', async () => {
    const provider = await loadCloudKmsProvider('gcp-kms', SETTINGS, {
      ...hooks(),
      gcpAccessToken: async () => {
        throw new Error('Could not load the default credentials.');
      },
    });
    try {
      const seen = server.requests.length;
      const error = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect((error as KmsError).code).toBe('kms_denied');
      expect((error as KmsError).message).toContain('Could not load the default credentials');
      expect(server.requests.length).toBe(seen);
    } finally {
      await provider.close();
    }
  });

  it('refuses a wrapped key made by another key, without calling Cloud KMS', async () => {
    const provider = await loadCloudKmsProvider('gcp-kms', SETTINGS, hooks());
    try {
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      const seen = server.requests.length;
      const other = `${KEY.replace('dek-kek', 'other')}/cryptoKeyVersions/1`;
      const error = await provider
        .unwrap({ ...wrapped, kekRef: other }, CONTEXT, call())
        .catch((e: unknown) => e);
      expect((error as KmsError).code).toBe('kms_invalid_ciphertext');
      expect(server.requests.length).toBe(seen);
    } finally {
      await provider.close();
    }
  });

  it('settings: a key version instead of a key, a malformed name, a missing name are kms_misconfigured', async () => {
    const failure = (keyResourceName: string | null) =>
      loadCloudKmsProvider('gcp-kms', { ...SETTINGS, gcpKms: { keyResourceName } }, hooks()).then(
        () => null,
        (e: unknown) => (e instanceof KmsError ? `${e.code}: ${e.message}` : String(e)),
      );
    expect(await failure(`${KEY}/cryptoKeyVersions/3`)).toBe(
      'kms_misconfigured: gcp-kms: ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME must name the key, not a key version (projects/…/cryptoKeys/NAME)',
    );
    expect(await failure('projects/../locations/x/keyRings/y/cryptoKeys/z')).toMatch(/^kms_misconfigured: /);
    expect(await failure(null)).toBe(
      'kms_misconfigured: gcp-kms: ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME must be set when ENCRYPTION_PROVIDER=gcp-kms',
    );
  });

  it('a missing google-auth-library fails start-up with kms_sdk_missing naming it', async () => {
    const error = await loadCloudKmsProvider('gcp-kms', SETTINGS, {
      loadModule: async (name) => {
        throw Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' });
      },
    }).catch((e: unknown) => e);
    expect((error as KmsError).code).toBe('kms_sdk_missing');
    expect((error as KmsError).message).toContain('pnpm add google-auth-library');
  });
});
