import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpError } from './errors';
import type { Logger } from './logger';
import { sendJson } from './respond';
import { createRouter } from './router';
import { createServer, type SignalHttpServer } from './server';

const logged: Array<{ obj: Record<string, unknown>; msg: string }> = [];
const logger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (obj, msg) => logged.push({ obj, msg }),
};

let server: SignalHttpServer;
let port: number;

beforeAll(async () => {
  const router = createRouter({ logger })
    .on('GET', '/v1/pipelines/:id', (_req, res, { params, query }) =>
      sendJson(res, 200, { id: params.id, tags: query.getAll('tag'), limit: query.get('limit') }),
    )
    .on(['PUT', 'DELETE'], '/v1/pipelines/:id', (_req, res) => sendJson(res, 204, null))
    .on('POST', '/v1/conflict', () => {
      throw new HttpError('conflict', 'a re-encryption job is already running', {
        headers: { 'x-job': 'j1' },
      });
    })
    .on('POST', '/v1/boom', () => {
      throw new Error('password=hunter2 leaked into an exception');
    })
    .on('POST', '/v1/async-boom', async () => {
      await Promise.resolve();
      throw new TypeError('cannot read properties of undefined');
    });
  server = createServer({ handler: (req, res) => router.handle(req, res) });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server.close(100);
});

function call(method: string, path: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; text: string }>(
    (resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('router', () => {
  it('decodes path parameters and keeps repeated query keys', async () => {
    const answer = await call('GET', '/v1/pipelines/pl%20one?tag=a&tag=b&limit=5');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ id: 'pl one', tags: ['a', 'b'], limit: '5' });
  });

  it('answers HEAD for GET routes, and 204 responses, without a body', async () => {
    const answer = await call('HEAD', '/v1/pipelines/x');
    expect(answer).toMatchObject({ status: 200, text: '' });
    const deleted = await call('DELETE', '/v1/pipelines/x');
    expect(deleted).toMatchObject({ status: 204, text: '' });
    expect(deleted.headers['content-length']).toBeUndefined();
  });

  it('answers 404 for unknown paths and 405 with Allow for a known path', async () => {
    const missing = await call('GET', '/v1/nothing');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text)).toEqual({
      error: { code: 'not_found', message: 'no route matches this path' },
    });

    const wrongMethod = await call('POST', '/v1/pipelines/x');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, HEAD, PUT, DELETE');
    expect(JSON.parse(wrongMethod.text).error.code).toBe('method_not_allowed');

    expect((await call('PROPFIND', '/v1/pipelines/x')).status).toBe(405);
    expect((await call('GET', '/v1/pipelines/x/')).status).toBe(404);
  });

  it('answers 400 for an undecodable URL', async () => {
    const answer = await call('GET', '/v1/pipelines/%zz');
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error.code).toBe('bad_request');
  });

  it('turns an HttpError into its status, code, message and headers', async () => {
    const answer = await call('POST', '/v1/conflict');
    expect(answer.status).toBe(409);
    expect(answer.headers['x-job']).toBe('j1');
    expect(JSON.parse(answer.text)).toEqual({
      error: { code: 'conflict', message: 'a re-encryption job is already running' },
    });
  });

  it('hides unexpected errors behind a generic 500 and logs them', async () => {
    for (const path of ['/v1/boom', '/v1/async-boom']) {
      const answer = await call('POST', path);
      expect(answer.status).toBe(500);
      expect(answer.text).toBe('{"error":{"code":"internal","message":"internal error"}}');
    }
    expect(logged.map((entry) => entry.msg)).toEqual(['request handler failed', 'request handler failed']);
    expect(logged[0]?.obj.err).toBeInstanceOf(Error);
  });
});
