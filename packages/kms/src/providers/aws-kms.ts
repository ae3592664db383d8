import { Agent as HttpsAgent } from 'node:https';
import type * as AwsKms from '@aws-sdk/client-kms';
import {
  type KmsCallOptions,
  KmsError,
  type KmsErrorCode,
  type KmsProvider,
  type WrapContext,
  type WrappedKey,
} from '../provider';
import { checkWrapContext } from '../wrap-context';
import { safeDetail, takeKey, transportFailure } from './provider-errors';

/**
 * `aws-kms`: AWS KMS through @aws-sdk/client-kms (Encrypt / Decrypt / ReEncrypt). The wrap context is the
 * `EncryptionContext`, which KMS binds as associated data and writes to CloudTrail, so a DEK unwraps only with
 * the context it was wrapped with. Decrypt names the KEK that wrapped the DEK (`KeyId`), so a ciphertext made
 * under another key is refused instead of silently decrypted with it. Credentials come from the AWS default
 * chain (env, shared config, web identity, ECS/EC2 roles).
 */

export type AwsKmsModule = Pick<
  typeof AwsKms,
  'KMSClient' | 'EncryptCommand' | 'DecryptCommand' | 'ReEncryptCommand'
>;

export interface AwsKmsOptions {
  /** `ENCRYPTION_AWS_KMS_KEY_ID`: key id, ARN, alias name or alias ARN. */
  readonly keyId: string;
  /** `ENCRYPTION_AWS_KMS_REGION`; else the region in the key ARN; else the SDK's default chain. */
  readonly region: string | null;
  /** FOR TESTS (or a VPC endpoint): the KMS endpoint URL. */
  readonly endpoint?: string;
  /** FOR TESTS: trust only this CA for the endpoint. */
  readonly caPem?: string;
  /** FOR TESTS: static credentials instead of the default chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

const PROVIDER = 'aws-kms';
const ARN_REGION = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:/;

/** KMS exception names (`__type` on the wire) and what they mean for the caller. */
const ERROR_CODES: Readonly<Record<string, KmsErrorCode>> = {
  AccessDeniedException: 'kms_denied',
  DisabledException: 'kms_denied',
  KMSInvalidStateException: 'kms_denied',
  UnrecognizedClientException: 'kms_denied',
  InvalidSignatureException: 'kms_denied',
  ExpiredTokenException: 'kms_denied',
  IncompleteSignature: 'kms_denied',
  NotFoundException: 'kms_key_not_found',
  InvalidCiphertextException: 'kms_invalid_ciphertext',
  IncorrectKeyException: 'kms_invalid_ciphertext',
  InvalidKeyUsageException: 'kms_misconfigured',
  KeyUnavailableException: 'kms_unavailable',
  DependencyTimeoutException: 'kms_unavailable',
  KMSInternalException: 'kms_unavailable',
  ThrottlingException: 'kms_unavailable',
  LimitExceededException: 'kms_unavailable',
  ServiceUnavailableException: 'kms_unavailable',
  InternalFailure: 'kms_unavailable',
  CredentialsProviderError: 'kms_misconfigured',
};

export function createAwsKmsProvider(sdk: AwsKmsModule, options: AwsKmsOptions): KmsProvider {
  const region = options.region ?? ARN_REGION.exec(options.keyId)?.[1];
  const client = new sdk.KMSClient({
    ...(region === undefined ? {} : { region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    ...(options.caPem === undefined
      ? {}
      : { requestHandler: { httpsAgent: new HttpsAgent({ ca: options.caPem, keepAlive: true }) } }),
    // One quick retry for a dropped connection or throttling; the caller's deadline and the DEK cache's
    // stale-on-error cover longer outages.
    maxAttempts: 2,
  });

  async function send<T>(operation: string, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw mapError(operation, error, signal);
    }
  }

  function wrapped(operation: string, blob: Uint8Array | undefined, keyId: string | undefined): WrappedKey {
    if (blob === undefined || keyId === undefined) {
      throw new KmsError(PROVIDER, 'kms_bad_response', `${operation} returned no CiphertextBlob or KeyId`);
    }
    return { ciphertext: Uint8Array.from(blob), kekRef: keyId };
  }

  return {
    name: PROVIDER,
    kekId: options.keyId,

    async wrap(dek: Uint8Array, context: WrapContext, { signal }: KmsCallOptions): Promise<WrappedKey> {
      checkWrapContext(PROVIDER, context);
      const command = new sdk.EncryptCommand({
        KeyId: options.keyId,
        Plaintext: dek,
        EncryptionContext: { ...context },
      });
      const out = await send('Encrypt', signal, () => client.send(command, { abortSignal: signal }));
      return wrapped('Encrypt', out.CiphertextBlob, out.KeyId);
    },

    async unwrap(key: WrappedKey, context: WrapContext, { signal }: KmsCallOptions): Promise<Uint8Array> {
      checkWrapContext(PROVIDER, context);
      const command = new sdk.DecryptCommand({
        KeyId: key.kekRef,
        CiphertextBlob: key.ciphertext,
        EncryptionContext: { ...context },
      });
      const out = await send('Decrypt', signal, () => client.send(command, { abortSignal: signal }));
      return takeKey(PROVIDER, out.Plaintext);
    },

    async rewrap(key: WrappedKey, context: WrapContext, { signal }: KmsCallOptions): Promise<WrappedKey> {
      checkWrapContext(PROVIDER, context);
      // ReEncrypt decrypts and encrypts inside KMS: the DEK never reaches this process.
      const command = new sdk.ReEncryptCommand({
        CiphertextBlob: key.ciphertext,
        SourceKeyId: key.kekRef,
        SourceEncryptionContext: { ...context },
        DestinationKeyId: options.keyId,
        DestinationEncryptionContext: { ...context },
      });
      const out = await send('ReEncrypt', signal, () => client.send(command, { abortSignal: signal }));
      return wrapped('ReEncrypt', out.CiphertextBlob, out.KeyId);
    },

    async close(): Promise<void> {
      client.destroy();
    },
  };
}

function mapError(operation: string, error: unknown, signal: AbortSignal): KmsError {
  if (signal.aborted) return transportFailure(PROVIDER, operation, error, signal);
  if (!(error instanceof Error)) return transportFailure(PROVIDER, operation, error, signal);
  const status = httpStatus(error);
  const code =
    ERROR_CODES[error.name] ??
    (status === 401 || status === 403
      ? 'kms_denied'
      : status === 404
        ? 'kms_key_not_found'
        : status !== undefined && (status === 429 || status >= 500)
          ? 'kms_unavailable'
          : undefined);
  if (code === undefined) {
    // No HTTP status: the request never got an answer (refused, reset, TLS), or the SDK could not find a
    // region or credentials.
    if (status === undefined && /region is missing/i.test(error.message)) {
      return new KmsError(
        PROVIDER,
        'kms_misconfigured',
        'no AWS region: set ENCRYPTION_AWS_KMS_REGION, use a key ARN, or set AWS_REGION',
        { cause: error },
      );
    }
    if (status === undefined) return transportFailure(PROVIDER, operation, error, signal);
    return new KmsError(
      PROVIDER,
      'kms_bad_response',
      `${operation} failed with HTTP ${status} (${error.name})`,
      {
        cause: error,
      },
    );
  }
  return new KmsError(PROVIDER, code, `${operation} failed: ${error.name}: ${safeDetail(error.message)}`, {
    cause: error,
  });
}

function httpStatus(error: Error): number | undefined {
  const metadata: unknown = Reflect.get(error, '$metadata');
  if (metadata === null || typeof metadata !== 'object') return undefined;
  const status: unknown = Reflect.get(metadata, 'httpStatusCode');
  return typeof status === 'number' ? status : undefined;
}
