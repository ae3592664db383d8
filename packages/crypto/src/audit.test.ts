import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type CryptoAuditEvent, loggingAuditSink } from './audit';
import type { EncryptionContext } from './context';
import { type CryptoOperationResult, createCryptoService } from './crypto-service';
import { CryptoError } from './errors';
import { createKeyring } from './keyring';

const CONTEXT: EncryptionContext = {
  purpose: 'identity-trait',
  dataClass: 'identity',
  table: 'identity_traits',
  column: 'value',
  rowId: 1234,
};

function recorder(): { events: CryptoAuditEvent[]; record(event: CryptoAuditEvent): void } {
  const events: CryptoAuditEvent[] = [];
  return { events, record: (event) => events.push(event) };
}

/** Every textual form a secret could leak in. */
function forms(bytes: Buffer): string[] {
  return [bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url')].map((s) =>
    s.slice(0, 24),
  );
}

describe('crypto audit events', () => {
  it('records crypto.key_loaded once, with ids and provider, in single-key mode', () => {
    const key = randomBytes(32);
    const sink = recorder();
    const service = createCryptoService({ keyring: createKeyring({ current: key }), audit: sink });
    expect(sink.events).toEqual([
      {
        action: 'crypto.key_loaded',
        provider: 'local',
        keyId: service.keyring.currentKeyId,
        previousKeyId: null,
        dualKeyMode: false,
      },
    ]);
  });

  it('records crypto.key_rotated when a previous key puts the process in dual-key mode', () => {
    const sink = recorder();
    const service = createCryptoService({
      keyring: createKeyring({ current: randomBytes(32), previous: randomBytes(32) }),
      audit: sink,
    });
    const { currentKeyId, previousKeyId } = service.keyring;
    expect(sink.events.map((event) => event.action)).toEqual(['crypto.key_loaded', 'crypto.key_rotated']);
    expect(sink.events[1]).toEqual({
      action: 'crypto.key_rotated',
      provider: 'local',
      keyId: currentKeyId,
      previousKeyId,
    });
  });

  it('records crypto.decrypt_failed for every failed open, with code and location only', () => {
    const current = randomBytes(32);
    const previous = randomBytes(32);
    const sink = recorder();
    const service = createCryptoService({ keyring: createKeyring({ current, previous }), audit: sink });
    const plaintext = Buffer.from('very secret trait value');
    const sealed = service.seal(plaintext, CONTEXT);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const stranger = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });

    const failures: [() => unknown, string][] = [
      [() => service.open(sealed, { ...CONTEXT, rowId: 1235 }), 'commitment_mismatch'],
      [() => service.open(tampered, CONTEXT), 'authentication_failed'],
      [() => service.open(stranger.seal(plaintext, CONTEXT), CONTEXT), 'unknown_key_id'],
      [() => service.open(sealed.subarray(0, 40), CONTEXT), 'malformed'],
      [() => service.openText('not a ciphertext', CONTEXT), 'malformed'],
      [() => service.openText(`v7.${sealed.toString('base64url')}`, CONTEXT), 'unknown_version'],
    ];
    const errors: CryptoError[] = [];
    for (const [run, code] of failures) {
      let caught: unknown;
      try {
        run();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CryptoError);
      expect((caught as CryptoError).code).toBe(code);
      errors.push(caught as CryptoError);
    }

    const failed = sink.events.filter((event) => event.action === 'crypto.decrypt_failed');
    expect(failed.map((event) => ('code' in event ? event.code : ''))).toEqual(
      failures.map(([, code]) => code),
    );
    expect(failed[0]).toEqual({
      action: 'crypto.decrypt_failed',
      code: 'commitment_mismatch',
      keyId: service.keyring.currentKeyId,
      purpose: 'identity-trait',
      dataClass: 'identity',
      table: 'identity_traits',
      column: 'value',
      rowId: '1235',
    });
    expect(failed[2]).toMatchObject({ code: 'unknown_key_id', keyId: stranger.keyring.currentKeyId });
    expect(failed[3]).toMatchObject({ code: 'malformed', keyId: null });
    expect(failed[4]).toMatchObject({ code: 'malformed', keyId: null });

    // Nothing secret in any event or error message: not the keys, the plaintext or the ciphertext.
    const serialised = JSON.stringify(sink.events) + errors.map((error) => error.message).join('\n');
    const secrets = [current, previous, plaintext, sealed.subarray(17)];
    for (const secret of secrets) for (const form of forms(secret)) expect(serialised).not.toContain(form);
    expect(serialised).not.toContain(plaintext.toString('utf8'));
  });

  it('logs through loggingAuditSink: decrypt failures as warnings, key events as info', () => {
    const lines: { level: string; obj: object; msg: string }[] = [];
    const logger = {
      info: (obj: object, msg: string) => lines.push({ level: 'info', obj, msg }),
      warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj, msg }),
    };
    const key = randomBytes(32);
    const service = createCryptoService({
      keyring: createKeyring({ current: key }),
      audit: loggingAuditSink(logger),
    });
    expect(() => service.open(Buffer.from([1, 2]), CONTEXT)).toThrow(CryptoError);
    expect(lines.map(({ level, msg }) => [level, msg])).toEqual([
      ['info', 'crypto.key_loaded'],
      ['warn', 'crypto.decrypt_failed'],
    ]);
    expect(lines[0]?.obj).toEqual({
      audit: expect.objectContaining({ keyId: service.keyring.currentKeyId }),
    });
    expect(JSON.stringify(lines)).not.toContain(key.toString('hex'));
  });
});

describe('operation counter (metrics seam)', () => {
  it('reports op, a bounded key id label and the result of every seal and open', () => {
    const calls: [string, string, CryptoOperationResult][] = [];
    const service = createCryptoService({
      keyring: createKeyring({ current: randomBytes(32) }),
      onOperation: (op, keyId, result) => calls.push([op, keyId, result]),
    });
    const id = service.keyring.currentKeyId;
    const sealed = service.seal('x', CONTEXT);
    service.open(sealed, CONTEXT);
    expect(() => service.open(sealed, { ...CONTEXT, column: 'other' })).toThrow(CryptoError);
    const foreign = Buffer.from(sealed);
    randomBytes(16).copy(foreign, 1);
    expect(() => service.open(foreign, CONTEXT)).toThrow(CryptoError);
    expect(() => service.open(Buffer.from([1, 0, 0]), CONTEXT)).toThrow(CryptoError);
    expect(() => service.seal('x', { purpose: '' })).toThrow(CryptoError);
    expect(calls).toEqual([
      ['seal', id, 'success'],
      ['open', id, 'success'],
      ['open', id, 'commitment_mismatch'],
      ['open', 'unknown', 'unknown_key_id'],
      ['open', 'none', 'malformed'],
      ['seal', id, 'invalid_context'],
    ]);
  });
});
