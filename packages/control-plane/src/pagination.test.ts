import { describe, expect, it } from 'vitest';
import { ControlPlaneError } from './errors';
import { decodeCursor, encodeCursor, resolvePage, toPage } from './pagination';

describe('pagination', () => {
  it('round-trips opaque cursors and refuses anything it did not issue', () => {
    const cursor = encodeCursor('pl_0190a1b2c3d4e5f6a7b8c9d0e1f2');
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toBe('pl_0190a1b2c3d4e5f6a7b8c9d0e1f2');
    for (const bad of ['', '!!!', Buffer.from('{"v":2,"after":"x"}').toString('base64url'), 'e30']) {
      expect(() => decodeCursor(bad)).toThrow(ControlPlaneError);
    }
  });

  it('defaults the limit to 50 and caps it at 100', () => {
    expect(resolvePage()).toEqual({ limit: 50, after: null });
    expect(resolvePage({ limit: 100, cursor: null })).toEqual({ limit: 100, after: null });
    for (const limit of [0, 101, 1.5, -1]) expect(() => resolvePage({ limit })).toThrow(ControlPlaneError);
  });

  it('cuts limit + 1 rows into a page with a cursor at its last id', () => {
    const rows = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];
    const page = toPage(rows, 2);
    expect(page.data).toEqual([{ id: 'a' }, { id: 'b' }]);
    expect(page.hasMore).toBe(true);
    expect(decodeCursor(page.nextCursor ?? '')).toBe('b');
    expect(toPage(rows, 3)).toEqual({ data: rows, nextCursor: null, hasMore: false });
  });
});
