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

/**
 * `hashicorp-vault`: HashiCorp Vault or OpenBao transit over HTTPS, without an SDK (the API is four JSON
 * calls). The transit key must be created with `derived=true`: the wrap context goes in as the key-derivation
 * `context`, so a DEK unwraps only with the context it was wrapped with, and `transit/rewrap` (which takes
 * the same context) keeps that binding through KEK rotation. Vault drops associated data on rewrap, which is
 * why derivation, not AAD, carries the binding here.
 */

export type VaultLogin =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'approle'; readonly roleId: string; readonly secretId: string }
  /** A local Vault Agent that adds its own auto-auth token. */
  | { readonly kind: 'agent' };

export interface VaultTransitOptions {
  /** `VAULT_ADDR`, e.g. `https://vault.internal:8200`. */
  readonly address: URL;
  readonly login: VaultLogin;
  /** `VAULT_NAMESPACE` (Vault Enterprise / HCP / OpenBao namespaces), sent as `X-Vault-Namespace`. */
  readonly namespace: string | null;
  /** `ENCRYPTION_VAULT_MOUNT`, default `transit`; may be nested (`kms/transit`). */
  readonly mount: string;
  /** `ENCRYPTION_VAULT_KEY`. */
  readonly key: string;
  /** The strict-TLS agent, trusting `VAULT_CACERT` when set. */
  readonly dispatcher: Dispatcher;
  /** Where AppRole logs in; default `approle`. */
  readonly approleMount?: string;
  /** FOR TESTS: the clock that decides when tokens are renewed or logged in again. */
  readonly now?: () => number;
}

const PROVIDER = 'hashicorp-vault';
/** Path segments of a mount or key name; `.` and `..` are refused (URL resolution would climb out of /v1). */
const SEGMENT = /^(?!\.\.?$)[A-Za-z0-9_.-]+$/;
/** Log in again this long before an AppRole token's lease ends. */
const RENEW_MARGIN_MS = 60_000;

const CiphertextReply = z.object({
  data: z.object({
    ciphertext: z.string().startsWith('vault:v'),
    key_version: z.number().int().positive(),
  }),
});
const PlaintextReply = z.object({ data: z.object({ plaintext: z.string() }) });
const LoginReply = z.object({
  auth: z.object({ client_token: z.string().min(1), lease_duration: z.number().int().nonnegative() }),
});
const ErrorReply = z.object({ errors: z.array(z.string()) });
const LookupReply = z.object({
  data: z.object({ ttl: z.number().int().nonnegative(), renewable: z.boolean() }),
});
const RenewReply = z.object({
  auth: z.object({ lease_duration: z.number().int().nonnegative(), renewable: z.boolean() }),
});
/** After a renewal attempt that could not reach Vault (or found it down), try again this much later. */
const RENEW_RETRY_MS = 60_000;

interface CachedToken {
  readonly token: string;
  /** Epoch ms after which AppRole logs in again; `Infinity` for a token without a lease. */
  readonly refreshAt: number;
}

