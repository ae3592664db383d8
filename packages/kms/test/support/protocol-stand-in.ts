import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { type ClosedPort, holdClosedPort } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsSettings, KmsError, type KmsProvider, type WrapContext } from '../../src/index';

/**
 * FOR TESTS. Plumbing shared by the KMS protocol tests: an HTTPS server on 127.0.0.1 with a throw-away CA that
 * records every request and answers through the protocol stand-in a test file supplies (AWS KMS JSON 1.1,
 * Cloud KMS REST, Key Vault REST, Vault transit), fault injection, the AES-GCM sealing the stand-ins use so a
 * wrong context really fails, and the cases every adapter must pass. These are stand-ins for the providers'
 * wire protocols, not the providers: they implement the subset of requests Signal sends.
 */

/** Settings with no provider configured: each test fills in its own provider's part. */
export const NO_CLOUD_SETTINGS: CloudKmsSettings = {
  awsKms: { keyId: null, region: null },
  gcpKms: { keyResourceName: null },
  azureKeyVault: { keyId: null },
  vault: {
    address: null,
    token: null,
    roleId: null,
    secretId: null,
    namespace: null,
    caCertPath: null,
    mount: 'transit',
    key: null,
  },
};

export interface RecordedRequest {
  readonly method: string;
  /** Path and query, as received. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The body parsed as JSON, or undefined. */
  readonly json: unknown;
}

export interface Reply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
}

/** What the server does instead of asking the stand-in: a scripted reply, or accept and never answer. */
export type Fault = Reply | 'hang';

export type Protocol = (request: RecordedRequest) => Reply;

export interface StandInServer {
  /** `https://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly requests: RecordedRequest[];
  /** While set, every request gets this instead of the protocol's answer. */
  fault: Fault | null;
  close(): Promise<void>;
}

