import type { DataClass } from './context';
import type { CryptoErrorCode } from './errors';

/**
 * Crypto audit events (names are a contract). Metadata only: key ids are HKDF fingerprints, never key bytes;
 * decrypt failures name the code and where the ciphertext lives, never plaintext or ciphertext.
 */
export type CryptoAuditEvent =
  | {
      readonly action: 'crypto.key_loaded';
      readonly provider: string;
      readonly keyId: string;
      readonly previousKeyId: string | null;
      readonly dualKeyMode: boolean;
    }
  | {
      /** Dual-key mode entered: a process started with a previous key beside the current one. */
      readonly action: 'crypto.key_rotated';
      readonly provider: string;
      readonly keyId: string;
      readonly previousKeyId: string;
    }
  | {
      readonly action: 'crypto.decrypt_failed';
      readonly code: CryptoErrorCode;
      /** The key id the ciphertext names, when it could be read; null for unreadable input. */
      readonly keyId: string | null;
      readonly purpose: string;
      readonly dataClass: DataClass | null;
      readonly table: string | null;
      readonly column: string | null;
      readonly rowId: string | null;
    }
  | {
      /**
       * A KMS call failed (or a DEK it returned failed its commitment). `staleServed` says whether decrypts
       * went on from a cached DEK inside the outage grace window. Ids only: never key or wrapped bytes.
       */
      readonly action: 'crypto.kms_error';
      readonly provider: string;
      readonly operation: 'wrap' | 'unwrap' | 'rewrap' | 'canary';
      readonly code: string;
      /** The DEK id (the v1 key id), when the call concerned one. */
      readonly keyId: string | null;
      readonly staleServed: boolean;
    };

export type CryptoAuditAction = CryptoAuditEvent['action'];

/**
 * Where audit events go. `record` is called synchronously on the crypto path: implementations should queue,
 * not block. If it throws, the error propagates (a decrypt then still fails: nothing is returned).
 */
export interface CryptoAuditSink {
  record(event: CryptoAuditEvent): void;
}

/** The slice of a pino-compatible logger the logging sink needs. */
export interface AuditLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Writes audit events to the log until the audit store exists: decrypt and KMS failures as warnings. */
export function loggingAuditSink(logger: AuditLogger): CryptoAuditSink {
  return {
    record(event) {
      const entry = { audit: event };
      if (event.action === 'crypto.decrypt_failed' || event.action === 'crypto.kms_error') {
        logger.warn(entry, event.action);
      } else logger.info(entry, event.action);
    },
  };
}
