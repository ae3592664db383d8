import {
  type DlqMessage,
  dlqMessageSchema,
  integrationIdSchema,
  isoTimestampSchema,
  ORIGINAL_JSON_LIMITS,
} from '@signal/events';

/** The fields `publishableLetter` had to change (for the log line; never values). */
export type RepairedField =
  | 'error'
  | 'details'
  | 'original'
  | 'originalKey'
  | 'integrationId'
  | 'attempts'
  | 'lastResponse'
  | 'failedAt';

const shape = dlqMessageSchema.shape;

function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}

function isHttpStatus(status: unknown): status is number {
  return Number.isInteger(status) && (status as number) >= 100 && (status as number) <= 599;
}

function repairLastResponse(
  last: NonNullable<DlqMessage['lastResponse']>,
): DlqMessage['lastResponse'] | undefined {
  const out: NonNullable<DlqMessage['lastResponse']> = {};
  if (isHttpStatus(last.status)) out.status = last.status;
  else if (last.status !== undefined && last.errorCode === undefined) {
    out.errorCode = clip(`http_status_${String(last.status)}`, 128);
  }
  if (typeof last.body === 'string' && last.body !== '') out.body = clip(last.body, 4096);
  if (typeof last.errorCode === 'string' && last.errorCode !== '') out.errorCode = clip(last.errorCode, 128);
  return Object.keys(out).length === 0 ? undefined : out;
}

/**
 * A dead letter that `publishTo(dlq-events)` accepts. Building one must never fail: a letter that does not
 * match the schema makes the publish throw, the handler fail and its batch be redelivered (and re-sent to the
 * vendor) on every attempt, forever. Valid letters are returned as they are; otherwise each field is brought
 * into the schema on its own (clipped, or dropped when optional and meaningless), keeping everything the
 * schema can hold. `topic` comes from the bus and always matches.
 */
export function publishableLetter(letter: DlqMessage): {
  readonly letter: DlqMessage;
  readonly repaired: readonly RepairedField[];
} {
  if (dlqMessageSchema.safeParse(letter).success) return { letter, repaired: [] };
  const repaired: RepairedField[] = [];
  const error = shape.error.safeParse(letter.error).success
    ? letter.error
    : clip(typeof letter.error === 'string' && letter.error !== '' ? letter.error : 'unknown_error', 128);
  if (error !== letter.error) repaired.push('error');
  let details = shape.details.safeParse(letter.details).success
    ? letter.details
    : clip(String(letter.details), 4096);
  if (details !== letter.details) repaired.push('details');
  let original = letter.original;
  if (!shape.original.safeParse(original).success) {
    // Kept as its JSON text (what `deadLetter` does with a value it cannot parse), cut to the bound.
    let text: string;
    try {
      text = JSON.stringify(original) ?? 'null';
    } catch {
      text = String(original);
    }
    original = clip(text, ORIGINAL_JSON_LIMITS.maxStringLength);
    if (original.length < text.length) details = clip(`${details} (original truncated)`, 4096);
    repaired.push('original');
  }
  const out: DlqMessage = {
    error,
    details,
    original,
    topic: letter.topic,
    failedAt: letter.failedAt,
  };
  if (letter.originalKey !== undefined) {
    out.originalKey = clip(letter.originalKey, 1024);
    if (out.originalKey !== letter.originalKey) repaired.push('originalKey');
  }
  if (letter.integrationId !== undefined) {
    if (integrationIdSchema.safeParse(letter.integrationId).success) out.integrationId = letter.integrationId;
    else repaired.push('integrationId');
  }
  if (letter.attempts !== undefined) {
    if (shape.attempts.safeParse(letter.attempts).success) out.attempts = letter.attempts;
    else {
      if (Number.isFinite(letter.attempts)) {
        out.attempts = Math.min(1000, Math.max(0, Math.trunc(letter.attempts)));
      }
      repaired.push('attempts');
    }
  }
  if (letter.lastResponse !== undefined) {
    if (shape.lastResponse.safeParse(letter.lastResponse).success) out.lastResponse = letter.lastResponse;
    else {
      const last = repairLastResponse(letter.lastResponse);
      if (last !== undefined) out.lastResponse = last;
      repaired.push('lastResponse');
    }
  }
  if (!isoTimestampSchema.safeParse(letter.failedAt).success) {
    out.failedAt = new Date().toISOString();
    repaired.push('failedAt');
  }
  return { letter: out, repaired };
}
