import { type Dispatcher, request } from 'undici';

/**
 * One JSON request over the adapter's own strict-TLS undici Agent (GCP REST and Vault transit, which have no
 * SDK here). Transport errors are thrown as undici raised them; the adapter maps them with `transportFailure`.
 */
export interface JsonCall {
  readonly method: 'GET' | 'POST';
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly signal: AbortSignal;
}

export interface JsonReply {
  readonly status: number;
  /** The parsed JSON body, or `undefined` when the body was empty or not JSON. */
  readonly body: unknown;
}

export async function callJson(dispatcher: Dispatcher, call: JsonCall): Promise<JsonReply> {
  const response = await request(call.url, {
    dispatcher,
    method: call.method,
    headers: {
      accept: 'application/json',
      ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...call.headers,
    },
    ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    signal: call.signal,
  });
  const text = await response.body.text();
  let body: unknown;
  try {
    body = text.length === 0 ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.statusCode, body };
}