export function createVaultTransitProvider(options: VaultTransitOptions): KmsProvider {
  const { address, mount, key, dispatcher } = options;
  if (!mount.split('/').every((segment) => SEGMENT.test(segment))) {
    throw new KmsError(
      PROVIDER,
      'kms_misconfigured',
      'ENCRYPTION_VAULT_MOUNT must be a mount path such as transit',
    );
  }
  if (!SEGMENT.test(key)) {
    throw new KmsError(PROVIDER, 'kms_misconfigured', 'ENCRYPTION_VAULT_KEY must be a transit key name');
  }
  const approleMount = options.approleMount ?? 'approle';
  const keyRefPrefix = `${mount}/${key}:v`;
  let cached: CachedToken | null = null;
  let loggingIn: Promise<CachedToken> | null = null;
  const now = options.now ?? Date.now;
  /** When a static token is next renewed; 0 = not looked up yet. */
  let renewAt = 0;
  let renewing: Promise<void> | null = null;

  function url(path: string): URL {
    const base = address.pathname.endsWith('/') ? address.pathname : `${address.pathname}/`;
    return new URL(`${base}v1/${path}`, address);
  }

  function baseHeaders(): Record<string, string> {
    return {
      'x-vault-request': 'true',
      ...(options.namespace === null ? {} : { 'x-vault-namespace': options.namespace }),
    };
  }

  async function appRoleLogin(signal: AbortSignal): Promise<CachedToken> {
    if (options.login.kind !== 'approle') throw new Error('unreachable: not an AppRole login');
    let reply: JsonReply;
    try {
      reply = await callJson(dispatcher, {
        method: 'POST',
        url: url(`auth/${approleMount}/login`),
        headers: baseHeaders(),
        body: { role_id: options.login.roleId, secret_id: options.login.secretId },
        signal,
      });
    } catch (error) {
      throw transportFailure(PROVIDER, 'AppRole login', error, signal);
    }
    // Vault answers a wrong role or secret id with 400: that is a refusal, not a bad ciphertext.
    if (reply.status === 400) throw new KmsError(PROVIDER, 'kms_denied', 'AppRole login was refused');
    if (reply.status !== 200) throw failure('AppRole login', reply);
    const parsed = LoginReply.safeParse(reply.body);
    if (!parsed.success) throw new KmsError(PROVIDER, 'kms_bad_response', 'AppRole login returned no token');
    const leaseMs = parsed.data.auth.lease_duration * 1000;
    return {
      token: parsed.data.auth.client_token,
      refreshAt:
        leaseMs === 0 ? Number.POSITIVE_INFINITY : now() + Math.max(leaseMs - RENEW_MARGIN_MS, leaseMs / 2),
    };
  }

  /**
   * Keeps a renewable static token alive: looks it up on first use, then renews it (renew-self) once half of
   * its TTL has passed. A token that is not renewable, has no TTL, or whose policy forbids lookup is left
   * alone. Renewal never fails a call: if Vault cannot be reached, the call itself reports that.
   */
  async function renewStaticToken(value: string, signal: AbortSignal): Promise<void> {
    const first = renewAt === 0;
    const headers = { ...baseHeaders(), 'x-vault-token': value };
    try {
      const reply = first
        ? await callJson(dispatcher, { method: 'GET', url: url('auth/token/lookup-self'), headers, signal })
        : await callJson(dispatcher, {
            method: 'POST',
            url: url('auth/token/renew-self'),
            headers,
            body: {},
            signal,
          });
      const lookup = first ? LookupReply.safeParse(reply.body) : null;
      const renew = first ? null : RenewReply.safeParse(reply.body);
      const ttl = lookup?.success
        ? lookup.data.data
        : renew?.success
          ? { ttl: renew.data.auth.lease_duration, renewable: renew.data.auth.renewable }
          : null;
      if (reply.status === 429 || reply.status >= 500) {
        renewAt = now() + RENEW_RETRY_MS;
      } else {
        renewAt =
          reply.status !== 200 || ttl === null || !ttl.renewable || ttl.ttl === 0
            ? Number.POSITIVE_INFINITY
            : now() + (ttl.ttl * 1000) / 2;
      }
    } catch {
      renewAt = now() + RENEW_RETRY_MS;
    }
  }

  /** The token to send; AppRole logs in once for all concurrent callers, and again before the lease ends. */
  async function token(signal: AbortSignal, forceLogin: boolean): Promise<string | null> {
    if (options.login.kind === 'agent') return null;
    if (options.login.kind === 'token') {
      const value = options.login.token;
      if (now() >= renewAt) {
        renewing ??= renewStaticToken(value, signal).finally(() => {
          renewing = null;
        });
        await renewing;
      }
      return value;
    }
    if (!forceLogin && cached !== null && now() < cached.refreshAt) return cached.token;
    loggingIn ??= appRoleLogin(signal).finally(() => {
      loggingIn = null;
    });
    cached = await loggingIn;
    return cached.token;
  }

  async function transit(operation: string, path: string, body: Record<string, string>, signal: AbortSignal) {
    const send = async (forceLogin: boolean): Promise<JsonReply> => {
      const current = await token(signal, forceLogin);
      try {
        return await callJson(dispatcher, {
          method: 'POST',
          url: url(`${mount}/${path}/${key}`),
          headers: { ...baseHeaders(), ...(current === null ? {} : { 'x-vault-token': current }) },
          body,
          signal,
        });
      } catch (error) {
        throw transportFailure(PROVIDER, operation, error, signal);
      }
    };
    let reply = await send(false);
    // An AppRole token can be revoked or expire early; one fresh login is worth a retry.
    if (reply.status === 403 && options.login.kind === 'approle') reply = await send(true);
    if (reply.status !== 200) throw failure(operation, reply);
    return reply.body;
  }

  function parseCiphertext(operation: string, body: unknown): WrappedKey {
    const parsed = CiphertextReply.safeParse(body);
    if (!parsed.success)
      throw new KmsError(PROVIDER, 'kms_bad_response', `${operation} returned no ciphertext`);
    return {
      ciphertext: Buffer.from(parsed.data.data.ciphertext, 'utf8'),
      kekRef: `${keyRefPrefix}${parsed.data.data.key_version}`,
    };
  }

  function storedCiphertext(wrapped: WrappedKey): string {
    const text = Buffer.from(wrapped.ciphertext).toString('utf8');
    if (!wrapped.kekRef.startsWith(keyRefPrefix) || !text.startsWith('vault:v')) {
      throw new KmsError(
        PROVIDER,
        'kms_invalid_ciphertext',
        `the wrapped key was not made by transit key ${mount}/${key} (it names ${safeDetail(wrapped.kekRef)})`,
      );
    }
    return text;
  }

  function contextParam(context: WrapContext): string {
    checkWrapContext(PROVIDER, context);
    return canonicalWrapContext(context).toString('base64');
  }

  return {
    name: PROVIDER,
    kekId: `${mount}/${key}`,

    async wrap(dek: Uint8Array, context: WrapContext, { signal }: KmsCallOptions): Promise<WrappedKey> {
      const body = { plaintext: Buffer.from(dek).toString('base64'), context: contextParam(context) };
      return parseCiphertext('encrypt', await transit('encrypt', 'encrypt', body, signal));
    },

    async unwrap(wrapped: WrappedKey, context: WrapContext, { signal }: KmsCallOptions): Promise<Uint8Array> {
      const body = { ciphertext: storedCiphertext(wrapped), context: contextParam(context) };
      const parsed = PlaintextReply.safeParse(await transit('decrypt', 'decrypt', body, signal));
      if (!parsed.success) throw new KmsError(PROVIDER, 'kms_bad_response', 'decrypt returned no plaintext');
      return takeKey(PROVIDER, Buffer.from(parsed.data.data.plaintext, 'base64'));
    },

    async rewrap(wrapped: WrappedKey, context: WrapContext, { signal }: KmsCallOptions): Promise<WrappedKey> {
      const body = { ciphertext: storedCiphertext(wrapped), context: contextParam(context) };
      return parseCiphertext('rewrap', await transit('rewrap', 'rewrap', body, signal));
    },

    async close(): Promise<void> {
      cached = null;
      await dispatcher.close();
    },
  };
}

