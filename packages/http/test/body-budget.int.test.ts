import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BodyBudget,
  createServer,
  readJsonBodyBytes,
  type SignalHttpServer,
  sendHttpError,
  sendJson,
} from '../src/index';

/**
 * The process-wide body budget over a real HTTP server on 127.0.0.1: bodies are reserved as they arrive
 * (a declared length at once), held until their response closes, and a body that does not fit is refused
 * with 503 without being read.
 */

const LIMIT = 1024;
const budget = new BodyBudget(2048);
let server: SignalHttpServer;
let port: number;
/** Requests to `/hold` wait here, body read, until the test lets them answer. */
const held: Array<() => void> = [];

beforeAll(async () => {
  server = createServer({
    handler: async (req, res) => {
      const result = await readJsonBodyBytes(req, { limitBytes: LIMIT, budget: { budget, until: res } });
      if (!result.ok) {
        sendHttpError(res, result.error);
        return;
      }
      if (req.url === '/hold') await new Promise<void>((resolve) => held.push(resolve));
      sendJson(res, 200, { bytes: result.value.byteLength });
    },
  });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  for (const release of held.splice(0)) release();
  await server.close(100);
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** POSTs `size` bytes of JSON; `chunked` hides the size. Resolves with the answer. */
function post(size: number, options: { path?: string; chunked?: boolean } = {}): Promise<Answer> {
  const body = Buffer.from(`"${'x'.repeat(size - 2)}"`);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (!options.chunked) headers['content-length'] = String(body.byteLength);
    const req = httpRequest(
      { host: '127.0.0.1', port, method: 'POST', path: options.path ?? '/', headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }),
        );
      },
    );
    // A refused body is not read: the server may close before the client finished writing.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
    );
    req.end(body);
  });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('BodyBudget', () => {
  it('holds each body until its response closes and refuses with 503 a body that does not fit', async () => {
    const first = post(1000, { path: '/hold' });
    await until(() => held.length === 1, 'the first body to be read');
    expect(budget.usedBytes).toBe(1000);
    const second = post(1000, { path: '/hold' });
    await until(() => held.length === 2, 'the second body to be read');
    expect(budget.usedBytes).toBe(2000);

    const refused = await post(100);
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({
      error: { code: 'unavailable', message: 'the server is holding too many request bodies; retry shortly' },
    });
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers.connection).toBe('close');
    // Hidden sizes are counted as they arrive.
    expect((await post(100, { chunked: true })).status).toBe(503);
    expect(budget.usedBytes).toBe(2000);

    held.shift()?.();
    expect((await first).status).toBe(200);
    await until(() => budget.usedBytes === 1000, 'the first reservation to be released');
    expect(await post(100)).toMatchObject({ status: 200, body: { bytes: 100 } });

    held.shift()?.();
    expect((await second).status).toBe(200);
    await until(() => budget.usedBytes === 0, 'every reservation to be released');
  });

  it('frees what a refused or abandoned body reserved', async () => {
    expect((await post(LIMIT + 10, { chunked: true })).status).toBe(413);
    expect(budget.usedBytes).toBe(0);

    // A sender that declares 1000 bytes, sends ten and disconnects.
    await new Promise<void>((resolve) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('error', () => undefined);
      req.write('"xxxxxxxxx', () => {
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 50);
      });
    });
    await until(() => budget.usedBytes === 0, 'the abandoned reservation to be released');
    expect((await post(2000 - 10)).status).toBe(413); // over one body's limit, not over the budget
    expect(await post(1000)).toMatchObject({ status: 200, body: { bytes: 1000 } });
  });
});

describe('BodyBudget limits', () => {
  it('refuses a budget or share that is not a positive whole number of bytes', () => {
    expect(() => new BodyBudget(0)).toThrow(RangeError);
    expect(() => new BodyBudget(1.5)).toThrow(RangeError);
    expect(() => new BodyBudget(100, 0)).toThrow(RangeError);
  });

  it('keeps each holder within its share, and forgets a holder once it holds nothing', () => {
    const shared = new BodyBudget(100, 40);
    expect(shared.tryReserve(30, 'a')).toBe(true);
    expect(shared.tryReserve(20, 'a')).toBe(false); // over a's share, though the budget has room
    expect(shared.heldBy('a')).toBe(30);
    expect(shared.tryReserve(40, 'b')).toBe(true);
    expect(shared.tryReserve(40, 'c')).toBe(false); // over the budget, though within c's share
    expect(shared.tryReserve(30, 'c')).toBe(true);
    expect(shared.usedBytes).toBe(100);
    shared.release(30, 'a');
    expect(shared.heldBy('a')).toBe(0);
    expect(shared.usedBytes).toBe(70);
    expect(shared.tryReserve(30)).toBe(true); // no holder: only the budget counts
  });
});
