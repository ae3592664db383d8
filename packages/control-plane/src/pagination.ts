import { z } from 'zod';
import { ControlPlaneError } from './errors';

/** Management API list contract: limit default 50, at most 100. */
export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 100;

export interface PageRequest {
  readonly limit?: number | undefined;
  /** Opaque cursor from a previous page's `nextCursor`. */
  readonly cursor?: string | null | undefined;
}

export interface Page<T> {
  readonly data: T[];
  readonly nextCursor: string | null;
  readonly hasMore: boolean;
}

const cursorSchema = z.strictObject({ v: z.literal(1), after: z.string().min(1).max(64) });

/**
 * Cursors are opaque to clients (base64url JSON) and carry only the last id of the page: lists are keyset
 * paginated on the time-ordered id, so a page never skips or repeats rows when others are inserted.
 */
export function encodeCursor(afterId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: afterId }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new ControlPlaneError('invalid_input', 'cursor is not a cursor this API issued');
  }
  const result = cursorSchema.safeParse(parsed);
  if (!result.success) throw new ControlPlaneError('invalid_input', 'cursor is not a cursor this API issued');
  return result.data.after;
}

export interface ResolvedPage {
  readonly limit: number;
  readonly after: string | null;
}

export function resolvePage(page: PageRequest = {}): ResolvedPage {
  const limit = page.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new ControlPlaneError('invalid_input', `limit must be between 1 and ${MAX_PAGE_LIMIT}`);
  }
  const cursor = page.cursor ?? null;
  return { limit, after: cursor === null || cursor === '' ? null : decodeCursor(cursor) };
}

/** Cuts the `limit + 1` rows a keyset query fetched into a page. */
export function toPage<T extends { readonly id: string }>(rows: T[], limit: number): Page<T> {
  const hasMore = rows.length > limit;
  const data = hasMore ? rows.slice(0, limit) : rows;
  const last = data.at(-1);
  return { data, nextCursor: hasMore && last !== undefined ? encodeCursor(last.id) : null, hasMore };
}
