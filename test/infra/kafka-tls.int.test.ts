import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createKafkaBus, type KafkaBus, type KafkaBusConfigInput } from '@signal/bus';
import { loadConfig } from '@signal/config';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createTestPki, type TestCa, type TestCertificate, type TestPki } from '@signal/http';
import { kafkaBusSettings } from '@signal/runtime';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from './support';

/**
 * Kafka TLS and SASL through the real kafkajs client that @signal/bus wraps. There is no broker here, so a
 * loopback TLS endpoint plays the first steps of one: it answers ApiVersions (advertising SASL) and records
 * the SaslHandshake. That proves the bus's options reach kafkajs on the wire — certificate verified against
 * the configured CA, host name checked, SASL mechanism negotiated inside TLS — and that a TLS-configured bus
 * never speaks Kafka in clear. (Option mapping itself: packages/bus/src/kafka/config.test.ts.)
 */

const API_VERSIONS = 18;
const SASL_HANDSHAKE = 17;
const SASL_AUTHENTICATE = 36;
const METADATA = 3;

interface KafkaRequest {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly clientId: string | null;
  /** SaslHandshake only: the mechanism the client asked for. */
  readonly mechanism?: string;
}

/** Frames on the wire: int32 size, then apiKey int16, apiVersion int16, correlationId int32, clientId string. */
function parseRequests(buffer: Buffer): {
  requests: (KafkaRequest & { correlationId: number })[];
  rest: Buffer;
} {
  const requests: (KafkaRequest & { correlationId: number })[] = [];
  let offset = 0;
  while (buffer.length - offset >= 4) {
    const size = buffer.readInt32BE(offset);
    if (buffer.length - offset - 4 < size) break;
    const frame = buffer.subarray(offset + 4, offset + 4 + size);
    const apiKey = frame.readInt16BE(0);
    const apiVersion = frame.readInt16BE(2);
    const correlationId = frame.readInt32BE(4);
    const clientIdLength = frame.readInt16BE(8);
    const clientId = clientIdLength < 0 ? null : frame.toString('utf8', 10, 10 + clientIdLength);
    const body = frame.subarray(10 + Math.max(0, clientIdLength));
    const request: KafkaRequest & { correlationId: number } =
      apiKey === SASL_HANDSHAKE
        ? {
            apiKey,
            apiVersion,
            correlationId,
            clientId,
            mechanism: body.toString('utf8', 2, 2 + body.readInt16BE(0)),
          }
        : { apiKey, apiVersion, correlationId, clientId };
    requests.push(request);
    offset += 4 + size;
  }
  return { requests, rest: buffer.subarray(offset) };
}

/** ApiVersions v0–v2 response advertising ApiVersions, Metadata and SASL. */
function apiVersionsResponse(correlationId: number, version: number): Buffer {
  const apis: [number, number, number][] = [
    [API_VERSIONS, 0, 2],
    [METADATA, 0, 5],
    [SASL_HANDSHAKE, 0, 1],
    [SASL_AUTHENTICATE, 0, 1],
  ];
  const body = Buffer.alloc(4 + 2 + 4 + apis.length * 6 + (version >= 1 ? 4 : 0));
  let o = body.writeInt32BE(correlationId, 0);
  o = body.writeInt16BE(0, o);
  o = body.writeInt32BE(apis.length, o);
  for (const [key, min, max] of apis) {
    o = body.writeInt16BE(key, o);
    o = body.writeInt16BE(min, o);
    o = body.writeInt16BE(max, o);
  }
  if (version >= 1) body.writeInt32BE(0, o);
  const frame = Buffer.alloc(4);
  frame.writeInt32BE(body.length, 0);
  return Buffer.concat([frame, body]);
}

interface FakeBroker {
  readonly port: number;
  readonly requests: KafkaRequest[];
  readonly handshakes: { readonly protocol: string | null }[];
  readonly tlsErrors: string[];
  close(): Promise<void>;
}

