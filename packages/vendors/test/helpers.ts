import { createHash } from 'node:crypto';
import type { Logger } from '@signal/http';
import { hashFor, normalizeFor, type VendorId } from '@signal/pii';

/** The buyer of the purchase fixture lives in GB: phone numbers are completed with that hint. */
const GB = { country: 'GB' } as const;

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** What `@signal/pii` hashes for a field of a vendor profile (the digest the request must carry). */
export function hashed(vendor: VendorId, field: string, value: string): string {
  const digest = hashFor(vendor, field, value, GB);
  if (digest === null) throw new Error(`${vendor}.${field} does not hash ${JSON.stringify(value)}`);
  return digest;
}

/** What `@signal/pii` sends in clear for a clear-text field of a vendor profile. */
export function clear(vendor: VendorId, field: string, value: string): string {
  const result = normalizeFor(vendor, field, value, GB);
  if (!result.ok || result.hash !== null)
    throw new Error(`${vendor}.${field} is not a clear field for this value`);
  return result.normalized;
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

/** A logger that keeps every line, to assert what reaches logs (and what never does). */
export function recordingLogger(): Logger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (obj: Record<string, unknown>, msg: string): void => {
      lines.push({ level, obj, msg });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
