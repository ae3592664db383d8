import { readFile } from 'node:fs/promises';
import type { TokenCredential } from '@azure/core-auth';
import { createVendorDispatcher } from '@signal/http';
import { KmsError, type KmsProvider, type KmsProviderName } from '../provider';
import { type AwsKmsModule, createAwsKmsProvider } from './aws-kms';
import { type AzureKeysModule, createAzureKeyVaultProvider } from './azure-keyvault';
import { createGcpKmsProvider, parseGcpKeyName } from './gcp-kms';
import { createVaultTransitProvider, type VaultLogin } from './hashicorp-vault';

/**
 * Builds the configured cloud KMS adapter. Each SDK is `import()`ed here, only for the selected provider,
 * so a deployment installs only the SDK it uses (the optional dependencies of @signal/kms) and the local
 * provider needs none. A missing SDK fails with `kms_sdk_missing` naming the package; missing settings with
 * `kms_misconfigured` naming the variable.
 */

export type CloudKmsProviderName = Exclude<KmsProviderName, 'local'>;

/** A secret as `@signal/config` holds it (prints as `[redacted]`). */
export interface SecretValue {
  reveal(): string;
}

/** The slice of `SignalConfig['encryption']` the cloud adapters read: pass `config.encryption` as it is. */
export interface CloudKmsSettings {
  readonly awsKms: { readonly keyId: string | null; readonly region: string | null };
  readonly gcpKms: { readonly keyResourceName: string | null };
  readonly azureKeyVault: { readonly keyId: string | null };
  readonly vault: {
    readonly address: SecretValue | null;
    readonly token: SecretValue | null;
    readonly roleId: string | null;
    readonly secretId: SecretValue | null;
    readonly namespace: string | null;
    readonly caCertPath: string | null;
    readonly mount: string;
    readonly key: string | null;
  };
}

/**
 * FOR TESTS ONLY: how the protocol tests point an adapter at a stand-in on 127.0.0.1 and trust its test CA,
 * and replace the credential sources that would otherwise look for real cloud credentials. The Vault adapter
 * needs none of this: VAULT_ADDR and VAULT_CACERT already do it.
 */
export interface CloudKmsTestHooks {
  /** Loads an SDK; the default is `load()` (a real `import()`). */
  readonly loadModule?: <T>(packageName: string, load: () => Promise<T>) => Promise<T>;
  /** AWS and GCP: the API root of the stand-in. Azure's endpoint is the key URL itself. */
  readonly endpoint?: string;
  /** AWS and Azure: trust only this CA; GCP: trust it in addition to the public roots. */
  readonly caPem?: string;
  readonly awsCredentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly gcpAccessToken?: () => Promise<string>;
  readonly azureCredential?: TokenCredential;
  /** Vault: the clock that decides when a token is renewed or AppRole logs in again. */
  readonly now?: () => number;
}

const SDK_PACKAGES = {
  'aws-kms': '@aws-sdk/client-kms',
  'gcp-kms': 'google-auth-library',
  'azure-keyvault': '@azure/keyvault-keys',
} as const;

const GCP_KMS_SCOPE = 'https://www.googleapis.com/auth/cloudkms';

