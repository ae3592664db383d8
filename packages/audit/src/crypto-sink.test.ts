import { randomBytes } from 'node:crypto';
import type { CryptoAuditAction } from '@signal/crypto';
import { createLogger } from '@signal/telemetry';
import { describe, expect, it } from 'vitest';
import { AUDIT_ACTIONS, type AuditAction, CRYPTO_AUDIT_ACTIONS } from './actions';
import type { AuditLog } from './audit-log';
import { captureLogger } from './audit-log.suite';
import { cryptoAuditSink, cryptoEventEntry } from './crypto-sink';
import type { AuditEntry, AuditEntryInput } from './entry';
import { AuditError } from './errors';
import type { AuditLogger } from './logger';

/** A stand-in for the audit log's write side, typed against it, that the test resolves or fails by hand. */
function manualRecorder() {
  const calls: { entry: AuditEntryInput; resolve: () => void; reject: (err: unknown) => void }[] = [];
  const log: Pick<AuditLog, 'record'> = {
    record: (entry) =>
      new Promise<AuditEntry>((resolve, reject) => {
        calls.push({ entry, resolve: () => resolve({} as AuditEntry), reject });
      }),
  };
  return { log, calls };
}

describe('crypto audit sink', () => {
  it('covers every crypto action of the contract and of the crypto package', () => {
    const fromCrypto: readonly CryptoAuditAction[] = [
      'crypto.key_loaded',
      'crypto.key_rotated',
      'crypto.decrypt_failed',
    ];
    const asAudit: readonly AuditAction[] = fromCrypto;
    for (const action of [...asAudit, ...CRYPTO_AUDIT_ACTIONS]) expect(AUDIT_ACTIONS).toContain(action);
    expect(CRYPTO_AUDIT_ACTIONS).toEqual([
      'crypto.key_loaded',
      'crypto.key_rotated',
      'crypto.reencrypt_started',
      'crypto.reencrypt_completed',
      'crypto.decrypt_failed',
      'crypto.kms_error',
    ]);
  });

  it('maps an event to a system entry about the key, metadata only', () => {
    const keyId = randomBytes(16).toString('hex');
    expect(
      cryptoEventEntry({
        action: 'crypto.decrypt_failed',
        code: 'authentication_failed',
        keyId,
        purpose: 'identity',
        dataClass: 'identity',
        table: 'identity_traits',
        column: 'traits',
        rowId: '7',
      }),
    ).toEqual({
      action: 'crypto.decrypt_failed',
      user_id: null,
      user_email: null,
      resource_type: 'crypto',
      resource_id: keyId,
      changes: {
        code: { old: null, new: 'authentication_failed' },
        key_id: { old: null, new: keyId },
        purpose: { old: null, new: 'identity' },
        data_class: { old: null, new: 'identity' },
        table: { old: null, new: 'identity_traits' },
        column: { old: null, new: 'traits' },
        row_id: { old: null, new: '7' },
      },
    });
  });

  it('never copies objects or bytes an event might carry', () => {
    const event = {
      action: 'crypto.key_loaded' as const,
      provider: 'local',
      keyId: 'k',
      previousKeyId: null,
      dualKeyMode: false,
      key: randomBytes(32),
      detail: { nested: 'x' },
    };
    const entry = cryptoEventEntry(event);
    expect(Object.keys(entry.changes ?? {}).sort()).toEqual([
      'dual_key_mode',
      'key_id',
      'previous_key_id',
      'provider',
    ]);
  });

  it('records in the background, never throws into the caller, and logs failures by code only', async () => {
    const { log, calls } = manualRecorder();
    const logger = captureLogger();
    const sink = cryptoAuditSink(log, logger);
    expect(() =>
      sink.record({ action: 'crypto.key_rotated', provider: 'local', keyId: 'new', previousKeyId: 'old' }),
    ).not.toThrow();
    expect(calls).toHaveLength(1);
    let drained = false;
    const draining = sink.drain().then(() => {
      drained = true;
    });
    await Promise.resolve();
    expect(drained).toBe(false);
    calls[0]?.reject(new AuditError('audit.write_failed', 'audit entry crypto.key_rotated was not recorded'));
    await draining;
    expect(logger.lines).toEqual([
      {
        level: 'error',
        obj: { action: 'crypto.key_rotated', code: 'audit.write_failed' },
        msg: 'audit: crypto event not recorded',
      },
    ]);
  });

  it('drops events beyond the in-flight bound instead of queueing without limit', async () => {
    const { log, calls } = manualRecorder();
    const logger = captureLogger();
    const sink = cryptoAuditSink(log, logger, { maxPending: 2 });
    const event = {
      action: 'crypto.decrypt_failed' as const,
      code: 'malformed' as const,
      keyId: null,
      purpose: 'credentials',
      dataClass: null,
      table: null,
      column: null,
      rowId: null,
    };
    for (let i = 0; i < 5; i++) sink.record(event);
    expect(calls).toHaveLength(2);
    expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
    for (const call of calls) call.resolve();
    await sink.drain();
    sink.record(event);
    expect(calls).toHaveLength(3);
  });

  it('takes the project logger as is', () => {
    const logger: AuditLogger = createLogger({ level: 'silent', name: 'audit-test' });
    expect(() => cryptoAuditSink(manualRecorder().log, logger)).not.toThrow();
  });
});
