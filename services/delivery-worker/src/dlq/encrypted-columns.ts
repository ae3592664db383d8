import type { ControlPlaneCrypto, EncryptedColumn, EncryptedRowFacts } from '@signal/control-plane';
import type { EncryptionContext } from '@signal/crypto';
import { RETRY_PAYLOAD_COLUMN } from '../retry/encrypted-columns';

/**
 * What the DLQ index needs of `@signal/crypto`: the process's `CryptoService` (the same slice the control
 * plane uses to seal its columns).
 */
export type DlqCrypto = ControlPlaneCrypto;

/**
 * Where a dead letter's sealed part (`delivery_dlq.letter`: the original event, its partition key, the
 * details and the vendor's last answer) lives: its row, and the topic a replay publishes it to. A letter
 * copied to another row, or a row whose topic was changed, does not open. Data class `bus`: a dead letter is
 * a `dlq-events` message, sealed on the bus under the same class (ADR 0007).
 *
 * `id` is the row's `bigserial` in decimal; the zero-padded `id_text` the re-encryption job walks names the
 * same row (`rowId` is canonicalised through `BigInt`).
 */
export function deadLetterContext(id: string | bigint, topic: string): EncryptionContext {
  return {
    purpose: 'dlq-letter',
    dataClass: 'bus',
    table: 'delivery_dlq',
    column: 'letter',
    rowId: BigInt(id),
    extra: { topic },
  };
}

/**
 * The delivery worker's entry in the registry of encrypted columns (`@signal/control-plane`
 * `EncryptedColumn`): the re-encryption job walks it, `/health/crypto` and `signal-cli` count its records by
 * key id. `id_text` is the row id as zero-padded text (`delivery-worker/0003`), since the job walks a text
 * key; `topic` is bound into the context.
 */
export const DLQ_LETTER_COLUMN: EncryptedColumn = Object.freeze({
  name: 'delivery_dlq.letter',
  table: 'delivery_dlq',
  idColumn: 'id_text',
  column: 'letter',
  keyIdColumn: 'letter_key_id',
  contextColumns: Object.freeze(['topic']),
  context: (row: EncryptedRowFacts) => {
    const topic = row.columns.topic;
    if (typeof topic !== 'string') throw new TypeError('delivery_dlq.topic must be selected as text');
    return deadLetterContext(row.id, topic);
  },
});

/**
 * Every encrypted column the delivery worker owns, for the re-encryption job and key-usage counts: the DLQ
 * index's letters and the retry schedule's payloads (`retry/encrypted-columns.ts`). Both tables come with
 * `deliveryWorkerMigrations`, so a deployment that has one has the other.
 */
export const DELIVERY_WORKER_ENCRYPTED_COLUMNS: readonly EncryptedColumn[] = Object.freeze([
  DLQ_LETTER_COLUMN,
  RETRY_PAYLOAD_COLUMN,
]);
