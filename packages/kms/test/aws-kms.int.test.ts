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
 * aws-kms against an AWS KMS JSON 1.1 protocol stand-in: `POST /` with `X-Amz-Target: TrentService.Encrypt |
 * Decrypt | ReEncrypt`, SigV4-signed, `EncryptionContext` bound as AAD (a different context fails to decrypt),
 * errors as `{"__type": "...Exception"}`. Rotation is inside the blob, as in KMS: the key ARN stays the same.
 */

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ALIAS = 'alias/signal-kek';
const CREDENTIALS = {
  accessKeyId: 'AKIASTANDIN000000001',
  secretAccessKey: 'standin/secret/access/key/0123456789',
};

interface AwsStandIn {
  readonly protocol: Protocol;
  rotate(): void;
}

function awsStandIn(): AwsStandIn {
  const versions: Buffer[] = [randomBytes(32)];
  const error = (status: number, type: string, message: string): Reply => ({
    status,
    headers: { 'x-amzn-errortype': type, 'content-type': 'application/x-amz-json-1.1' },
    body: { __type: type, message },
  });
  const ok = (body: unknown): Reply => ({
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1' },
    body,
  });
  const resolve = (keyId: unknown) =>
    keyId === ARN || keyId === ALIAS || keyId === ARN.split('/')[1] ? ARN : null;
  // Blob: version byte ‖ sealed DEK, the encryption context as AAD.
  const encrypt = (plaintext: Buffer, context: Record<string, string>) =>
    Buffer.concat([
      Buffer.from([versions.length]),
      seal(versions[versions.length - 1] ?? Buffer.alloc(32), plaintext, sortedJson(context)),
    ]);
  const decrypt = (blob: Buffer, context: Record<string, string>) => {
    const version = versions[(blob[0] ?? 0) - 1];
    return version === undefined ? null : open(version, blob.subarray(1), sortedJson(context));
  };
  return {
    rotate: () => void versions.push(randomBytes(32)),
    protocol(request: RecordedRequest): Reply {
      if (request.method !== 'POST' || request.url !== '/')
        return error(404, 'UnknownOperationException', 'not found');
      const body = (request.json ?? {}) as Record<string, unknown>;
      const context = (name: string) => (body[name] ?? {}) as Record<string, string>;
      const blob = () => Buffer.from(String(body.CiphertextBlob ?? ''), 'base64');
      switch (request.headers['x-amz-target']) {
        case 'TrentService.Encrypt': {
          if (resolve(body.KeyId) === null)
            return error(400, 'NotFoundException', `Key '${String(body.KeyId)}' does not exist`);
          const sealed = encrypt(Buffer.from(String(body.Plaintext), 'base64'), context('EncryptionContext'));
          return ok({
            CiphertextBlob: sealed.toString('base64'),
            KeyId: ARN,
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          });
        }
        case 'TrentService.Decrypt': {
          if (body.KeyId !== undefined && resolve(body.KeyId) !== ARN) {
            return error(
              400,
              'IncorrectKeyException',
              'The key ID in the request does not identify the key used to encrypt',
            );
          }
          const plaintext = decrypt(blob(), context('EncryptionContext'));
          if (plaintext === null) return error(400, 'InvalidCiphertextException', '');
          return ok({
            Plaintext: plaintext.toString('base64'),
            KeyId: ARN,
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          });
        }
        case 'TrentService.ReEncrypt': {
          const plaintext = decrypt(blob(), context('SourceEncryptionContext'));
          if (plaintext === null) return error(400, 'InvalidCiphertextException', '');
          if (resolve(body.DestinationKeyId) === null)
            return error(400, 'NotFoundException', 'no destination key');
          const sealed = encrypt(plaintext, context('DestinationEncryptionContext'));
          return ok({ CiphertextBlob: sealed.toString('base64'), KeyId: ARN, SourceKeyId: ARN });
        }
        default:
          return error(400, 'UnknownOperationException', 'unknown target');
      }
    },
  };
}

const SETTINGS: CloudKmsSettings = { ...NO_CLOUD_SETTINGS, awsKms: { keyId: ARN, region: null } };

let tls: TestTls;
let standIn: AwsStandIn;
let server: StandInServer;

function hooks(overrides: { origin?: string; caPem?: string } = {}): CloudKmsTestHooks {
  return {
    endpoint: overrides.origin ?? server.origin,
    caPem: overrides.caPem ?? tls.ca.certPem,
    awsCredentials: CREDENTIALS,
  };
}

beforeAll(async () => {
  tls = await createTestTls();
  standIn = awsStandIn();
  server = await tls.serve(standIn.protocol);
});
afterAll(async () => {
  await tls.cleanup();
});

