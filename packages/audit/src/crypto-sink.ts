import type { CryptoAuditEvent, CryptoAuditSink } from '@signal/crypto';
import { type AuditAction, isCryptoAuditAction } from './actions';
import type { AuditLog } from './audit-log';
import type { AuditEntryInput } from './entry';
import { errorCode } from './error-code';
import type { AuditLogger } from './logger';

/** In-flight records beyond which new crypto events are dropped (and counted) rather than queued without bound. */
export const DEFAULT_MAX_PENDING = 1000;

export interface CryptoAuditSinkOptions {
  readonly maxPending?: number;
}

/** A `CryptoAuditSink` that writes to the audit log; `drain()` waits for what is in flight (shutdown). */
export interface AuditCryptoSink extends CryptoAuditSink {
  drain(): Promise<void>;
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/**
 * Event metadata as `changes`: each scalar field becomes `{old: null, new: value}` (objects and byte arrays
 * are never copied, whatever a future event carries). A key rotation reads as the current key id changing
 * from the previous one to the new one.
 */
function changesOf(event: CryptoAuditEvent): NonNullable<AuditEntryInput['changes']> {
  const changes: Record<string, { old: unknown; new: unknown }> = {};
  for (const [name, value] of Object.entries(event)) {
    if (name === 'action') continue;
    if (
      value !== null &&
      typeof value !== 'string' &&
      typeof value !== 'number' &&
      typeof value !== 'boolean'
    ) {
      continue;
    }
    changes[snakeCase(name)] = { old: null, new: value };
  }
  if (event.action === 'crypto.key_rotated') {
    delete changes.previous_key_id;
    changes.key_id = { old: event.previousKeyId, new: event.keyId };
  }
  return changes;
}

function keyIdOf(event: CryptoAuditEvent): string | null {
  return 'keyId' in event && typeof event.keyId === 'string' ? event.keyId : null;
}

/** Maps a crypto event to an audit entry: resource `crypto`, the key id as resource id, the system as actor. */
export function cryptoEventEntry(event: CryptoAuditEvent): AuditEntryInput {
  const action: AuditAction = event.action;
  return {
    action,
    user_id: null,
    user_email: null,
    resource_type: 'crypto',
    resource_id: keyIdOf(event),
    changes: changesOf(event),
  };
}

/**
 * Adapts the audit log to the crypto package's synchronous sink: each event is recorded in the background
 * (one small transaction), never throws into the crypto path, and a failure is logged with its code only.
 * Key ids are fingerprints, not key material; `changes` still goes through the log's masking, so a value
 * that looks like a key or ciphertext could not be recorded even if an event carried one.
 */
export function cryptoAuditSink(
  auditLog: Pick<AuditLog, 'record'>,
  logger: AuditLogger,
  options: CryptoAuditSinkOptions = {},
): AuditCryptoSink {
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const pending = new Set<Promise<void>>();
  let dropped = 0;

  return {
    record(event) {
      try {
        if (!isCryptoAuditAction(event.action)) {
          logger.warn(
            { action: String(event.action) },
            'audit: ignored an event that is not a crypto audit action',
          );
          return;
        }
        if (pending.size >= maxPending) {
          dropped++;
          // First drop of a burst, then every thousandth: an attack that floods decrypt failures must not also
          // flood the log.
          if (dropped % 1000 === 1) {
            logger.error(
              { action: event.action, dropped, maxPending },
              'audit: crypto events dropped, too many in flight',
            );
          }
          return;
        }
        const entry = cryptoEventEntry(event);
        const write = auditLog.record(entry).then(
          () => undefined,
          (err: unknown) => {
            logger.error({ action: event.action, code: errorCode(err) }, 'audit: crypto event not recorded');
          },
        );
        pending.add(write);
        void write.finally(() => pending.delete(write));
      } catch (err) {
        logger.error(
          { action: String(event.action), code: errorCode(err) },
          'audit: crypto event not recorded',
        );
      }
    },
    async drain() {
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}
