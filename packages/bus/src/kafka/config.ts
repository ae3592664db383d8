import type { ConnectionOptions } from 'node:tls';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { z } from 'zod';
import { BusError } from '../errors';

const BROKER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;

const credentials = {
  username: z.string().min(1).max(1024),
  password: z.string().min(1).max(4096),
};

/**
 * Typed connection settings for the Kafka bus (the composition root maps `KAFKA_BROKERS`,
 * `KAFKA_TLS_ENABLED` and friends onto it). TLS always verifies the broker certificate and host name; there
 * is no option to turn that off. SASL/PLAIN sends the password as is, so it is refused without TLS.
 */
export const kafkaBusConfigSchema = z
  .object({
    /** Client id shown in broker logs and quotas; consumer ids derive from it. */
    clientId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,128}$/)
      .default('signal'),
    /** `KAFKA_BROKERS`: bootstrap brokers as host:port. */
    brokers: z.array(z.string().regex(BROKER, 'brokers are host:port')).min(1),
    /** Presence turns TLS on. `ca`: PEM certificates to trust instead of Node's bundled public CAs. */
    tls: z
      .object({
        ca: z.array(z.string().min(1)).min(1).optional(),
        /** Name the broker certificates must carry when brokers are addressed by IP. */
        servername: z.string().min(1).optional(),
      })
      .optional(),
    sasl: z
      .discriminatedUnion('mechanism', [
        z.object({ mechanism: z.literal('plain'), ...credentials }),
        z.object({ mechanism: z.literal('scram-sha-256'), ...credentials }),
        z.object({ mechanism: z.literal('scram-sha-512'), ...credentials }),
      ])
      .optional(),
    connectionTimeoutMs: z.int().min(100).max(120_000).default(5_000),
    requestTimeoutMs: z.int().min(100).max(600_000).default(30_000),
    /** A publish waits this long for all in-sync replicas (acks=all) before failing. */
    publishTimeoutMs: z.int().min(100).max(600_000).default(30_000),
    /**
     * Most bytes of sealed records in one produce request: a publish is sent in chunks of at most this
     * (chunks.ts). Keep it under the brokers' `message.max.bytes` (and the topics' `max.message.bytes`);
     * the default fits Kafka's default of 1 MiB with room for framing.
     */
    maxRequestBytes: z
      .int()
      // 128 KiB at least: a message (about 3/4 of a request once sealed) must have room beyond the 64 KiB
      // producers keep for a dead letter (message-size.ts).
      .min(131_072)
      .max(256 * 1024 * 1024)
      .default(1_000_000),
    /** Kafka's consumer session timeout (the broker's group.min/max.session.timeout.ms bound it). */
    sessionTimeoutMs: z.int().min(1_000).max(3_600_000).default(30_000),
    heartbeatIntervalMs: z.int().min(100).max(600_000).default(3_000),
    /** How long the group waits for members to rejoin during a rebalance. */
    rebalanceTimeoutMs: z.int().min(1_000).max(3_600_000).default(60_000),
    retryBackoffMs: z.int().min(1).default(200),
    maxRetryBackoffMs: z.int().min(1).default(30_000),
    defaultStopDeadlineMs: z.int().min(0).default(30_000),
    /** Replication factor of topics created without one. */
    defaultReplicationFactor: z.int().min(1).max(32).default(3),
  })
  .refine((c) => c.sasl?.mechanism !== 'plain' || c.tls !== undefined, {
    message: 'SASL/PLAIN sends the password in clear: enable TLS (or use SCRAM)',
    path: ['sasl'],
  })
  .refine((c) => c.heartbeatIntervalMs * 3 <= c.sessionTimeoutMs, {
    message: 'heartbeatIntervalMs must be at most a third of sessionTimeoutMs',
    path: ['heartbeatIntervalMs'],
  });

export type KafkaBusConfigInput = z.input<typeof kafkaBusConfigSchema>;
export type KafkaBusConfig = z.output<typeof kafkaBusConfigSchema>;

/** Validates a config object; errors name the field and never echo a password. */
export function parseKafkaBusConfig(input: KafkaBusConfigInput): KafkaBusConfig {
  const result = kafkaBusConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new BusError('bus_invalid_config', `invalid Kafka bus configuration: ${problems}`);
  }
  return result.data;
}

/** The kafkajs client options for a validated config (without logging, which the bus adds). */
export function toKafkaJsConfig(config: KafkaBusConfig): KafkaConfig {
  const out: KafkaConfig = {
    clientId: config.clientId,
    brokers: [...config.brokers],
    connectionTimeout: config.connectionTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
  };
  if (config.tls !== undefined) {
    const ssl: ConnectionOptions = { rejectUnauthorized: true, minVersion: 'TLSv1.2' };
    if (config.tls.ca !== undefined) ssl.ca = [...config.tls.ca];
    if (config.tls.servername !== undefined) ssl.servername = config.tls.servername;
    out.ssl = ssl;
  }
  if (config.sasl !== undefined) {
    const sasl: SASLOptions = { ...config.sasl };
    out.sasl = sasl;
  }
  return out;
}