describeProtocolCases('aws-kms against a KMS JSON 1.1 protocol stand-in', async () => ({
  tls,
  server,
  bindsContext: true,
  kekRefNamesVersion: false,
  rotate: () => standIn.rotate(),
  denied: {
    status: 400,
    headers: { 'x-amzn-errortype': 'AccessDeniedException' },
    body: { __type: 'AccessDeniedException', message: 'User is not authorized to perform: kms:Encrypt' },
  },
  unavailable: { status: 500, body: { __type: 'KMSInternalException', message: 'internal error' } },
  secrets: [CREDENTIALS.secretAccessKey],
  connect: (overrides = {}) => loadCloudKmsProvider('aws-kms', SETTINGS, hooks(overrides)),
}));

describe('aws-kms against a KMS JSON 1.1 protocol stand-in: the exact requests', () => {
  const call = () => ({ signal: AbortSignal.timeout(10_000) });
  const dek = randomBytes(32);

  it('Encrypt, Decrypt and ReEncrypt name the key and carry the wrap context as EncryptionContext', async () => {
    const provider = await loadCloudKmsProvider('aws-kms', SETTINGS, hooks());
    try {
      server.requests.length = 0;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      await provider.unwrap(wrapped, CONTEXT, call());
      await provider.rewrap(wrapped, CONTEXT, call());
      expect(server.requests.map((r) => `${r.method} ${r.url} ${String(r.headers['x-amz-target'])}`)).toEqual(
        ['POST / TrentService.Encrypt', 'POST / TrentService.Decrypt', 'POST / TrentService.ReEncrypt'],
      );
      for (const request of server.requests) {
        expect(request.headers['content-type']).toBe('application/x-amz-json-1.1');
        expect(request.headers.authorization).toMatch(
          new RegExp(
            `^AWS4-HMAC-SHA256 Credential=${CREDENTIALS.accessKeyId}/\\d{8}/us-east-1/kms/aws4_request, `,
          ),
        );
      }
      const blob = Buffer.from(wrapped.ciphertext).toString('base64');
      expect(server.requests.map((r) => r.json)).toEqual([
        { KeyId: ARN, Plaintext: dek.toString('base64'), EncryptionContext: CONTEXT },
        { KeyId: ARN, CiphertextBlob: blob, EncryptionContext: CONTEXT },
        {
          CiphertextBlob: blob,
          SourceKeyId: ARN,
          SourceEncryptionContext: CONTEXT,
          DestinationKeyId: ARN,
          DestinationEncryptionContext: CONTEXT,
        },
      ]);
      expect(wrapped.kekRef).toBe(ARN);
    } finally {
      await provider.close();
    }
  });

  it('an alias is resolved by KMS: the stored KEK reference is the key ARN, and Decrypt names it', async () => {
    const provider = await loadCloudKmsProvider(
      'aws-kms',
      { ...SETTINGS, awsKms: { keyId: ALIAS, region: 'us-east-1' } },
      hooks(),
    );
    try {
      server.requests.length = 0;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      expect(wrapped.kekRef).toBe(ARN);
      await provider.unwrap(wrapped, CONTEXT, call());
      expect(server.requests[0]?.json).toMatchObject({ KeyId: ALIAS });
      expect(server.requests[1]?.json).toMatchObject({ KeyId: ARN });
    } finally {
      await provider.close();
    }
  });

  it('a plain HTTP 403 from the front door is kms_denied; a missing key is kms_key_not_found', async () => {
    const provider = await loadCloudKmsProvider('aws-kms', SETTINGS, hooks());
    try {
      server.fault = { status: 403, body: { message: 'Missing Authentication Token' } };
      const denied = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect((denied as KmsError).code).toBe('kms_denied');
      server.fault = { status: 400, body: { __type: 'NotFoundException', message: 'Key does not exist' } };
      const missing = await provider.wrap(dek, CONTEXT, call()).catch((e: unknown) => e);
      expect((missing as KmsError).code).toBe('kms_key_not_found');
    } finally {
      server.fault = null;
      await provider.close();
    }
  });

  it('a missing SDK fails start-up with kms_sdk_missing naming the package to install', async () => {
    const error = await loadCloudKmsProvider('aws-kms', SETTINGS, {
      loadModule: async (name) => {
        throw Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' });
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KmsError);
    expect((error as KmsError).code).toBe('kms_sdk_missing');
    expect((error as KmsError).message).toContain('pnpm add @aws-sdk/client-kms');
  });

  it('a missing key id fails with kms_misconfigured naming the variable', async () => {
    const error = await loadCloudKmsProvider('aws-kms', {
      ...SETTINGS,
      awsKms: { keyId: null, region: null },
    }).catch((e: unknown) => e);
    expect((error as KmsError).code).toBe('kms_misconfigured');
    expect((error as KmsError).message).toBe(
      'aws-kms: ENCRYPTION_AWS_KMS_KEY_ID must be set when ENCRYPTION_PROVIDER=aws-kms',
    );
  });
});
