import { classifyNetworkError } from '@signal/http';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import {
  type KmsCallOptions,
  KmsError,
  type KmsProvider,
  type WrapContext,
  type WrappedKey,
} from '../provider';
import { canonicalWrapContext, checkWrapContext } from '../wrap-context';
import { callJson, type JsonReply } from './https-json';
import { safeDetail, takeKey, transportFailure } from './provider-errors';
import { unwrapThenWrap } from './unwrap-then-wrap';

/**
 * `gcp-kms`: Cloud KMS symmetric keys over the REST API (`POST /v1/{name}:encrypt|decrypt`), with access tokens
 * from Application Default Credentials (google-auth-library). The canonical wrap context is the
 * `additionalAuthenticatedData`, so a DEK unwraps only with the context it was wrapped with. We speak REST on
 * our own strict-TLS undici agent rather than load @google-cloud/kms: its gRPC stack is large, its REST
 * fallback cannot take a CA or an AbortSignal, and these two calls are all we need
 * (docs/adr/0005-cloud-kms-adapters-lazy-sdks-and-own-rest.md).
 * Cloud KMS has no re-encrypt call, so rewrap is decrypt + encrypt here, the DEK zeroed in between.
 */

export interface GcpKmsOptions {
  /** `ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME`: `projects/…/locations/…/keyRings/…/cryptoKeys/…`. */
  readonly keyName: string;
  /** An OAuth access token with the cloudkms scope (ADC in production). */
  readonly accessToken: () => Promise<string>;
  readonly dispatcher: Dispatcher;
  /** FOR TESTS: the API root; default `https://cloudkms.googleapis.com`. */
  readonly endpoint?: string;
}

const PROVIDER = 'gcp-kms';
const KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;
/** `.` and `..` are refused: URL resolution would climb out of /v1. */
const SEGMENT = /^(?!\.\.?$)[A-Za-z0-9_.-]+$/;

const EncryptReply = z.object({ name: z.string().min(1), ciphertext: z.string().min(1) });
const DecryptReply = z.object({ plaintext: z.string().min(1) });
const ErrorReply = z.object({
  error: z.object({
    code: z.number().optional(),
    status: z.string().optional(),
    message: z.string().optional(),
  }),
});

export function parseGcpKeyName(name: string): string {
  const segments = name.split('/');
  if (!KEY_NAME.test(name) || !segments.every((s) => SEGMENT.test(s))) {
    throw new KmsError(
      PROVIDER,
      'kms_misconfigured',
      name.includes('/cryptoKeyVersions/')
        ? 'ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME must name the key, not a key version (projects/…/cryptoKeys/NAME)'
        : 'ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME must be projects/…/locations/…/keyRings/…/cryptoKeys/…',
    );
  }
  return name;
}