export interface TestTls {
  readonly pki: TestPki;
  readonly ca: TestCa;
  /** A CA that signed nothing the stand-ins present: trusting only it must fail the handshake. */
  readonly otherCa: TestCa;
  /** Starts a stand-in serving a certificate for 127.0.0.1 issued by `ca`. */
  serve(protocol: Protocol): Promise<StandInServer>;
  /** A loopback port with nothing listening (connection refused), held until `cleanup`. */
  closedPort(): Promise<number>;
  cleanup(): Promise<void>;
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function write(res: ServerResponse, reply: Reply): void {
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  if (reply.body === undefined) {
    res.end();
    return;
  }
  if (!res.hasHeader('content-type')) res.setHeader('content-type', 'application/json');
  res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
}

export async function createTestTls(): Promise<TestTls> {
  const pki = await createTestPki();
  const ca = await pki.createCa({ commonName: 'KMS stand-in test CA' });
  const otherCa = await pki.createCa({ commonName: 'Unrelated test CA' });
  const certificate = await ca.issueServerCertificate({
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
  });
  const servers: Server[] = [];
  const held: ClosedPort[] = [];

  return {
    pki,
    ca,
    otherCa,
    async serve(protocol: Protocol): Promise<StandInServer> {
      const sockets = new Set<Socket>();
      const requests: RecordedRequest[] = [];
      const server = createServer({ cert: certificate.certPem, key: certificate.keyPem });
      servers.push(server);
      const standIn: StandInServer = {
        origin: '',
        requests,
        fault: null,
        async close() {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      };
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      server.on('request', (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const recorded = {
            method: req.method ?? '',
            url: req.url ?? '',
            headers: req.headers,
            body,
            json: parseJson(body),
          };
          requests.push(recorded);
          const fault = standIn.fault;
          if (fault === 'hang') return;
          write(res, fault ?? protocol(recorded));
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('stand-in has no port');
      return Object.assign(standIn, { origin: `https://127.0.0.1:${address.port}` });
    },
    async closedPort(): Promise<number> {
      const closed = await holdClosedPort();
      held.push(closed);
      return closed.port;
    },
    async cleanup() {
      await Promise.all(held.map((closed) => closed.release()));
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
      await pki.cleanup();
    },
  };
}

/** AES-256-GCM as the stand-ins' "HSM": `iv ‖ ciphertext ‖ tag`, with the bound context as AAD. */
export function seal(secret: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', secret, iv, { authTagLength: 16 });
  cipher.setAAD(aad);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Opens `seal`'s output; `null` when the secret, the AAD or the bytes are wrong. */
export function open(secret: Buffer, sealed: Buffer, aad: Buffer): Buffer | null {
  if (sealed.length < 28) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', secret, sealed.subarray(0, 12), { authTagLength: 16 });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
  } catch {
    return null;
  }
}

/** The stand-ins' own canonical form of a context map (sorted keys), independent of the adapters' code. */
export function sortedJson(map: Readonly<Record<string, string>>): Buffer {
  return Buffer.from(
    JSON.stringify(Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : 1)))),
  );
}

export const CONTEXT: WrapContext = {
  purpose: 'signal-dek',
  namespace: 'acme',
  data_class: 'identity',
  dek_id: '5b0c6f0e9a1d4c3b8e2f7a6d5c4b3a29',
};
/** The same context built in another order: adapters must serialise it identically. */
export const CONTEXT_REORDERED: WrapContext = {
  dek_id: CONTEXT.dek_id ?? '',
  data_class: 'identity',
  namespace: 'acme',
  purpose: 'signal-dek',
};
export const OTHER_CONTEXT: WrapContext = { ...CONTEXT, data_class: 'credentials' };

/** One protocol test's stand-in, with the provider-specific answers the shared cases need. */
export interface ProtocolFixture {
  readonly tls: TestTls;
  readonly server: StandInServer;
  /** An adapter pointed at the stand-in; `origin` and `caPem` replace the stand-in's for the refusal cases. */
  connect(overrides?: { readonly origin?: string; readonly caPem?: string }): Promise<KmsProvider>;
  /** Whether the provider binds the wrap context (Azure Key Vault does not; the caller's commitment does). */
  readonly bindsContext: boolean;
  /** Makes a new KEK version primary in the stand-in. */
  rotate(): void;
  /** Whether the KEK reference changes with the version (AWS keeps the key ARN; rotation is inside the blob). */
  readonly kekRefNamesVersion: boolean;
  /** The provider's real answer when the caller may not use the key. */
  readonly denied: Reply;
  /** The provider's real answer when it is down or overloaded. */
  readonly unavailable: Reply;
  /** Strings that must never appear in an error message (tokens, credentials). */
  readonly secrets: readonly string[];
}

async function failureOf(promise: Promise<unknown>): Promise<KmsError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KmsError);
  if (!(error instanceof KmsError)) throw new Error('expected a KmsError');
  return error;
}

const call = () => ({ signal: AbortSignal.timeout(10_000) });

/**
 * The behaviour every cloud adapter owes the DEK store, run against its protocol stand-in: round trip,
 * rewrap after a KEK rotation, context binding, error mapping (denied, unavailable, refused, timeout),
 * strict TLS, and no key bytes or tokens in error messages.
 */
