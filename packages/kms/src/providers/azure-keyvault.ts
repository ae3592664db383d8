import type { TokenCredential } from '@azure/core-auth';
import type * as AzureKeys from '@azure/keyvault-keys';
import {
  type KmsCallOptions,
  KmsError,
  type KmsProvider,
  type WrapContext,
  type WrappedKey,
} from '../provider';
import { checkWrapContext } from '../wrap-context';
import { safeDetail, takeKey, transportFailure } from './provider-errors';
import { unwrapThenWrap } from './unwrap-then-wrap';

/**
 * `azure-keyvault`: Azure Key Vault (or Managed HSM) wrapKey/unwrapKey with RSA-OAEP-256 through
 * @azure/keyvault-keys, credentials from DefaultAzureCredential. Key Vault binds no context to a wrapped key:
 * the wrap context is checked only by the caller's commitment `HMAC(DEK, wrap context)` on the DEK row,
 * which is why that commitment exists. The DEK is wrapped under an explicit key version (looked up on each
 * wrap when the configured URL has none) so it unwraps after the key rotates; unwrap only ever calls a
 * version of the configured key, never a URL read from the database.
 */

export type AzureKeysModule = Pick<typeof AzureKeys, 'CryptographyClient' | 'KeyClient'>;

export interface AzureKeyVaultOptions {
  /** `ENCRYPTION_AZURE_KEY_ID`: `https://{vault}.vault.azure.net/keys/{name}[/{version}]`. */
  readonly keyId: string;
  readonly credential: TokenCredential;
  /** FOR TESTS: trust only this CA. */
  readonly caPem?: string;
  /** FOR TESTS: accept a bearer challenge whose resource is not a Key Vault domain (a 127.0.0.1 stand-in). */
  readonly disableChallengeResourceVerification?: boolean;
}

const PROVIDER = 'azure-keyvault';
const ALGORITHM = 'RSA-OAEP-256';
const KEY_PATH = /^\/keys\/([A-Za-z0-9-]{1,127})(?:\/([A-Za-z0-9]{1,64}))?\/?$/;

interface AzureKeyId {
  readonly vaultUrl: string;
  readonly name: string;
  /** `{vaultUrl}/keys/{name}`: every version of the key lives below it. */
  readonly base: string;
  readonly version: string | null;
}

export function parseAzureKeyId(keyId: string, what = 'ENCRYPTION_AZURE_KEY_ID'): AzureKeyId {
  let url: URL | undefined;
  try {
    url = new URL(keyId);
  } catch {
    url = undefined;
  }
  const match = url === undefined ? null : KEY_PATH.exec(url.pathname);
  if (url === undefined || url.protocol !== 'https:' || match === null || url.search !== '') {
    throw new KmsError(
      PROVIDER,
      'kms_misconfigured',
      `${what} must be a key URL such as https://my-vault.vault.azure.net/keys/signal-kek`,
    );
  }
  const name = match[1] ?? '';
  return { vaultUrl: url.origin, name, base: `${url.origin}/keys/${name}`, version: match[2] ?? null };
}

