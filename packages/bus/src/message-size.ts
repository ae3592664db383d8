import { DEFAULT_MAX_PLAINTEXT_BYTES, sealedTextLength } from '@signal/crypto';
import { BusError } from './errors';
import type { OutgoingMessage } from './port';

/**
 * How big one message may be, and how producers stay under it (`Bus.maxMessageBytes`).
 *
 * A message is measured as the UTF-8 bytes of its key and value plus, per header, its name, its value and 8
 * bytes of framing. A publish holding a message over its bus's limit is refused whole with
 * `bus_invalid_message` (non-retryable): sending it again would fail the same way. A consumer that relays
 * what it consumed must therefore never produce such a message, or its partition stops on that batch for
 * ever. Producers check first (`fitsBus`), and keep `DEAD_LETTER_RESERVE_BYTES` free so that whatever they
 * publish can still be dead-lettered.
 */
export function messageBytes(message: OutgoingMessage): number {
  let bytes = Buffer.byteLength(message.key) + Buffer.byteLength(message.value);
  for (const name in message.headers) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(message.headers[name] ?? '') + 8;
  }
  return bytes;
}

/**
 * Refuses a publish holding a message over `limit` before anything of it is written: `bus_invalid_message`,
 * naming the message's position and size, never its content.
 */
export function refuseOversized(messages: readonly OutgoingMessage[], limit: number): void {
  messages.forEach((message, index) => {
    const over = oversize(message, limit, 0);
    if (over === undefined) return;
    throw new BusError(
      'bus_invalid_message',
      `message ${index} is ${over.bytes} bytes, over this bus's limit of ${limit} bytes per message`,
    );
  });
}

/**
 * What a dead letter (`deadLetter`, `dlq-events`) adds to the message it wraps, at most: `details` and the
 * last response body (4,096 characters each, up to 6 bytes apiece once JSON-escaped), the original key
 * (1,024), the error code, topic, integration id, timestamps and the JSON around them. An event that fits the
 * bus with this much to spare can always be dead-lettered, and a dead letter is what a consumer falls back
 * to when it cannot relay an event.
 */
export const DEAD_LETTER_RESERVE_BYTES = 64 * 1024;

/**
 * Undefined when `message` fits `limit` (a bus's `maxMessageBytes`) with `reserve` bytes to spare; else its
 * size and the room it had, for the refusal's message. Cheap for the usual message: a string of n UTF-16
 * code units has at most 3n UTF-8 bytes, so only a value within a third of the room is measured.
 */
export function oversize(
  message: OutgoingMessage,
  limit: number,
  reserve = DEAD_LETTER_RESERVE_BYTES,
): { readonly bytes: number; readonly room: number } | undefined {
  const room = limit - reserve;
  if (message.headers === undefined && (message.key.length + message.value.length) * 3 <= room) {
    return undefined;
  }
  const bytes = messageBytes(message);
  return bytes <= room ? undefined : { bytes, room };
}

/** Whether `message` fits `limit` with `reserve` bytes to spare (`oversize` is undefined). */
export function fitsBus(
  message: OutgoingMessage,
  limit: number,
  reserve = DEAD_LETTER_RESERVE_BYTES,
): boolean {
  return oversize(message, limit, reserve) === undefined;
}

/**
 * The PostgreSQL bus: one message alone in its segment must stay under the crypto service's plaintext cap
 * (the segment is sealed whole), with room for the segment framing (a format byte and five varints).
 */
export const POSTGRES_MAX_MESSAGE_BYTES = DEFAULT_MAX_PLAINTEXT_BYTES - 4096;

/**
 * What a Kafka record adds to a produce request beyond its key, value and headers (record and batch framing,
 * varints, attributes), rounded up: the chunks stay under the broker's limit with room to spare.
 */
export const KAFKA_RECORD_OVERHEAD_BYTES = 64;

/**
 * The Kafka bus: the largest message whose record, value sealed in the text form, fits one produce request of
 * `maxRequestBytes`. Sealing grows only the value (by a third, plus the ciphertext header), so the worst case
 * for a given size is a message that is all value.
 */
export function kafkaMaxMessageBytes(maxRequestBytes: number): number {
  const fits = (bytes: number) => KAFKA_RECORD_OVERHEAD_BYTES + sealedTextLength(bytes) <= maxRequestBytes;
  let low = 0;
  let high = maxRequestBytes;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(mid)) low = mid;
    else high = mid - 1;
  }
  // Never above what one seal accepts, however large the produce requests.
  return Math.min(low, POSTGRES_MAX_MESSAGE_BYTES);
}