export function describeProtocolCases(label: string, setup: () => Promise<ProtocolFixture>): void {
  describe(`${label}: behaviour every adapter owes the DEK store`, () => {
    let fixture: ProtocolFixture;
    let provider: KmsProvider;
    const dek = randomBytes(32);
    const leaks = () => [
      dek.toString('hex'),
      dek.toString('base64'),
      dek.toString('base64url'),
      ...fixture.secrets,
    ];
    const expectClean = (error: KmsError) => {
      for (const leak of leaks()) expect(error.message).not.toContain(leak);
    };

    beforeAll(async () => {
      fixture = await setup();
      provider = await fixture.connect();
    });
    afterAll(async () => {
      await provider?.close();
    });

    it('wraps and unwraps a DEK (the wrapped form is not the key, the KEK reference names a version)', async () => {
      fixture.server.fault = null;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      expect(Buffer.from(wrapped.ciphertext).includes(dek)).toBe(false);
      expect(wrapped.kekRef.length).toBeGreaterThan(0);
      const unwrapped = await provider.unwrap(wrapped, CONTEXT_REORDERED, call());
      expect(Buffer.from(unwrapped).equals(dek)).toBe(true);
    });

    it('rewraps under the new KEK version after a rotation; old and new both unwrap', async () => {
      fixture.server.fault = null;
      const before = await provider.wrap(dek, CONTEXT, call());
      fixture.rotate();
      const after = await provider.rewrap(before, CONTEXT, call());
      if (fixture.kekRefNamesVersion) expect(after.kekRef).not.toBe(before.kekRef);
      expect(Buffer.from(after.ciphertext).equals(Buffer.from(before.ciphertext))).toBe(false);
      expect(Buffer.from(await provider.unwrap(after, CONTEXT, call())).equals(dek)).toBe(true);
      expect(Buffer.from(await provider.unwrap(before, CONTEXT, call())).equals(dek)).toBe(true);
    });

    it('refuses a tampered wrapped key with kms_invalid_ciphertext', async () => {
      fixture.server.fault = null;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      const tampered = Buffer.from(wrapped.ciphertext);
      const last = tampered.length - 2;
      tampered[last] = (tampered[last] ?? 0) ^ 0x01;
      const error = await failureOf(provider.unwrap({ ...wrapped, ciphertext: tampered }, CONTEXT, call()));
      expect(error.code).toBe('kms_invalid_ciphertext');
      expectClean(error);
    });

    it('binds the wrap context where the provider can: another context fails (else the commitment must)', async () => {
      fixture.server.fault = null;
      const wrapped = await provider.wrap(dek, CONTEXT, call());
      const attempt = provider.unwrap(wrapped, OTHER_CONTEXT, call());
      if (fixture.bindsContext) {
        const error = await failureOf(attempt);
        expect(error.code).toBe('kms_invalid_ciphertext');
        expect(error.retryable).toBe(false);
        expectClean(error);
      } else {
        // Azure Key Vault binds nothing: the DEK comes back, and only the caller's HMAC(DEK, context)
        // commitment on the DEK row can refuse it. This documents why that commitment is mandatory.
        expect(Buffer.from(await attempt).equals(dek)).toBe(true);
      }
    });

    it('maps the provider refusing the caller to kms_denied', async () => {
      fixture.server.fault = fixture.denied;
      try {
        const error = await failureOf(provider.wrap(dek, CONTEXT, call()));
        expect(error.code).toBe('kms_denied');
        expect(error.retryable).toBe(false);
        expectClean(error);
      } finally {
        fixture.server.fault = null;
      }
    });

    it('maps a provider outage (5xx) to a retryable kms_unavailable', async () => {
      fixture.server.fault = fixture.unavailable;
      try {
        const error = await failureOf(provider.wrap(dek, CONTEXT, call()));
        expect(error.code).toBe('kms_unavailable');
        expect(error.retryable).toBe(true);
        expectClean(error);
      } finally {
        fixture.server.fault = null;
      }
    });

    it('maps a refused connection to kms_unavailable', async () => {
      const refused = await fixture.connect({
        origin: `https://127.0.0.1:${await fixture.tls.closedPort()}`,
      });
      try {
        const error = await failureOf(refused.wrap(dek, CONTEXT, call()));
        expect(error.code).toBe('kms_unavailable');
        expect(error.message).toMatch(/connect_refused/);
        expectClean(error);
      } finally {
        await refused.close();
      }
    });

    it('gives up with kms_timeout when the provider does not answer before the caller aborts', async () => {
      fixture.server.fault = 'hang';
      try {
        const error = await failureOf(provider.wrap(dek, CONTEXT, { signal: AbortSignal.timeout(300) }));
        expect(error.code).toBe('kms_timeout');
        expect(error.retryable).toBe(true);
      } finally {
        fixture.server.fault = null;
      }
    });

    it('refuses a server whose certificate is not from the trusted CA, sending it nothing', async () => {
      const seen = fixture.server.requests.length;
      const strict = await fixture.connect({ caPem: fixture.tls.otherCa.certPem });
      try {
        const error = await failureOf(strict.wrap(dek, CONTEXT, call()));
        expect(error.code).toBe('kms_unavailable');
        expect(error.message).toMatch(/tls_error/);
        expectClean(error);
        expect(fixture.server.requests.length).toBe(seen);
      } finally {
        await strict.close();
      }
    });
  });
}
