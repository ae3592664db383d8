import type { EventBody } from '../browser/types';

/** One `/v1/batch` request as the gateway would receive it. */
export interface ReceivedBatch {
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly keepalive: boolean;
  readonly credentials: string | undefined;
  readonly rawBody: string;
  readonly body: { pipelineKey: string; sentAt: string; dropped?: number; batch: EventBody[] };
}

/** How the fake answers a request: a status (with optional headers) or a network failure. */
export type Reply = { status: number; headers?: Record<string, string> } | 'network-error';

/**
 * A stand-in for the gateway at the browser's `fetch` boundary (the real gateway is exercised by the
 * Chromium end-to-end suite). Records every request and answers with `reply`, 202 by default.
 */
export function fakeGateway(
  reply: (request: ReceivedBatch, index: number) => Reply = () => ({ status: 202 }),
) {
  const requests: ReceivedBatch[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const rawBody = typeof init?.body === 'string' ? init.body : '';
    const request: ReceivedBatch = {
      url: String(input),
      method: init?.method ?? 'GET',
      headers: Object.fromEntries(
        [...new Headers(init?.headers).entries()].map(([k, v]) => [k.toLowerCase(), v]),
      ),
      keepalive: init?.keepalive === true,
      credentials: init?.credentials,
      rawBody,
      body: JSON.parse(rawBody) as ReceivedBatch['body'],
    };
    requests.push(request);
    const answer = reply(request, requests.length - 1);
    if (answer === 'network-error') throw new TypeError('Failed to fetch');
    return new Response(null, { status: answer.status, headers: answer.headers ?? {} });
  };
  return {
    fetch,
    requests,
    /** Every event received, in order, across all requests. */
    events: (): EventBody[] => requests.flatMap((r) => r.body.batch),
  };
}

/**
 * Captures `navigator.sendBeacon` calls. `accept` is the browser's answer, which only says whether it queued
 * the body: like Chromium, the default refuses a body over the 64 KiB budget and queues anything else, and a
 * queued beacon is not a delivered one (nothing here ever reaches a gateway).
 */
export function beaconRecorder(
  accept: (index: number, size: number) => boolean = (_, size) => size <= 64 * 1024,
) {
  const calls: { url: string; type: string; size: number; body: Promise<string> }[] = [];
  const sendBeacon = (url: string | URL, data?: BodyInit | null): boolean => {
    const blob = data instanceof Blob ? data : new Blob([String(data)]);
    calls.push({ url: String(url), type: blob.type, size: blob.size, body: blob.text() });
    return accept(calls.length - 1, blob.size);
  };
  return { sendBeacon, calls };
}