/** Vault answers errors as `{"errors": [...]}` with the status saying what kind. */
function failure(operation: string, reply: JsonReply): KmsError {
  const parsed = ErrorReply.safeParse(reply.body);
  const text = parsed.success ? parsed.data.errors.join('; ') : '';
  const detail = `${operation} answered HTTP ${reply.status}${text ? `: ${safeDetail(text)}` : ''}`;
  const { status } = reply;
  if (status === 401 || status === 403) return new KmsError(PROVIDER, 'kms_denied', detail);
  if (status === 404) return new KmsError(PROVIDER, 'kms_key_not_found', detail);
  if (status === 429 || status === 412 || status >= 500)
    return new KmsError(PROVIDER, 'kms_unavailable', detail);
  if (status === 400) {
    // Transit reports a missing key, a context problem and a bad ciphertext all as 400; the text tells them apart.
    if (/key not found|no existing key/i.test(text))
      return new KmsError(PROVIDER, 'kms_key_not_found', detail);
    if (/context/i.test(text) && !/decrypt|authentication/i.test(text)) {
      return new KmsError(
        PROVIDER,
        'kms_misconfigured',
        `${detail} (is the transit key created with derived=true?)`,
      );
    }
    if (operation !== 'encrypt') return new KmsError(PROVIDER, 'kms_invalid_ciphertext', detail);
  }
  return new KmsError(PROVIDER, 'kms_bad_response', detail);
}
