import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createServer, readJsonBody, type SignalHttpServer, sendHttpError, sendJson } from '../src/index';

/**
 * The JSON body reader against hostile input, over a real HTTP server on 127.0.0.1: every case answers
 * with the API error contract and the right status, and nothing leaks into prototypes.
 */

const LIMIT = 1024;
const MAX_DEPTH = 8;
let server: SignalHttpServer;
let port: number;
/** Values the handler parsed, to prove what the application would have seen. */
const parsed: unknown[] = [];

const EventSchema = z.object({ event: z.string(), properties: z.object({ value: z.number() }).optional() });

beforeAll(async () => {
  server = createServer({
    handler: async (req, res) => {
      const url = req.url ?? '/';
      const options = { limitBytes: LIMIT, maxDepth: MAX_DEPTH };
      const result = url.startsWith('/schema')
        ? await readJsonBody(req, { ...options, schema: EventSchema })
        : await readJsonBody(req, {
            ...options,
            ...(url.startsWith('/remove') ? { forbiddenKeys: 'remove' as const } : {}),
            ...(url.startsWith('/beacon') ? { contentTypes: ['application/json', 'text/plain'] } : {}),
          });
      if (!result.ok) {
        sendHttpError(res, result.error);
        return;
      }
      parsed.push(result.value);
      sendJson(res, 200, { received: result.value });
    },
  });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server.close(100);
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** POSTs raw bytes. `chunked` streams them without a Content-Length, as a client hiding the size would. */
function post(
  body: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'application/json' },
  options: { path?: string; chunked?: boolean } = {},
): Promise<Answer> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: options.path ?? '/',
        headers: options.chunked ? headers : { ...headers, 'content-length': String(bytes.byteLength) },
      },
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
    req.on('error', reject);
    if (options.chunked) {
      Readable.from(
        (function* () {
          for (let i = 0; i < bytes.byteLength; i += 512) yield bytes.subarray(i, i + 512);
        })(),
      ).pipe(req);
    } else {
      req.end(bytes);
    }
  });
}

function errorBody(code: string) {
  return { error: { code, message: expect.any(String) } };
}

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

