import type { CryptoService, EncryptionContext } from '@signal/crypto';
import { BusError } from './errors';

/**
 * What the bus needs of `@signal/crypto`: seal and open the v1 ciphertext — binary for PostgreSQL segments
 * (`bytea`, ADR 0010-binary-bus-segments), text for Kafka values and for segments written before bus/0004 —
 * and the id of the key new writes are sealed under (stored beside a PostgreSQL segment so a rotation can count
 * what is left). Every bus is built with one: raw events carry PII (`traits.email`, …) until the processor
 * hashes it, and a bus's storage — PGlite files, PostgreSQL tables, Kafka log segments — is disk
 * (ADR 0007-bus-payload-sealing).
 */
export type BusCrypto = Pick<CryptoService, 'seal' | 'open' | 'sealText' | 'openText'> & {
  readonly keyring: { readonly currentKeyId: string };
};

/** Where a PostgreSQL segment lives: its row. A segment copied to another topic, partition or offset does not open. */
export interface SegmentLocation {
  readonly topic: string;
  readonly partition: number;
  readonly baseOffset: number;
}

/** Where a Kafka message value lives: the broker assigns the offset after sealing, so topic and partition. */
export interface MessageLocation {
  readonly topic: string;
  readonly partition: number;
}

export function segmentContext(where: SegmentLocation): EncryptionContext {
  return {
    purpose: 'bus-segment',
    dataClass: 'bus',
    table: 'bus_segments',
    column: 'records',
    rowId: where.baseOffset,
    extra: { topic: where.topic, partition: String(where.partition) },
  };
}

export function messageContext(where: MessageLocation): EncryptionContext {
  return {
    purpose: 'bus-message',
    dataClass: 'bus',
    extra: { topic: where.topic, partition: String(where.partition) },
  };
}

/**
 * Opens a sealed payload. Every failure — unknown key id (e.g. a previous key dropped too early, or a pod
 * that does not hold the new key yet), a modified or moved ciphertext, a damaged text form — becomes one
 * `bus_unreadable` error whose message names the crypto code only, never content.
 */
export function openPayload(crypto: BusCrypto, stored: string, context: EncryptionContext): string {
  try {
    return crypto.openText(stored, context).toString('utf8');
  } catch (err) {
    throw unreadable(codeOf(err), err);
  }
}

/** `openPayload` for the binary form (a PostgreSQL segment's `payload`): the plaintext bytes. */
export function openBinaryPayload(crypto: BusCrypto, stored: Uint8Array, context: EncryptionContext): Buffer {
  try {
    return crypto.open(stored, context);
  } catch (err) {
    throw unreadable(codeOf(err), err);
  }
}

/** `bus_unreadable` with its machine-readable reason: the crypto error code, `corrupt` or `unsealed`. */
export class UnreadableError extends BusError {
  readonly reason: string;
  constructor(reason: string, cause?: unknown) {
    super('bus_unreadable', `a stored bus payload cannot be read (${reason})`, { cause });
    this.reason = reason;
  }
}

export function unreadable(reason: string, cause?: unknown): UnreadableError {
  return new UnreadableError(reason, cause);
}

/** The machine-readable reason of an open failure. */
export function unreadableReason(err: unknown): string {
  return err instanceof UnreadableError ? err.reason : codeOf(err);
}

function codeOf(err: unknown): string {
  if (err instanceof BusError) return 'corrupt';
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[a-z_]{1,40}$/.test(code) ? code : 'corrupt';
}

/** Reported once per failed fetch of a partition, for an error metric (e.g. `signal_bus_unreadable_total`). */
export type UnreadableListener = (event: {
  readonly topic: string;
  readonly partition: number;
  readonly reason: string;
}) => void;