export function createAzureKeyVaultProvider(
  sdk: AzureKeysModule,
  options: AzureKeyVaultOptions,
): KmsProvider {
  const configured = parseAzureKeyId(options.keyId);
  const clientOptions = {
    // One quick retry; the caller's deadline and the DEK cache's stale-on-error cover longer outages.
    retryOptions: { maxRetries: 1, retryDelayInMs: 200 },
    ...(options.caPem === undefined ? {} : { tlsOptions: { ca: options.caPem } }),
    ...(options.disableChallengeResourceVerification ? { disableChallengeResourceVerification: true } : {}),
  };
  const keys = new sdk.KeyClient(configured.vaultUrl, options.credential, clientOptions);
  // One client per key version: each fetches its key's properties once and checks it may wrap/unwrap.
  const clients = new Map<string, AzureKeys.CryptographyClient>();

  function clientFor(versionedKeyId: string): AzureKeys.CryptographyClient {
    let client = clients.get(versionedKeyId);
    if (client === undefined) {
      client = new sdk.CryptographyClient(versionedKeyId, options.credential, clientOptions);
      clients.set(versionedKeyId, client);
    }
    return client;
  }

  async function currentVersion(signal: AbortSignal): Promise<string> {
    if (configured.version !== null) return `${configured.base}/${configured.version}`;
    const key = await keys.getKey(configured.name, { abortSignal: signal });
    const id = key.id === undefined ? null : parseAzureKeyId(key.id, 'the key id Key Vault returned');
    if (id === null || id.base !== configured.base || id.version === null) {
      throw new KmsError(PROVIDER, 'kms_bad_response', 'getKey returned no versioned key id');
    }
    return `${id.base}/${id.version}`;
  }

  async function wrap(dek: Uint8Array, context: WrapContext, signal: AbortSignal): Promise<WrappedKey> {
    checkWrapContext(PROVIDER, context);
    try {
      const kekRef = await currentVersion(signal);
      const out = await clientFor(kekRef).wrapKey(ALGORITHM, dek, { abortSignal: signal });
      return { ciphertext: Uint8Array.from(out.result), kekRef };
    } catch (error) {
      throw mapError('wrapKey', error, signal);
    }
  }

  async function unwrap(wrapped: WrappedKey, context: WrapContext, signal: AbortSignal): Promise<Buffer> {
    checkWrapContext(PROVIDER, context);
    // The row's KEK reference picks the version; it must be a version of the configured key, so a tampered
    // row cannot make us send a bearer token to some other vault.
    const ref = (() => {
      try {
        return parseAzureKeyId(wrapped.kekRef, 'the wrapped key');
      } catch {
        return null;
      }
    })();
    if (ref === null || ref.base !== configured.base || ref.version === null) {
      throw new KmsError(
        PROVIDER,
        'kms_invalid_ciphertext',
        `the wrapped key was not made by ${configured.base} (it names ${safeDetail(wrapped.kekRef)})`,
      );
    }
    try {
      const out = await clientFor(`${ref.base}/${ref.version}`).unwrapKey(ALGORITHM, wrapped.ciphertext, {
        abortSignal: signal,
      });
      return takeKey(PROVIDER, out.result);
    } catch (error) {
      throw mapError('unwrapKey', error, signal);
    }
  }

  return {
    name: PROVIDER,
    kekId: options.keyId,
    wrap: (dek, context, { signal }: KmsCallOptions) => wrap(dek, context, signal),
    unwrap: (wrapped, context, { signal }: KmsCallOptions) => unwrap(wrapped, context, signal),
    // Key Vault has no re-wrap.
    rewrap: (wrapped: WrappedKey, context: WrapContext, { signal }: KmsCallOptions) =>
      unwrapThenWrap(unwrap(wrapped, context, signal), (dek) => wrap(dek, context, signal)),
    async close(): Promise<void> {
      clients.clear();
    },
  };
}

/**
 * Azure's RestError carries the request, whose body holds the key being wrapped: it is never kept as the
 * KmsError's cause (a logger serialising causes would write it out). Status and error code are enough.
 */
function mapError(operation: string, error: unknown, signal: AbortSignal): KmsError {
  if (error instanceof KmsError) return error;
  if (signal.aborted || !(error instanceof Error)) {
    return transportFailure(PROVIDER, operation, error, signal, false);
  }
  const status: unknown = Reflect.get(error, 'statusCode');
  const code: unknown = Reflect.get(error, 'code');
  if (typeof status !== 'number') {
    // The SDK refuses an expired, not-yet-valid or wrong-purpose key before calling the service.
    if (/can't be used|not supported with this key|not a valid/i.test(error.message)) {
      return new KmsError(PROVIDER, 'kms_denied', `${operation} refused: ${safeDetail(error.message)}`);
    }
    // A credential that cannot get a token (no managed identity, no az login) is a configuration problem.
    if (error.name === 'CredentialUnavailableError' || error.name === 'AuthenticationError') {
      return new KmsError(PROVIDER, 'kms_denied', `${operation}: no Azure token (${error.name})`);
    }
    return transportFailure(PROVIDER, operation, error, signal, false);
  }
  const detail = `${operation} answered HTTP ${status}${typeof code === 'string' ? ` ${safeDetail(code)}` : ''}`;
  if (status === 401 || status === 403) return new KmsError(PROVIDER, 'kms_denied', detail);
  if (status === 404) return new KmsError(PROVIDER, 'kms_key_not_found', detail);
  if (status === 429 || status >= 500) return new KmsError(PROVIDER, 'kms_unavailable', detail);
  // A tampered ciphertext or one wrapped by another key version answers 400 BadParameter.
  if (status === 400 && operation === 'unwrapKey') {
    return new KmsError(PROVIDER, 'kms_invalid_ciphertext', detail);
  }
  return new KmsError(PROVIDER, 'kms_bad_response', detail);
}
