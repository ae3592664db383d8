import { randomBytes } from 'node:crypto';
import type { CryptoAuditEvent } from '@signal/crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import { kmsMigrations } from '../src/dek-store';
import { KmsError, type KmsProvider, type WrapContext, type WrappedKey } from '../src/provider';
import { createLocalKmsProvider } from '../src/providers/local';

export type Mode = 'up' | 'down' | 'hang' | 'denied' | 'wrong-key';

/**
 * A provider typed against the port that forwards to a real one and can be switched to fail the way a KMS
 * fails (unreachable, hanging without honouring its signal, KEK revoked, answering with another key).
 */
export interface ControlledProvider extends KmsProvider {
  mode: Mode;
  readonly calls: { wrap: number; unwrap: number; rewrap: number };
}

export function controlled(inner: KmsProvider): ControlledProvider {
  const calls = { wrap: 0, unwrap: 0, rewrap: 0 };
  const provider: ControlledProvider = {
    mode: 'up',
    calls,
    name: inner.name,
    get kekId() {
      return inner.kekId;
    },
    async wrap(dek, context, options) {
      calls.wrap++;
      await fault(provider.mode);
      return inner.wrap(dek, context, options);
    },
    async unwrap(wrapped, context, options) {
      calls.unwrap++;
      await fault(provider.mode);
      if (provider.mode === 'wrong-key') return randomBytes(32);
      return inner.unwrap(wrapped, context, options);
    },
    async rewrap(wrapped, context, options) {
      calls.rewrap++;
      await fault(provider.mode);
      return inner.rewrap(wrapped, context, options);
    },
    close: () => inner.close(),
  };
  return provider;
}

async function fault(mode: Mode): Promise<void> {
  if (mode === 'down') throw new KmsError('local', 'kms_unavailable', 'connection refused (test)');
  if (mode === 'denied') throw new KmsError('local', 'kms_denied', 'KEK disabled (test)');
  if (mode === 'hang') await new Promise(() => undefined);
}

/** A provider that binds no context (as Azure Key Vault): only the DEK commitment catches a moved DEK row. */
export function contextBlind(inner: KmsProvider): KmsProvider {
  const fixed: WrapContext = { purpose: 'context-blind' };
  return {
    name: inner.name,
    kekId: inner.kekId,
    wrap: (dek, _context, options) => inner.wrap(dek, fixed, options),
    unwrap: (wrapped: WrappedKey, _context, options) => inner.unwrap(wrapped, fixed, options),
    rewrap: (wrapped: WrappedKey, _context, options) => inner.rewrap(wrapped, fixed, options),
    close: () => inner.close(),
  };
}

export function localProvider(key = randomBytes(32), previous?: Buffer): KmsProvider {
  return createLocalKmsProvider({ current: key, previous });
}

export async function migratedDb(): Promise<Database> {
  const db = await createDatabase({ kind: 'pglite' });
  await migrate(db, kmsMigrations);
  return db;
}

export function auditTrail(): { readonly events: CryptoAuditEvent[]; record(event: CryptoAuditEvent): void } {
  const events: CryptoAuditEvent[] = [];
  return { events, record: (event) => events.push(event) };
}
