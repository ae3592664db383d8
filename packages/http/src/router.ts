import type { IncomingMessage, ServerResponse } from 'node:http';
import FindMyWay from 'find-my-way';
import { HttpError, isHttpError } from './errors';
import { type Logger, silentLogger } from './logger';
import { sendError, sendHttpError } from './respond';

/**
 * A thin layer over find-my-way (Fastify's radix router): method + path pattern (`/v1/pipelines/:id`) to a
 * handler, with the API's error contract for the cases a router owns: 404 for unknown paths, 405 with
 * `Allow` for a known path and a wrong method, 400 for undecodable URLs, and 500 (logged, never leaking the
 * cause) when a handler throws anything but an `HttpError`.
 */

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface RouteContext {
  /** Decoded path parameters. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
}

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
) => void | Promise<void>;
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface RouterOptions {
  readonly logger?: Logger;
  /** Longest accepted single path parameter; longer ones answer 404. Default 200. */
  readonly maxParamLength?: number;
}

export interface Router {
  on(method: HttpMethod | readonly HttpMethod[], path: string, handler: RouteHandler): Router;
  /** Dispatches one request. Never rejects: every failure becomes an error response. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

const EMPTY_QUERY = Object.freeze({});

export function createRouter(options: RouterOptions = {}): Router {
  const logger = options.logger ?? silentLogger;
  const registered = new Set<HttpMethod>();
  const tree = FindMyWay({
    caseSensitive: true,
    ignoreTrailingSlash: false,
    maxParamLength: options.maxParamLength ?? 200,
    // Queries are parsed by us into URLSearchParams (repeated keys stay lists, no prototype surprises).
    querystringParser: () => EMPTY_QUERY,
    onBadUrl: (_path, _req, res) => sendError(res, 400, 'bad_request', 'the request URL is malformed'),
  });

  const router: Router = {
    on(method, path, handler) {
      const requested: readonly HttpMethod[] = typeof method === 'string' ? [method] : method;
      // A GET route answers HEAD too (Node drops the body), unless HEAD is routed explicitly.
      const methods =
        requested.includes('GET') && !requested.includes('HEAD') && !tree.hasRoute('HEAD', path)
          ? [...requested, 'HEAD' as const]
          : [...requested];
      tree.on(methods, path, (req, res, params) => handler(req, res, routeContext(req.url ?? '/', params)));
      for (const m of methods) registered.add(m);
      return router;
    },

    async handle(req, res) {
      const method = (req.method ?? 'GET').toUpperCase();
      const url = req.url ?? '/';
      try {
        const found = isHttpMethod(method) ? tree.find(method, url) : null;
        if (found === null) {
          const allowed = [...registered].filter((m) => tree.find(m, url) !== null);
          if (allowed.length === 0) {
            sendError(res, 404, 'not_found', 'no route matches this path');
          } else {
            const message = `method ${method} is not allowed on this path`;
            sendHttpError(
              res,
              new HttpError('method_not_allowed', message, { headers: { allow: allowed.join(', ') } }),
            );
          }
          return;
        }
        await found.handler(req, res, found.params, found.store, found.searchParams);
      } catch (cause) {
        if (isHttpError(cause)) {
          sendHttpError(res, cause);
          return;
        }
        logger.error({ err: cause, method }, 'request handler failed');
        sendError(res, 500, 'internal', 'internal error');
      }
    },
  };
  return router;
}

function isHttpMethod(method: string): method is HttpMethod {
  return (HTTP_METHODS as readonly string[]).includes(method);
}

function routeContext(url: string, raw: { [k: string]: string | undefined }): RouteContext {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) params[name] = value;
  }
  const queryStart = url.indexOf('?');
  const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
  return { params, query };
}
