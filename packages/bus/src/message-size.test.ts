import { randomBytes } from 'node:crypto';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { describe, expect, it } from 'vitest';
import { recordBytes } from './kafka/chunks';
import {
  fitsBus,
  kafkaMaxMessageBytes,
  messageBytes,
  POSTGRES_MAX_MESSAGE_BYTES,
  refuseOversized,
} from './message-size';
import { messageContext } from './sealing';

describe('messageBytes and fitsBus', () => {
  it('count UTF-8 bytes of key, value and headers (8 bytes of framing per header)', () => {
    expect(messageBytes({ key: 'é', value: '€x' })).toBe(2 + 4);
    expect(messageBytes({ key: 'k', value: 'v', headers: { h: 'vv' } })).toBe(1 + 1 + 1 + 2 + 8);
  });

  it('measure the text near the limit exactly, whatever its characters', () => {
    // 1,000 three-byte characters: 1,000 UTF-16 units, 3,000 bytes.
    const euros = { key: 'k', value: '€'.repeat(1000) };
    expect(fitsBus(euros, 3001, 0)).toBe(true);
    expect(fitsBus(euros, 3000, 0)).toBe(false);
    // A reserve is room kept free below the limit.
    expect(fitsBus(euros, 3001 + 100, 100)).toBe(true);
    expect(fitsBus(euros, 3000 + 100, 100)).toBe(false);
    // Headers always count.
    expect(fitsBus({ key: 'k', value: 'v', headers: { name: 'x'.repeat(100) } }, 100, 0)).toBe(false);
  });

  it('refuseOversized names the position and size of the first message over, never its content', () => {
    const messages = [
      { key: 'a', value: 'fine' },
      { key: 'b', value: `person@example.com${'x'.repeat(200)}` },
    ];
    expect(() => refuseOversized(messages, 100)).toThrow(
      expect.objectContaining({
        code: 'bus_invalid_message',
        retryable: false,
        message: "message 1 is 219 bytes, over this bus's limit of 100 bytes per message",
      }),
    );
    expect(() => refuseOversized(messages, 219)).not.toThrow();
  });
});

describe('kafkaMaxMessageBytes', () => {
  const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
  const context = messageContext({ topic: 't', partition: 0 });

  it('never exceeds what one seal accepts', () => {
    expect(kafkaMaxMessageBytes(256 * 1024 * 1024)).toBe(POSTGRES_MAX_MESSAGE_BYTES);
  });

  it.each([16_384, 100_000, 1_000_000])(
    'is the largest message whose sealed record fits a %i-byte produce request',
    (maxRequestBytes) => {
      const max = kafkaMaxMessageBytes(maxRequestBytes);
      const sealedRecord = (bytes: number) =>
        recordBytes({ key: '', value: crypto.sealText(randomBytes(bytes), context), partition: 0 });
      expect(sealedRecord(max)).toBeLessThanOrEqual(maxRequestBytes);
      expect(sealedRecord(max + 1)).toBeGreaterThan(maxRequestBytes);
      // Sealing grows only the value: a key or headers instead of value bytes never make it larger.
      const withKey = recordBytes({
        key: 'k'.repeat(1000),
        value: crypto.sealText(randomBytes(max - 1000), context),
        partition: 0,
      });
      expect(withKey).toBeLessThanOrEqual(maxRequestBytes);
    },
  );
});