export function createGcpKmsProvider(options: GcpKmsOptions): KmsProvider {
  const keyName = parseGcpKeyName(options.keyName);
  const root = new URL(options.endpoint ?? 'https://cloudkms.googleapis.com');

  async function call(operation: 'encrypt' | 'decrypt', body: Record<string, string>, signal: AbortSignal) {
    const token = await accessToken(signal);
    let reply: JsonReply;
    try {
      reply = await callJson(options.dispatcher, {
        method: 'POST',
        url: new URL(`/v1/${keyName}:${operation}`, root),
        headers: { authorization: `Bearer ${token}` },
        body,
        signal,
      });
    } catch (error) {
      throw transportFailure(PROVIDER, operation, error, signal);
    }
    if (reply.status !== 200) throw failure(operation, reply);
    return reply.body;
  }

  /**
   * An ADC token. The metadata server or token endpoint being unreachable is `kms_unavailable`; ADC finding no
   * credentials, or refusing them, is `kms_denied` (its messages name the cause, never the credential).
   */
  async function accessToken(signal: AbortSignal): Promise<string> {
    try {
      return await untilAborted(options.accessToken(), signal);
    } catch (error) {
      if (signal.aborted || error instanceof KmsError || classifyNetworkError(error).kind !== 'unknown') {
        throw transportFailure(PROVIDER, 'getting an access token', error, signal);
      }
      const detail = error instanceof Error ? safeDetail(error.message) : 'no token';
      throw new KmsError(
        PROVIDER,
        'kms_denied',
        `Application Default Credentials gave no access token: ${detail}`,
      );
    }
  }

  async function unwrap(wrapped: WrappedKey, context: WrapContext, signal: AbortSignal): Promise<Buffer> {
    checkWrapContext(PROVIDER, context);
    if (!wrapped.kekRef.startsWith(`${keyName}/cryptoKeyVersions/`)) {
      throw new KmsError(
        PROVIDER,
        'kms_invalid_ciphertext',
        `the wrapped key was not made by ${keyName} (it names ${safeDetail(wrapped.kekRef)})`,
      );
    }
    const body = {
      ciphertext: Buffer.from(wrapped.ciphertext).toString('base64'),
      additionalAuthenticatedData: canonicalWrapContext(context).toString('base64'),
    };
    const parsed = DecryptReply.safeParse(await call('decrypt', body, signal));
    if (!parsed.success) throw new KmsError(PROVIDER, 'kms_bad_response', 'decrypt returned no plaintext');
    return takeKey(PROVIDER, Buffer.from(parsed.data.plaintext, 'base64'));
  }

  async function wrap(dek: Uint8Array, context: WrapContext, signal: AbortSignal): Promise<WrappedKey> {
    checkWrapContext(PROVIDER, context);
    const body = {
      plaintext: Buffer.from(dek).toString('base64'),
      additionalAuthenticatedData: canonicalWrapContext(context).toString('base64'),
    };
    const parsed = EncryptReply.safeParse(await call('encrypt', body, signal));
    if (!parsed.success) throw new KmsError(PROVIDER, 'kms_bad_response', 'encrypt returned no ciphertext');
    // `name` is the cryptoKeyVersion that encrypted: the KEK reference with its version.
    return { ciphertext: Buffer.from(parsed.data.ciphertext, 'base64'), kekRef: parsed.data.name };
  }

  return {
    name: PROVIDER,
    kekId: keyName,
    wrap: (dek, context, { signal }: KmsCallOptions) => wrap(dek, context, signal),
    unwrap: (wrapped, context, { signal }: KmsCallOptions) => unwrap(wrapped, context, signal),
    // Cloud KMS has no re-wrap for symmetric keys.
    rewrap: (wrapped: WrappedKey, context: WrapContext, { signal }: KmsCallOptions) =>
      unwrapThenWrap(unwrap(wrapped, context, signal), (dek) => wrap(dek, context, signal)),
    async close(): Promise<void> {
      await options.dispatcher.close();
    },
  };
}

/** Token sources do not take a signal; the caller's deadline still bounds the wait. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Google APIs answer errors as `{"error": {code, status, message}}`; `status` is the canonical gRPC code. */
function failure(operation: string, reply: JsonReply): KmsError {
  const parsed = ErrorReply.safeParse(reply.body);
  const status = parsed.success ? (parsed.data.error.status ?? '') : '';
  const message = parsed.success ? safeDetail(parsed.data.error.message) : '';
  const detail = `${operation} answered HTTP ${reply.status}${status ? ` ${status}` : ''}${message ? `: ${message}` : ''}`;
  const http = reply.status;
  if (http === 401 || http === 403 || status === 'PERMISSION_DENIED' || status === 'UNAUTHENTICATED') {
    return new KmsError(PROVIDER, 'kms_denied', detail);
  }
  // A disabled or destroyed key version answers FAILED_PRECONDITION.
  if (status === 'FAILED_PRECONDITION') return new KmsError(PROVIDER, 'kms_denied', detail);
  if (http === 404 || status === 'NOT_FOUND') return new KmsError(PROVIDER, 'kms_key_not_found', detail);
  if (http === 429 || http >= 500) return new KmsError(PROVIDER, 'kms_unavailable', detail);
  // Wrong AAD, a tampered or foreign ciphertext: "Decryption failed: verify that 'name' refers to the correct CryptoKey."
  if (http === 400 && operation === 'decrypt')
    return new KmsError(PROVIDER, 'kms_invalid_ciphertext', detail);
  return new KmsError(PROVIDER, 'kms_bad_response', detail);
}
