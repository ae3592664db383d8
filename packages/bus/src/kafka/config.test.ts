import { describe, expect, it } from 'vitest';
import { BusError } from '../errors';
import { parseKafkaBusConfig, toKafkaJsConfig } from './config';

function problem(input: Parameters<typeof parseKafkaBusConfig>[0]): string {
  try {
    parseKafkaBusConfig(input);
  } catch (err) {
    if (err instanceof BusError) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('Kafka bus configuration', () => {
  it('fills defaults and maps onto kafkajs without TLS or SASL', () => {
    const config = parseKafkaBusConfig({ brokers: ['kafka-1:9092', '10.0.0.2:9093'] });
    expect(config.clientId).toBe('signal');
    expect(config.sessionTimeoutMs).toBe(30_000);
    expect(toKafkaJsConfig(config)).toEqual({
      clientId: 'signal',
      brokers: ['kafka-1:9092', '10.0.0.2:9093'],
      connectionTimeout: 5000,
      requestTimeout: 30_000,
    });
  });

  it('always verifies the broker certificate when TLS is on', () => {
    const config = parseKafkaBusConfig({
      brokers: ['kafka:9093'],
      tls: { ca: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'] },
      sasl: { mechanism: 'scram-sha-512', username: 'signal', password: 'pw' },
    });
    const kafkajs = toKafkaJsConfig(config);
    expect(kafkajs.ssl).toEqual({
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ca: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'],
    });
    expect(kafkajs.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'signal', password: 'pw' });
    // No way to switch verification off: unknown keys are dropped by the schema.
    const lax = parseKafkaBusConfig({
      brokers: ['kafka:9093'],
      tls: { rejectUnauthorized: false } as unknown as { ca?: string[] },
    });
    expect(toKafkaJsConfig(lax).ssl).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
  });

  it('refuses SASL/PLAIN without TLS, bad brokers and inconsistent timings, naming the field', () => {
    expect(
      problem({ brokers: ['k:9092'], sasl: { mechanism: 'plain', username: 'u', password: 'secret-pw' } }),
    ).toBe(
      'bus_invalid_config: invalid Kafka bus configuration: sasl: SASL/PLAIN sends the password in clear: enable TLS (or use SCRAM)',
    );
    expect(problem({ brokers: [] })).toMatch(/^bus_invalid_config: .*brokers/);
    expect(problem({ brokers: ['kafka-1'] })).toMatch(/brokers\.0: brokers are host:port/);
    expect(problem({ brokers: ['k:9092'], sessionTimeoutMs: 6000, heartbeatIntervalMs: 3000 })).toMatch(
      /heartbeatIntervalMs: heartbeatIntervalMs must be at most a third of sessionTimeoutMs/,
    );
    const refusal = problem({
      brokers: ['k:9092'],
      sasl: { mechanism: 'scram-sha-256', username: 'u', password: '' },
    });
    expect(refusal).toMatch(/sasl\.password/);
  });
});