describe('readJsonBody: hostile input', () => {
  const table: Array<{
    name: string;
    send: () => Promise<Answer>;
    status: number;
    code: string;
  }> = [
    {
      name: 'a body over the limit announced by Content-Length',
      send: () => post(JSON.stringify({ blob: 'x'.repeat(LIMIT) })),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'a body over the limit streamed without Content-Length',
      send: () => post(JSON.stringify({ blob: 'x'.repeat(64 * LIMIT) }), undefined, { chunked: true }),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'a form body',
      send: () => post('a=1', { 'content-type': 'application/x-www-form-urlencoded' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'text/plain where only JSON is accepted',
      send: () => post('{"event":"x"}', { 'content-type': 'text/plain' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'no Content-Type at all',
      send: () => post('{"event":"x"}', {}),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a malformed Content-Type',
      send: () => post('{"event":"x"}', { 'content-type': 'application/json; charset' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a charset other than UTF-8',
      send: () => post('{"event":"x"}', { 'content-type': 'application/json; charset=iso-8859-1' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a gzip-encoded body (decompression bombs are not our problem)',
      send: () => post('{"event":"x"}', { 'content-type': 'application/json', 'content-encoding': 'gzip' }),
      status: 415,
      code: 'unsupported_media_type',
    },
    { name: 'malformed JSON', send: () => post('{"event": "x",}'), status: 400, code: 'invalid_json' },
    { name: 'an empty body', send: () => post(''), status: 400, code: 'invalid_json' },
    { name: 'two JSON documents', send: () => post('{} {}'), status: 400, code: 'invalid_json' },
    {
      name: 'bytes that are not UTF-8',
      send: () => post(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
      status: 400,
      code: 'invalid_encoding',
    },
    {
      name: 'an overlong UTF-8 encoding of "/"',
      send: () => post(Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])),
      status: 400,
      code: 'invalid_encoding',
    },
    {
      name: 'a lone UTF-16 surrogate encoded as UTF-8 (CESU)',
      send: () =>
        post(Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])),
      status: 400,
      code: 'invalid_encoding',
    },
    {
      name: 'nesting one level too deep',
      send: () => post(nested(MAX_DEPTH + 1)),
      status: 400,
      code: 'nesting_too_deep',
    },
    { name: 'very deep nesting', send: () => post(nested(500)), status: 400, code: 'nesting_too_deep' },
    {
      name: 'a top-level __proto__ key',
      send: () => post('{"__proto__":{"polluted":true},"event":"x"}'),
      status: 400,
      code: 'forbidden_key',
    },
    {
      name: 'a nested __proto__ key',
      send: () => post('{"properties":{"list":[{"__proto__":{"polluted":true}}]}}'),
      status: 400,
      code: 'forbidden_key',
    },
    {
      name: 'a __proto__ key spelled with \\u escapes',
      send: () => post('{"\\u005f\\u005fproto\\u005f\\u005f":{"polluted":true}}'),
      status: 400,
      code: 'forbidden_key',
    },
    {
      name: 'a constructor.prototype key',
      send: () => post('{"constructor":{"prototype":{"polluted":true}}}'),
      status: 400,
      code: 'forbidden_key',
    },
    {
      name: 'a body failing the schema',
      send: () => post('{"event":42}', undefined, { path: '/schema' }),
      status: 400,
      code: 'validation_failed',
    },
  ];

  for (const entry of table) {
    it(`answers ${entry.status} ${entry.code} to ${entry.name}`, async () => {
      const before = parsed.length;
      const answer = await entry.send();
      expect(answer.status).toBe(entry.status);
      expect(answer.body).toEqual(errorBody(entry.code));
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(parsed).toHaveLength(before);
    });
  }

  it('closes the connection after a 413 instead of reading the rest', async () => {
    const answer = await post(JSON.stringify({ blob: 'x'.repeat(64 * LIMIT) }), undefined, { chunked: true });
    expect(answer.headers.connection).toBe('close');
  });

  it('names the failing field in schema errors', async () => {
    const answer = await post('{"event":"x","properties":{"value":"nope"}}', undefined, { path: '/schema' });
    expect(answer.body).toEqual({
      error: { code: 'validation_failed', message: expect.stringContaining('properties.value') },
    });
  });

  it('never pollutes Object.prototype, even after merging what it parsed', async () => {
    await post('{"__proto__":{"polluted":true}}', undefined, { path: '/remove' });
    await post('{"a":{"constructor":{"prototype":{"polluted":true}}}}', undefined, { path: '/remove' });
    const naiveMerge = (target: Record<string, unknown>, source: unknown): void => {
      if (typeof source !== 'object' || source === null) return;
      for (const [key, value] of Object.entries(source)) {
        if (typeof value === 'object' && value !== null) {
          const next = (target[key] ?? {}) as Record<string, unknown>;
          target[key] = next;
          naiveMerge(next, value);
        } else {
          target[key] = value;
        }
      }
    };
    for (const value of parsed) naiveMerge({}, value);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

describe('readJsonBody: accepted input', () => {
  it('parses a valid body at exactly the limit and depth', async () => {
    const atDepth = nested(MAX_DEPTH - 1); // inside the top-level object: MAX_DEPTH levels in all
    const padded = `{"event":"x","pad":"${'y'.repeat(LIMIT - 27 - atDepth.length)}","n":${atDepth}}`;
    expect(Buffer.byteLength(padded)).toBe(LIMIT);
    const answer = await post(padded);
    expect(answer.status).toBe(200);
  });

  it('does not count brackets inside strings as nesting', async () => {
    const answer = await post(JSON.stringify({ text: `${'['.repeat(50)}\\"{{{{{{{{{{` }));
    expect(answer).toMatchObject({ status: 200 });
  });

  it('accepts a harmless "constructor" string key and UTF-8 text (with a BOM)', async () => {
    const body = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from('{"constructor":"x","name":"Zoë 😀"}'),
    ]);
    const answer = await post(body, { 'content-type': 'Application/JSON; charset=UTF-8' });
    expect(answer).toMatchObject({ status: 200, body: { received: { constructor: 'x', name: 'Zoë 😀' } } });
  });

  it('removes forbidden keys and keeps the rest when configured to', async () => {
    const answer = await post('{"__proto__":{"polluted":true},"event":"kept"}', undefined, {
      path: '/remove',
    });
    expect(answer).toMatchObject({ status: 200, body: { received: { event: 'kept' } } });
    expect(Object.keys((answer.body as { received: object }).received)).toEqual(['event']);
  });

  it('accepts text/plain where configured (navigator.sendBeacon sends it)', async () => {
    const answer = await post(
      '{"event":"beacon"}',
      { 'content-type': 'text/plain;charset=UTF-8' },
      { path: '/beacon' },
    );
    expect(answer).toMatchObject({ status: 200, body: { received: { event: 'beacon' } } });
  });

  it('returns the schema-typed value', async () => {
    const answer = await post('{"event":"x","properties":{"value":3},"extra":1}', undefined, {
      path: '/schema',
    });
    expect(answer).toMatchObject({
      status: 200,
      body: { received: { event: 'x', properties: { value: 3 } } },
    });
  });
});
