/**
 * `pnpm bench <name>` runs test/bench/<name>.ts; `pnpm bench` lists what there is. Each benchmark prints its
 * figures beside a baseline measured in the same run, with the ratio: absolute numbers vary by machine,
 * ratios much less.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.test.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

const names = process.argv.slice(2);
if (names.length === 0) {
  console.log(`usage: pnpm bench <name> [<name> …]\navailable: ${available.join(', ')}`);
  process.exit(0);
}
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`unknown benchmark "${name}"; available: ${available.join(', ')}`);
    process.exit(2);
  }
}
for (const name of names) {
  console.log(`\n## bench ${name}`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, `${name}.ts`)], {
    stdio: 'inherit',
  });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