async function startFakeBroker(certificate: TestCertificate): Promise<FakeBroker> {
  const requests: KafkaRequest[] = [];
  const handshakes: { protocol: string | null }[] = [];
  const tlsErrors: string[] = [];
  const sockets = new Set<TLSSocket>();
  const server = createTlsServer(
    { cert: certificate.certPem, key: certificate.keyPem, minVersion: 'TLSv1.2' },
    (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      handshakes.push({ protocol: socket.getProtocol() });
      let pending: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        const parsed = parseRequests(Buffer.concat([pending, chunk]));
        pending = parsed.rest;
        for (const { correlationId, ...request } of parsed.requests) {
          requests.push(request);
          if (request.apiKey === API_VERSIONS)
            socket.write(apiVersionsResponse(correlationId, request.apiVersion));
          else socket.destroy(); // SaslHandshake (or anything else): seen, that is all this test needs
        }
      });
      socket.on('error', () => undefined);
    },
  );
  server.on('tlsClientError', (err: Error & { code?: string }) => tlsErrors.push(err.code ?? err.message));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    requests,
    handshakes,
    tlsErrors,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('Kafka TLS and SASL options on the wire (kafkajs via @signal/bus)', () => {
  let pki: TestPki;
  let ca: TestCa;
  let otherCa: TestCa;
  let certificate: TestCertificate;
  let broker: FakeBroker;
  const buses: KafkaBus[] = [];

  beforeAll(async () => {
    pki = await createTestPki();
    ca = await pki.createCa();
    otherCa = await pki.createCa();
    certificate = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  });

  // A broker per test: kafkajs keeps retrying a connection in the background for a while after close(), so
  // a shared endpoint would see the previous test's client.
  beforeEach(async () => {
    broker = await startFakeBroker(certificate);
  });

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close().catch(() => undefined)));
    await broker.close();
  });

  afterAll(async () => {
    await pki?.cleanup();
  });

  /** A bus whose first use opens a connection; the attempt's outcome is not awaited (no real broker). */
  function connect(config: Omit<KafkaBusConfigInput, 'connectionTimeoutMs' | 'requestTimeoutMs'>): void {
    const bus = createKafkaBus(
      { connectionTimeoutMs: 1_000, requestTimeoutMs: 1_000, ...config },
      {
        logger: silentLogger,
        crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
      },
    );
    buses.push(bus);
    bus
      .createTopics([{ name: 'signal.raw-events', partitions: 1, replicationFactor: 1 }])
      .catch(() => undefined);
  }

  it('TLS with the CA and SCRAM-SHA-256: verified handshake, then SASL negotiated inside TLS', async () => {
    connect({
      brokers: [`localhost:${broker.port}`],
      clientId: 'signal-tls-test',
      tls: { ca: [ca.certPem] },
      sasl: { mechanism: 'scram-sha-256', username: 'signal', password: 'not-sent-in-clear' },
    });
    await until(() => broker.requests.some((r) => r.apiKey === SASL_HANDSHAKE), 'the SaslHandshake');
    expect(broker.handshakes[0]?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(broker.requests[0]).toMatchObject({ apiKey: API_VERSIONS, clientId: 'signal-tls-test' });
    expect(broker.requests.find((r) => r.apiKey === SASL_HANDSHAKE)?.mechanism).toBe('SCRAM-SHA-256');
  });

  it('from the service settings: KAFKA_TLS_CA_CERT_PATH, KAFKA_SASL_* and KAFKA_CLIENT_ID reach the wire', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signal-kafka-ca-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), ca.certPem);
      const config = loadConfig({
        cwd: dir,
        env: {
          BUS: 'kafka',
          KAFKA_BROKERS: `localhost:${broker.port}`,
          KAFKA_TLS_ENABLED: 'true',
          KAFKA_TLS_CA_CERT_PATH: join(dir, 'ca.crt'),
          KAFKA_SASL_MECHANISM: 'scram-sha-512',
          KAFKA_SASL_USERNAME: 'signal',
          KAFKA_SASL_PASSWORD: 'from-the-environment',
          KAFKA_CLIENT_ID: 'shop-signal',
        },
      });
      connect({ ...kafkaBusSettings(config, 'ingestion-gateway') });
      await until(() => broker.requests.some((r) => r.apiKey === SASL_HANDSHAKE), 'the SaslHandshake');
      expect(broker.handshakes[0]?.protocol).toMatch(/^TLSv1\.[23]$/);
      expect(broker.requests[0]).toMatchObject({ apiKey: API_VERSIONS, clientId: 'shop-signal' });
      expect(broker.requests.find((r) => r.apiKey === SASL_HANDSHAKE)?.mechanism).toBe('SCRAM-SHA-512');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('from the service settings: the CA file of another CA fails the handshake; a missing file is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signal-kafka-ca-'));
    try {
      writeFileSync(join(dir, 'other.crt'), otherCa.certPem);
      const env = { BUS: 'kafka', KAFKA_BROKERS: `localhost:${broker.port}`, KAFKA_TLS_ENABLED: 'true' };
      connect({
        ...kafkaBusSettings(
          loadConfig({ cwd: dir, env: { ...env, KAFKA_TLS_CA_CERT_PATH: join(dir, 'other.crt') } }),
          'event-processor',
        ),
      });
      await until(() => broker.tlsErrors.length > 0, 'the refused handshake');
      expect(broker.requests).toEqual([]);
      const missing = loadConfig({
        cwd: dir,
        env: { ...env, KAFKA_TLS_CA_CERT_PATH: join(dir, 'nope.crt') },
      });
      expect(() => kafkaBusSettings(missing, 'event-processor')).toThrow(
        /^KAFKA_TLS_CA_CERT_PATH must name a readable PEM file \(.*nope\.crt: ENOENT\)$/,
      );
      writeFileSync(join(dir, 'key.pem'), certificate.keyPem);
      const notCa = loadConfig({ cwd: dir, env: { ...env, KAFKA_TLS_CA_CERT_PATH: join(dir, 'key.pem') } });
      expect(() => kafkaBusSettings(notCa, 'event-processor')).toThrow(
        /^KAFKA_TLS_CA_CERT_PATH must name a PEM file with at least one CERTIFICATE block/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SASL/PLAIN over TLS is negotiated as PLAIN (password only ever inside TLS)', async () => {
    connect({
      brokers: [`127.0.0.1:${broker.port}`],
      tls: { ca: [ca.certPem] },
      sasl: { mechanism: 'plain', username: 'signal', password: 'pw' },
    });
    await until(() => broker.requests.some((r) => r.apiKey === SASL_HANDSHAKE), 'the SaslHandshake');
    expect(broker.requests.find((r) => r.apiKey === SASL_HANDSHAKE)?.mechanism).toBe('PLAIN');
  });

  it('a broker certificate from another CA: the handshake is aborted, no Kafka request is sent', async () => {
    connect({ brokers: [`localhost:${broker.port}`], tls: { ca: [otherCa.certPem] } });
    await until(() => broker.tlsErrors.length > 0, 'the refused handshake');
    expect(broker.handshakes).toEqual([]);
    expect(broker.requests).toEqual([]);
  });

  it('a broker certificate for another name: refused (servername is checked)', async () => {
    connect({
      brokers: [`127.0.0.1:${broker.port}`],
      tls: { ca: [ca.certPem], servername: 'kafka.internal.example' },
    });
    await until(() => broker.tlsErrors.length > 0 || broker.handshakes.length > 0, 'the handshake attempt');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(broker.requests).toEqual([]);
  });

  it('never plaintext: a TLS-configured bus opens with a TLS ClientHello, not a Kafka request', async () => {
    const received: Buffer[] = [];
    const plain: Server = createTcpServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        received.push(chunk);
        socket.destroy();
      });
      socket.on('error', () => undefined);
    });
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      connect({
        brokers: [`127.0.0.1:${(plain.address() as { port: number }).port}`],
        tls: { ca: [ca.certPem] },
        sasl: { mechanism: 'scram-sha-512', username: 'signal', password: 'secret-password' },
      });
      await until(() => received.length > 0, 'the first bytes');
      expect(received[0]?.[0]).toBe(0x16); // TLS handshake record
      expect(Buffer.concat(received).includes('secret-password')).toBe(false);
      expect(parseRequests(received[0] ?? Buffer.alloc(0)).requests).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });
});
