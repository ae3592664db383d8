import type { ControlPlaneCrypto, EncryptedColumn, EncryptedRowFacts } from '@signal/control-plane';
import type { EncryptionContext } from '@signal/crypto';

/** What the retry schedule needs of `@signal/crypto`: the process's `CryptoService` (as the DLQ index). */
export type RetryCrypto = ControlPlaneCrypto;

/**
 * Where a scheduled retry's sealed part (`delivery_retries.payload`: the delivery message to re-publish, its
 * partition key and the last error) lives: the row's natural key, the integration and the event's message id.
 * The integration is also where the scheduler publishes it (`delivery-{integration}`), so a payload copied to
 * another row, or a row moved to another integration, does not open. Both are known before the insert and do
 * not change when a later attempt replaces the row (upsert on that key): no id to draw first, no round trip.
 * Data class `bus`: the payload is a `delivery-*` message, sealed on the bus under the same class (ADR 0007).
 */
export function retryPayloadContext(integrationId: string, messageId: string): EncryptionContext {
  return {
    purpose: 'delivery-retry',
    dataClass: 'bus',
    table: 'delivery_retries',
    column: 'payload',
    rowId: messageId,
    extra: { integration: integrationId },
  };
}

/** A context column the registry selected, which must be text. */
function textColumn(row: EncryptedRowFacts, name: string): string {
  const value = row.columns[name];
  if (typeof value !== 'string') throw new TypeError(`delivery_retries.${name} must be selected as text`);
  return value;
}

/**
 * The retry schedule's entry in the registry of encrypted columns (`@signal/control-plane` `EncryptedColumn`):
 * the re-encryption job walks it, `/health/crypto` and `signal-cli` count its records by key id. The job pages
 * over one text key: `id_text` (`delivery-worker/0004`) is `integration_id || '/' || message_id`, unique since
 * integration ids never hold a `/`; the context is rebuilt from the two columns themselves.
 */
export const RETRY_PAYLOAD_COLUMN: EncryptedColumn = Object.freeze({
  name: 'delivery_retries.payload',
  table: 'delivery_retries',
  idColumn: 'id_text',
  column: 'payload',
  keyIdColumn: 'payload_key_id',
  contextColumns: Object.freeze(['integration_id', 'message_id']),
  context: (row: EncryptedRowFacts) =>
    retryPayloadContext(textColumn(row, 'integration_id'), textColumn(row, 'message_id')),
});
