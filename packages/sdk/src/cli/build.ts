import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSdk, SDK_GZIP_BUDGET_BYTES } from '../build';

// `pnpm --filter @signal/sdk build`: writes dist/d.js for static hosting or inspection; fails over budget.
const bundle = await buildSdk();
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
mkdirSync(dist, { recursive: true });
const out = join(dist, 'd.js');
writeFileSync(out, bundle.code);
console.log(
  `wrote ${out}: ${bundle.code.length} bytes, ${bundle.gzipBytes} gzipped (budget ${SDK_GZIP_BUDGET_BYTES}), ${bundle.integrity}`,
);
if (bundle.gzipBytes > SDK_GZIP_BUDGET_BYTES) process.exitCode = 1;
