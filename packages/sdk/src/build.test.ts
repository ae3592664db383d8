// @vitest-environment happy-dom
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DataflyApi } from './browser/types';
import { VERSION } from './browser/version';
import type { SdkBundle } from './build';
import { buildSdk, SDK_GZIP_BUDGET_BYTES } from './build';
import { fakeGateway } from './testing/fake-gateway';

let bundle: SdkBundle;
beforeAll(async () => {
  bundle = await buildSdk();
});

const scope = window as unknown as Record<string, unknown>;
afterEach(() => {
  (scope._df as DataflyApi | undefined)?.shutdown?.();
  delete scope._df;
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('the d.js bundle', () => {
  it(`stays under ${SDK_GZIP_BUDGET_BYTES} bytes gzipped`, () => {
    expect(bundle.gzipBytes).toBe(gzipSync(bundle.code, { level: 9 }).length);
    expect(bundle.gzipBytes).toBeLessThan(SDK_GZIP_BUDGET_BYTES);
  });

  it('is one self-contained classic script (IIFE, no imports, no exports) for ES2018', () => {
    expect(bundle.code.startsWith('"use strict";(()=>{') || bundle.code.startsWith('(()=>{')).toBe(true);
    expect(bundle.code).not.toMatch(/\bimport\s*[({"'`]|\bexport\s*[{*]/);
    // ES2018 has no `??` or `?.`: esbuild must have lowered them.
    expect(bundle.code).not.toMatch(/\?\?|\?\.[a-zA-Z_$[(]/);
    expect(bundle.integrity).toBe(`sha384-${createHash('sha384').update(bundle.code).digest('base64')}`);
  });

  it('carries the package version', () => {
    const pkg = JSON.parse(
      readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8'),
    ) as { version: string };
    expect(VERSION).toBe(pkg.version);
    expect(bundle.code).toContain(`"${VERSION}"`);
  });

  it('runs as served: reads its script tag, replays the stub and posts to its own origin', async () => {
    const gateway = fakeGateway();
    vi.stubGlobal('fetch', gateway.fetch);
    const tag = document.createElement('script');
    tag.src = 'https://data.shop.example/d.js';
    tag.setAttribute('data-pipeline-key', 'dk_live_bundle');
    vi.spyOn(document, 'currentScript', 'get').mockReturnValue(tag);
    scope._df = [['track', 'begin_checkout', { value: 20, currency: 'EUR', items: [{ item_id: 'A' }] }]];

    new Function(bundle.code)();

    const api = scope._df as DataflyApi;
    expect(typeof api.track).toBe('function');
    await api.flush();
    expect(gateway.requests[0]?.url).toBe('https://data.shop.example/v1/batch');
    expect(gateway.events().map((e) => e.event ?? e.type)).toEqual(['begin_checkout', 'page']);
    expect(gateway.events()[0]?.context.library).toEqual({ name: 'datafly.js', version: VERSION });
  });
});
