/**
 * v1 ciphertext format (Cobblestone-256 with a bound context) against raw AES-256-GCM, same process, same run.
 *
 *   pnpm bench crypto        (runs: tsx test/bench/crypto.ts)
 *
 * Baseline per message: a random 12-byte nonce, createCipheriv/createDecipheriv, nonce ‖ ciphertext ‖ tag.
 * v1 per message: a salt, HKDF-SHA-512 (two HMACs), the commitment, AES-256-GCM chunks, through the public
 * CryptoService with a realistic context. Both sides run through the same harness: the same warm-up, then
 * rounds of the same number of operations (calibrated once so the baseline takes about ROUND_MS), the order
 * flipped every round (raw-v1, v1-raw, …) so drift and GC debt on a shared machine hit both alike. The table
 * shows median throughput, the median of the per-round ratios with their interquartile range, and the same
 * ratio by process CPU time (steadier than wall time when other work shares the cores).
 * Targets: ratio >= 0.5 at 1 KiB and >= 0.9 at 64 KiB.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createCryptoService, createKeyring, type EncryptionContext } from '@signal/crypto';

const SIZES = [64, 1024, 64 * 1024] as const;
const TARGETS: Readonly<Record<number, number>> = { 1024: 0.5, [64 * 1024]: 0.9 };
const ROUNDS = 31;
const ROUND_MS = 30;
const WARM_UP_MS = 100;
const POOL = 64;

const key = randomBytes(32);
const service = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
const context: EncryptionContext = {
  purpose: 'integration-credential',
  dataClass: 'credentials',
  table: 'integration_credentials',
  column: 'secret',
  rowId: '0b9d3c62-6f0e-4d8a-9a51-3f1c2b7e8d40',
};
const GCM = { authTagLength: 16 } as const;

function rawSeal(plaintext: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, GCM);
  const body = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

function rawOpen(sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12), GCM);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const plaintext = decipher.update(sealed.subarray(12, sealed.length - 16));
  decipher.final();
  return plaintext;
}

interface Timing {
  /** Wall-clock seconds. */
  wall: number;
  /** Process CPU seconds (all threads: GC helpers count too). */
  cpu: number;
}

/** Runs `op` `count` times (`op` gets the iteration number) and times it. */
function time(op: (i: number) => unknown, count: number): Timing {
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) op(i);
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  return { wall, cpu: (cpu.user + cpu.system) / 1e6 };
}

/** Operations of `op` that take about `ms` milliseconds (found by running it, doubling, until they do). */
function calibrate(op: (i: number) => unknown, ms: number): number {
  let count = 64;
  for (;;) {
    const { wall } = time(op, count);
    if (wall * 1000 >= ms) return Math.max(1, Math.round((count * ms) / (wall * 1000)));
    count *= 2;
  }
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = sorted[Math.floor(at)] ?? 0;
  const high = sorted[Math.ceil(at)] ?? 0;
  return low + (high - low) * (at - Math.floor(at));
}

interface Row {
  size: string;
  op: string;
  raw: number;
  v1: number;
  ratio: number;
  ratioLow: number;
  ratioHigh: number;
  cpuRatio: number;
  target: number | undefined;
}

function compare(size: number, op: string, raw: (i: number) => unknown, v1: (i: number) => unknown): Row {
  // Warm-up: each side runs alike first (JIT, pools, caches); then the baseline fixes the count per round.
  calibrate(raw, WARM_UP_MS);
  calibrate(v1, WARM_UP_MS);
  const count = calibrate(raw, ROUND_MS);
  const raws: number[] = [];
  const v1s: number[] = [];
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let r: Timing;
    let v: Timing;
    if (round % 2 === 0) {
      r = time(raw, count);
      v = time(v1, count);
    } else {
      v = time(v1, count);
      r = time(raw, count);
    }
    raws.push(count / r.wall);
    v1s.push(count / v.wall);
    ratios.push(r.wall / v.wall);
    cpuRatios.push(r.cpu / v.cpu);
  }
  return {
    size: size >= 1024 ? `${size / 1024} KiB` : `${size} B`,
    op,
    raw: quantile(raws, 0.5),
    v1: quantile(v1s, 0.5),
    ratio: quantile(ratios, 0.5),
    ratioLow: quantile(ratios, 0.25),
    ratioHigh: quantile(ratios, 0.75),
    cpuRatio: quantile(cpuRatios, 0.5),
    target: TARGETS[size],
  };
}

const rows: Row[] = [];
for (const size of SIZES) {
  const plaintext = randomBytes(size);
  const rawPool = Array.from({ length: POOL }, () => rawSeal(plaintext));
  const v1Pool = Array.from({ length: POOL }, () => service.seal(plaintext, context));
  for (let i = 0; i < POOL; i++) {
    if (
      !rawOpen(rawPool[i] as Buffer).equals(plaintext) ||
      !service.open(v1Pool[i] as Buffer, context).equals(plaintext)
    ) {
      throw new Error('round trip failed before timing');
    }
  }
  rows.push(
    compare(
      size,
      'seal',
      () => rawSeal(plaintext),
      () => service.seal(plaintext, context),
    ),
  );
  rows.push(
    compare(
      size,
      'open',
      (i) => rawOpen(rawPool[i % POOL] as Buffer),
      (i) => service.open(v1Pool[i % POOL] as Buffer, context),
    ),
  );
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const header = ['size', 'op', 'raw AES-256-GCM ops/s', 'v1 ops/s', 'v1/raw', 'p25-p75', 'by CPU', 'target'];
const lines = rows.map((row) => [
  row.size,
  row.op,
  fmt(row.raw),
  fmt(row.v1),
  row.ratio.toFixed(2),
  `${row.ratioLow.toFixed(2)}-${row.ratioHigh.toFixed(2)}`,
  row.cpuRatio.toFixed(2),
  row.target === undefined ? '-' : `>= ${row.target}${row.ratio >= row.target ? '' : '  (below)'}`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] ?? '').length)));
const print = (cells: readonly string[]): void =>
  console.log(
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
  );
console.log(
  `crypto bench: node ${process.version}, ${ROUNDS} rounds of equal operation counts (about ${ROUND_MS} ms of ` +
    'baseline each), order alternating; medians',
);
print(header);
for (const line of lines) print(line);
