/**
 * Cross-domain tokens against a bare v1 seal/open, same process, same run.
 *
 *   pnpm bench identity        (runs: tsx test/bench/identity.ts)
 *
 * issue   = claims (128-bit random jti) + JSON + v1 seal under the audience-bound context: what
 *           POST /v1/identity/token and the redirect do beyond HTTP.
 * resolve = v1 open + claims validation + time checks + the atomic single-use consume on the in-process cache
 *           (a `setIfAbsent` promise per token): what POST /v1/identity/resolve does beyond HTTP.
 * Baselines: a bare `sealText` / `openText` of the same claims JSON under the same context. Rounds alternate
 * baseline and measured so drift on a shared machine hits both; medians and the median per-round ratio.
 */
import { randomBytes } from 'node:crypto';
// @signal/test does not depend on these packages, so their entry points are reached by path.
import { createMemoryCache } from '../../packages/cache/src/index';
import { createCryptoService, createKeyring } from '../../packages/crypto/src/index';
import { cacheSingleUseStore, createTokenService, tokenContext } from '../../services/identity-hub/src/index';

const ROUNDS = 21;
const ROUND_MS = 40;
const AUDIENCE = 'www.shop.example';
const INPUT = {
  anonymousId: '0f8e2d1c-7b6a-4c5d-9e8f-1a2b3c4d5e6f',
  org: 'org_2b7c0e5a9d1f4c3b',
  pipeline: 'pl_7d3e9a1c5b2f4e6d',
  from: 'shop.example',
  aud: AUDIENCE,
};

const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
const cache = createMemoryCache({ namespace: 'bench', maxEntries: 5_000_000 });
const tokens = createTokenService({ crypto, singleUse: cacheSingleUseStore(cache), ttlSeconds: 120 });
const context = tokenContext(AUDIENCE);
const claimsJson = JSON.stringify(tokens.issue(INPUT).claims);
const sealedPool = Array.from({ length: 64 }, () => crypto.sealText(claimsJson, context));

/** Operations per second of a synchronous `op` over about `ms` milliseconds. */
function measureSync(op: (i: number) => unknown, ms: number): number {
  let count = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 64; i++) op(count + i);
    count += 64;
    now = process.hrtime.bigint();
  }
  return count / (Number(now - start) / 1e9);
}

/** Resolves per second: tokens issued beforehand (outside the timing), each resolved once, in order. */
async function measureResolve(ms: number): Promise<number> {
  const pool = Array.from({ length: Math.ceil(ms * 120) }, () => tokens.issue(INPUT).token);
  let count = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline && count < pool.length) {
    const result = await tokens.resolve(pool[count] ?? '', AUDIENCE);
    if (!result.ok) throw new Error(`a fresh token was refused: ${result.reason}`);
    count += 1;
    if (count % 32 === 0) now = process.hrtime.bigint();
  }
  now = process.hrtime.bigint();
  if (count >= pool.length) throw new Error('token pool exhausted: enlarge it');
  return count / (Number(now - start) / 1e9);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

interface Row {
  readonly op: string;
  readonly baseline: string;
  readonly base: number;
  readonly value: number;
  readonly ratio: number;
}

async function compare(
  op: string,
  baselineName: string,
  baseline: () => number,
  measured: () => number | Promise<number>,
): Promise<Row> {
  baseline();
  await measured();
  const bases: number[] = [];
  const values: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const b = baseline();
    const v = await measured();
    bases.push(b);
    values.push(v);
    ratios.push(v / b);
  }
  return { op, baseline: baselineName, base: median(bases), value: median(values), ratio: median(ratios) };
}

// Sanity before timing: what is measured works.
const sample = tokens.issue(INPUT);
if (!(await tokens.resolve(sample.token, AUDIENCE)).ok) throw new Error('round trip failed before timing');
if ((await tokens.resolve(sample.token, AUDIENCE)).ok) throw new Error('a replay was accepted before timing');

const rows: Row[] = [];
rows.push(
  await compare(
    'issue',
    'v1 sealText',
    () => measureSync(() => crypto.sealText(claimsJson, context), ROUND_MS),
    () => measureSync(() => tokens.issue(INPUT), ROUND_MS),
  ),
);
rows.push(
  await compare(
    'open (no consume)',
    'v1 openText',
    () => measureSync((i) => crypto.openText(sealedPool[i % 64] ?? '', context), ROUND_MS),
    () => measureSync((i) => tokens.open(sealedPool[i % 64] ?? '', AUDIENCE), ROUND_MS),
  ),
);
rows.push(
  await compare(
    'resolve (open + consume)',
    'v1 openText',
    () => measureSync((i) => crypto.openText(sealedPool[i % 64] ?? '', context), ROUND_MS),
    () => measureResolve(ROUND_MS),
  ),
);
await cache.close();

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const header = ['operation', 'baseline', 'baseline ops/s', 'ops/s', 'ratio'];
const lines = rows.map((r) => [r.op, r.baseline, fmt(r.base), fmt(r.value), r.ratio.toFixed(2)]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] ?? '').length)));
const print = (cells: readonly string[]): void =>
  console.log(
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
  );
console.log(
  `identity bench: node ${process.version}, token ${sample.token.length} chars, ${ROUNDS} alternating rounds of ${ROUND_MS} ms, medians; single-use store: in-process cache`,
);
print(header);
for (const line of lines) print(line);
