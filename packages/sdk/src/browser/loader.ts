import { createClient } from './client';
import type { DataflyApi, DataflyOptions } from './types';

const GLOBAL_NAME = /^[A-Za-z_$][\w$]{0,63}$/;

function flag(script: HTMLScriptElement | null, name: string): boolean | undefined {
  const value = script?.getAttribute(name);
  return value === null || value === undefined ? undefined : value !== 'false';
}

/**
 * Starts Datafly.js on a page. Configuration comes from the loading `<script>` tag's data attributes
 * (`data-pipeline-key`, `data-endpoint`, `data-global`, `data-auto-page`, `data-respect-dnt`,
 * `data-respect-gpc`) and from an `init` call in the snippet's stub queue, which wins. The global (default
 * `_df`) becomes the API; the stub's other calls run in order once `init` has happened, so consent and
 * identity set in the snippet already apply to the first page view. Loading the bundle twice is harmless.
 */
export function boot(win: Window, script: HTMLScriptElement | null): DataflyApi {
  const scope = win as unknown as Record<string, unknown>;
  const requested = script?.getAttribute('data-global') ?? '_df';
  const name = GLOBAL_NAME.test(requested) ? requested : '_df';
  const existing = scope[name];
  if (typeof existing === 'object' && existing !== null && !Array.isArray(existing) && 'track' in existing) {
    return existing as DataflyApi;
  }

  let origin: string | undefined;
  try {
    origin = new URL(script?.src || win.location.href, win.location.href).origin;
  } catch {
    origin = undefined;
  }
  const api = createClient(win, origin === undefined || origin === 'null' ? {} : { endpoint: origin });
  scope[name] = api;

  const options: Partial<DataflyOptions> = {};
  const key = script?.getAttribute('data-pipeline-key');
  if (key) options.pipelineKey = key;
  const endpoint = script?.getAttribute('data-endpoint');
  if (endpoint) options.endpoint = endpoint;
  const autoPage = flag(script, 'data-auto-page');
  if (autoPage !== undefined) options.autoPage = autoPage;
  const dnt = flag(script, 'data-respect-dnt');
  if (dnt !== undefined) options.respectDoNotTrack = dnt;
  const gpc = flag(script, 'data-respect-gpc');
  if (gpc !== undefined) options.respectGpc = gpc;
  const wait = script?.getAttribute('data-wait-for-consent');
  if (wait) options.waitForConsent = Number(wait);

  let init = key !== null && key !== undefined && key !== '';
  for (const entry of Array.isArray(existing) ? (existing as unknown[]) : []) {
    if (Array.isArray(entry) && entry[0] === 'init') {
      Object.assign(options, entry[1]);
      init = true;
    } else {
      api.push(entry);
    }
  }
  if (init) api.init(options as DataflyOptions);
  return api;
}