export async function loadCloudKmsProvider(
  name: CloudKmsProviderName,
  settings: CloudKmsSettings,
  hooks: CloudKmsTestHooks = {},
): Promise<KmsProvider> {
  const loadModule = hooks.loadModule ?? (<T>(_packageName: string, load: () => Promise<T>) => load());
  const sdk = <T>(packageName: string, load: () => Promise<T>) =>
    importSdk(name, packageName, () => loadModule(packageName, load));

  switch (name) {
    case 'aws-kms': {
      const keyId = required(name, 'ENCRYPTION_AWS_KMS_KEY_ID', settings.awsKms.keyId);
      const module: AwsKmsModule = await sdk(SDK_PACKAGES[name], () => import('@aws-sdk/client-kms'));
      return createAwsKmsProvider(module, {
        keyId,
        region: settings.awsKms.region,
        ...(hooks.endpoint === undefined ? {} : { endpoint: hooks.endpoint }),
        ...(hooks.caPem === undefined ? {} : { caPem: hooks.caPem }),
        ...(hooks.awsCredentials === undefined ? {} : { credentials: hooks.awsCredentials }),
      });
    }
    case 'gcp-kms': {
      const keyName = parseGcpKeyName(
        required(name, 'ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME', settings.gcpKms.keyResourceName),
      );
      let accessToken = hooks.gcpAccessToken;
      if (accessToken === undefined) {
        const { GoogleAuth } = await sdk(SDK_PACKAGES[name], () => import('google-auth-library'));
        const auth = new GoogleAuth({ scopes: [GCP_KMS_SCOPE] });
        accessToken = async () => {
          const token = await auth.getAccessToken();
          if (!token)
            throw new KmsError(name, 'kms_denied', 'Application Default Credentials gave no access token');
          return token;
        };
      }
      return createGcpKmsProvider({
        keyName,
        accessToken,
        dispatcher: createVendorDispatcher(hooks.caPem === undefined ? {} : { extraCaPem: hooks.caPem }),
        ...(hooks.endpoint === undefined ? {} : { endpoint: hooks.endpoint }),
      });
    }
    case 'azure-keyvault': {
      const keyId = required(name, 'ENCRYPTION_AZURE_KEY_ID', settings.azureKeyVault.keyId);
      const module: AzureKeysModule = await sdk(SDK_PACKAGES[name], () => import('@azure/keyvault-keys'));
      let credential = hooks.azureCredential;
      if (credential === undefined) {
        const identity = await sdk('@azure/identity', () => import('@azure/identity'));
        credential = new identity.DefaultAzureCredential();
      }
      return createAzureKeyVaultProvider(module, {
        keyId,
        credential,
        ...(hooks.caPem === undefined ? {} : { caPem: hooks.caPem }),
        // The stand-in's bearer challenge names a resource that is not a Key Vault domain.
        ...(hooks.azureCredential === undefined ? {} : { disableChallengeResourceVerification: true }),
      });
    }
    case 'hashicorp-vault': {
      const options = await vaultOptions(settings.vault);
      try {
        return createVaultTransitProvider({
          ...options,
          ...(hooks.now === undefined ? {} : { now: hooks.now }),
        });
      } catch (error) {
        await options.dispatcher.close();
        throw error;
      }
    }
  }
}

async function vaultOptions(vault: CloudKmsSettings['vault']) {
  const name = 'hashicorp-vault';
  const address = new URL(required(name, 'VAULT_ADDR', vault.address?.reveal() ?? null));
  const key = required(name, 'ENCRYPTION_VAULT_KEY', vault.key);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(address.hostname);
  if (address.protocol !== 'https:' && !(address.protocol === 'http:' && loopback)) {
    throw new KmsError(
      name,
      'kms_misconfigured',
      'VAULT_ADDR must start with https:// (http:// only on loopback)',
    );
  }
  let login: VaultLogin;
  if (vault.token !== null) {
    login = { kind: 'token', token: vault.token.reveal() };
  } else if (vault.roleId !== null && vault.secretId !== null) {
    login = { kind: 'approle', roleId: vault.roleId, secretId: vault.secretId.reveal() };
  } else if (loopback) {
    login = { kind: 'agent' };
  } else {
    throw new KmsError(
      name,
      'kms_misconfigured',
      'VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID) must be set when ENCRYPTION_PROVIDER=hashicorp-vault',
    );
  }
  let caPem: string | undefined;
  if (vault.caCertPath !== null) {
    try {
      caPem = await readFile(vault.caCertPath, 'utf8');
    } catch (error) {
      const code = error instanceof Error && 'code' in error ? String(error.code) : 'unreadable';
      throw new KmsError(name, 'kms_misconfigured', `VAULT_CACERT must name a readable PEM file (${code})`);
    }
  }
  let dispatcher: ReturnType<typeof createVendorDispatcher>;
  try {
    dispatcher = createVendorDispatcher(caPem === undefined ? {} : { extraCaPem: caPem });
  } catch {
    throw new KmsError(name, 'kms_misconfigured', 'VAULT_CACERT must hold PEM CA certificates');
  }
  return { address, login, namespace: vault.namespace, mount: vault.mount, key, dispatcher };
}

function required(provider: CloudKmsProviderName, variable: string, value: string | null): string {
  if (value === null || value.trim() === '') {
    throw new KmsError(
      provider,
      'kms_misconfigured',
      `${variable} must be set when ENCRYPTION_PROVIDER=${provider}`,
    );
  }
  return value;
}

async function importSdk<T>(
  provider: CloudKmsProviderName,
  packageName: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? error.code : undefined;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    throw new KmsError(
      provider,
      'kms_sdk_missing',
      missing
        ? `ENCRYPTION_PROVIDER=${provider} needs the optional package ${packageName}: install it (pnpm add ${packageName}) or use an image that includes it`
        : `the optional package ${packageName} could not be loaded: reinstall it`,
      { cause: error },
    );
  }
}
