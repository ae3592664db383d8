/**
 * v1 ciphertext format (Cobblestone-256 with a bound context) against raw AES-256-GCM, same process, same run.
 *
 *   pnpm bench crypto        (runs: tsx test/bench/crypto.ts)
 *
 * Baseline per message: a random 12-byte nonce, createCipheriv/createDecipheriv, nonce ‖ ciphertext ‖ tag.
 * v1 per message: a salt, HKDF-SHA-512 (two HMACs), the commitment, AES-256-GCM chunks, through the public
 * CryptoService with a realistic context. Rounds alternate baseline and v1 so drift on a shared machine hits
 * both; the table shows medians and the median of the per-round ratios. Targets: ratio >= 0.5 at 1 KiB and
 * >= 0.9 at 64 KiB.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
// @signal/test does not depend on @signal/crypto (yet), so the package entry point is reached by path.
import { createCryptoService, createKeyring, type EncryptionContext } from '../../packages/crypto/src/index';

const SIZES = [64, 1024, 64 * 1024] as const;
const TARGETS: Readonly<Record<number, number>> = { 1024: 0.5, [64 * 1024]: 0.9 };
const ROUNDS = 31;
const ROUND_MS = 30;
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

/** Operations per second of `op` over about `ms` milliseconds. */
function measure(op: (i: number) => unknown, ms: number): number {
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

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

interface Row {
  size: string;
  op: string;
  raw: number;
  v1: number;
  ratio: number;
  target: number | undefined;
}

function compare(size: number, op: string, raw: (i: number) => unknown, v1: (i: number) => unknown): Row {
  measure(raw, 50);
  measure(v1, 50);
  const raws: number[] = [];
  const v1s: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const r = measure(raw, ROUND_MS);
    const v = measure(v1, ROUND_MS);
    raws.push(r);
    v1s.push(v);
    ratios.push(v / r);
  }
  const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
  return {
    size: label,
    op,
    raw: median(raws),
    v1: median(v1s),
    ratio: median(ratios),
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
const header = ['size', 'op', 'raw AES-256-GCM ops/s', 'v1 ops/s', 'v1/raw', 'target'];
const lines = rows.map((row) => [
  row.size,
  row.op,
  fmt(row.raw),
  fmt(row.v1),
  row.ratio.toFixed(2),
  row.target === undefined ? '-' : `>= ${row.target}${row.ratio >= row.target ? '' : '  (below)'}`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] ?? '').length)));
const print = (cells: readonly string[]): void =>
  console.log(
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
  );
console.log(`crypto bench: node ${process.version}, ${ROUNDS} alternating rounds of ${ROUND_MS} ms, medians`);
print(header);
for (const line of lines) print(line);
