import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** The budget for d.js over the wire; a test holds the bundle to it. */
export const SDK_GZIP_BUDGET_BYTES = 8 * 1024;

export interface SdkBundle {
  /** The minified IIFE, ready to serve as `application/javascript`. */
  readonly code: string;
  /** Size of `code` gzipped (level 9), the figure the budget applies to. */
  readonly gzipBytes: number;
  /** Subresource-integrity value (`sha384-…`) of `code`; also a stable ETag. */
  readonly integrity: string;
}

/**
 * Builds Datafly.js into one minified IIFE (ES2018) in memory. The gateway calls this once at start-up and
 * serves the result from memory at `GET /d.js`; `pnpm --filter @signal/sdk build` writes it to `dist/d.js`.
 */
export async function buildSdk(): Promise<SdkBundle> {
  const result = await build({
    // Path arithmetic rather than `new URL(…, import.meta.url)`: under a DOM test environment `URL` is the
    // DOM's, which resolves against the page instead of the module.
    entryPoints: [join(dirname(fileURLToPath(import.meta.url)), 'browser', 'main.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2018',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (file === undefined) throw new Error('esbuild produced no output for the SDK bundle');
  const code = file.text;
  return {
    code,
    gzipBytes: gzipSync(code, { level: 9 }).length,
    integrity: `sha384-${createHash('sha384').update(code).digest('base64')}`,
  };
}
