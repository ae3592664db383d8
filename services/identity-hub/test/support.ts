import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { type CanonicalEvent, canonicalEventSchema, type JsonValue } from '@signal/events';
import { createRouter, createServer, type Router } from '@signal/http';
import type { IdentityHubLogger, LinkedDomainSource, PipelineRef, PipelineResolver } from '../src/ports';

/** A browser pipeline key of the demo pipeline (the shape the gateway issues). */
export const PIPELINE_KEY = 'dk_test_4f9c2a7b1e3d5f6a8c0b2d4e';
export const DEMO_PIPELINE: PipelineRef = { orgId: 'org_demo', pipelineId: 'pl_demo' };
export const ANONYMOUS_ID = '0f8e2d1c-7b6a-4c5d-9e8f-1a2b3c4d5e6f';

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string;
}

/** A logger that keeps what it is told, so tests can check what is (and is not) logged. */
export function recordingLogger(): IdentityHubLogger & { readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (obj: object, msg: string) => {
    entries.push({ level, obj, msg });
  };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A browser pipeline key of a pipeline of another org (the cross-tenant tests). */
export const OTHER_PIPELINE_KEY = 'dk_test_9a8b7c6d5e4f3a2b1c0d9e8f';
export const OTHER_PIPELINE: PipelineRef = { orgId: 'org_other', pipelineId: 'pl_other' };

/** A further pipeline of the in-memory directory: its key, what the key opens, its linked domains. */
export interface DirectoryEntry {
  readonly key: string;
  readonly ref: PipelineRef;
  linked: string[];
}

/**
 * The control plane's answers, in memory: the demo pipeline (whose linked domains a test may change) and,
 * optionally, further pipelines (of the same or another org).
 */
export function inMemoryPipelines(
  linked: string[],
  others: DirectoryEntry[] = [],
): PipelineResolver & LinkedDomainSource & { linked: string[]; failing: boolean; others: DirectoryEntry[] } {
  const directory = {
    linked,
    failing: false,
    others,
    async byKey(key: string) {
      if (directory.failing) throw new Error('control plane unavailable');
      if (key === PIPELINE_KEY) return DEMO_PIPELINE;
      return directory.others.find((o) => o.key === key)?.ref ?? null;
    },
    async linkedDomains(pipelineId: string) {
      if (directory.failing) throw new Error('control plane unavailable');
      if (pipelineId === DEMO_PIPELINE.pipelineId) return [...directory.linked];
      return [...(directory.others.find((o) => o.ref.pipelineId === pipelineId)?.linked ?? [])];
    },
  };
  return directory;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json(): unknown;
}

export interface TestServer {
  readonly port: number;
  /** A request to the server with any Host, Origin or Cookie (things `fetch` will not let a test set). */
  send(options: {
    method: string;
    path: string;
    host: string;
    headers?: Record<string, string>;
    body?: unknown;
  }): Promise<Reply>;
  close(): Promise<void>;
}

/** A real HTTP server on loopback around a router the test fills. */
export async function startServer(register: (router: Router) => void): Promise<TestServer> {
  const router = createRouter();
  register(router);
  const server = createServer({ handler: (req, res) => router.handle(req, res) });
  const { port } = await server.listen(0, '127.0.0.1');
  return {
    port,
    send({ method, path, host, headers = {}, body }) {
      const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      return new Promise<Reply>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            method,
            path,
            headers: {
              host,
              ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
              ...headers,
            },
            agent: false,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                text,
                json: () => JSON.parse(text),
              });
            });
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    },
    close: () => server.close(1_000),
  };
}

let sequence = 0;

/** A canonical event as the gateway puts it on `raw-events`. */
export function rawEvent(fields: {
  type?: 'track' | 'page' | 'identify' | 'group';
  anonymousId?: string;
  userId?: string;
  traits?: Record<string, JsonValue>;
  clickIds?: Record<string, string>;
  receivedAt?: string;
  /** The org the event was received for (default: the demo pipeline's). */
  org?: string;
}): CanonicalEvent {
  sequence += 1;
  const receivedAt = fields.receivedAt ?? new Date().toISOString();
  const type = fields.type ?? (fields.userId !== undefined ? 'identify' : 'page');
  return canonicalEventSchema.parse({
    type,
    ...(type === 'track' ? { event: 'Viewed' } : {}),
    ...(fields.anonymousId !== undefined ? { anonymousId: fields.anonymousId } : {}),
    ...(fields.userId !== undefined ? { userId: fields.userId } : {}),
    messageId: `msg-${sequence}-${Math.random().toString(36).slice(2)}`,
    properties: {},
    traits: fields.traits ?? {},
    context: {
      consent: {},
      provenance: 'pipeline_key',
      ...(fields.clickIds !== undefined ? { clickIds: fields.clickIds } : {}),
    },
    timestamp: receivedAt,
    receivedAt,
    org: fields.org ?? DEMO_PIPELINE.orgId,
    pipelineId: DEMO_PIPELINE.pipelineId,
  });
}

/** A fresh org id in the store's shape, so each test makes its own tenants. */
export function orgId(): string {
  return `org_${randomUUID().replaceAll('-', '')}`;
}

/** A fresh anonymous id in the gateway's shape. */
export function anonymousId(): string {
  return randomUUID();
}
