/**
 * Envelope decrypts with a warm DEK cache against direct-derivation decrypts, same process, same run.
 *
 *   pnpm bench kms        (runs: tsx test/bench/kms.ts)
 *
 * baseline = `openText` with a direct-mode keyring (ENCRYPTION_KEY only).
 * envelope = `openTextAsync` with an envelope keyring over the `local` KMS provider (PGlite in memory), the
 *            credentials DEK cached: what a service pays per decrypt in envelope mode.
 * Then the key-provider calls: 100,000 decrypts under the class DEK, and 100,000 decrypts spread over 1,000
 * per-subject DEKs (crypto-shredding), counted by a provider wrapper typed against the port.
 * Rounds alternate baseline and measured so drift on a shared machine hits both; medians and the median
 * per-round ratio.
 */
import { randomBytes } from 'node:crypto';
// @signal/test does not depend on these packages, so their entry points are reached by path.
import { createCryptoService, createKeyring, type EncryptionContext } from '../../packages/crypto/src/index';
import {
  createLocalKmsProvider,
  type KmsProvider,
  kmsMigrations,
  openEnvelopeKeyring,
} from '../../packages/kms/src/index';
import { createDatabase, migrate } from '../../packages/store/src/index';

const ROUNDS = 15;
const ROUND_MS = 60;
const DECRYPTS = 100_000;
const SUBJECTS = 1000;
const CONTEXT: EncryptionContext = {
  purpose: 'integration-credential',
  dataClass: 'credentials',
  table: 'integrations',
  column: 'credentials',
  rowId: 'int_4d1c7e2a0a514f0b',
};
const SECRET = JSON.stringify({ access_token: randomBytes(96).toString('base64url') });

function counting(inner: KmsProvider): KmsProvider & { readonly unwraps: () => number } {
  let unwraps = 0;
  return {
    name: inner.name,
    kekId: inner.kekId,
    wrap: (dek, context, options) => inner.wrap(dek, context, options),
    unwrap: (wrapped, context, options) => {
      unwraps++;
      return inner.unwrap(wrapped, context, options);
    },
    rewrap: (wrapped, context, options) => inner.rewrap(wrapped, context, options),
    close: () => inner.close(),
    unwraps: () => unwraps,
  };
}

async function measure(op: () => Promise<unknown> | unknown, ms: number): Promise<number> {
  let count = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 64; i++) await op();
    count += 64;
    now = process.hrtime.bigint();
  }
  return count / (Number(now - start) / 1e9);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

async function main(): Promise<void> {
  const key = randomBytes(32);
  const direct = createCryptoService({ keyring: createKeyring({ current: key }) });
  const db = await createDatabase({ kind: 'pglite' });
  await migrate(db, kmsMigrations);
  const provider = counting(createLocalKmsProvider({ current: key }));
  const keyring = await openEnvelopeKeyring({
    db,
    provider,
    shredding: true,
    cache: { maxEntries: SUBJECTS },
  });
  const envelope = createCryptoService({ keyring });

  const directText = direct.sealText(SECRET, CONTEXT);
  const envelopeText = envelope.sealText(SECRET, CONTEXT);
  const baseline: number[] = [];
  const measured: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0;
    const b1 = order ? await measure(() => direct.openText(directText, CONTEXT), ROUND_MS) : 0;
    const m = await measure(() => envelope.openTextAsync(envelopeText, CONTEXT), ROUND_MS);
    const b = order ? b1 : await measure(() => direct.openText(directText, CONTEXT), ROUND_MS);
    baseline.push(b);
    measured.push(m);
    ratios.push(m / b);
  }
  console.log(`decrypt of a ${SECRET.length}-byte credential, ${ROUNDS} rounds of ${ROUND_MS} ms each`);
  console.log(`  direct mode openText          ${Math.round(median(baseline)).toLocaleString('en')} /s`);
  console.log(`  envelope openTextAsync (warm)  ${Math.round(median(measured)).toLocaleString('en')} /s`);
  console.log(`  ratio envelope/direct          ${median(ratios).toFixed(2)}`);

  let before = provider.unwraps();
  for (let i = 0; i < DECRYPTS; i++) await envelope.openTextAsync(envelopeText, CONTEXT);
  console.log(
    `provider calls per ${DECRYPTS.toLocaleString('en')} decrypts, class DEK: ${provider.unwraps() - before}`,
  );

  const traits = (subject: string): EncryptionContext => ({
    purpose: 'identity-traits',
    dataClass: 'identity',
    table: 'identity_traits',
    column: 'traits',
    rowId: subject,
  });
  const sealed: string[] = [];
  for (let i = 0; i < SUBJECTS; i++) {
    const subject = `prof_${i.toString(16).padStart(8, '0')}`;
    sealed.push(await envelope.sealTextAsync('{"email":"x@example.com"}', traits(subject), { subject }));
  }
  await keyring.close();
  // A fresh process: every subject DEK is cold.
  const cold = await openEnvelopeKeyring({ db, provider, shredding: true, cache: { maxEntries: SUBJECTS } });
  const reader = createCryptoService({ keyring: cold });
  before = provider.unwraps();
  for (let i = 0; i < DECRYPTS; i++) {
    const index = i % SUBJECTS;
    await reader.openTextAsync(sealed[index] ?? '', traits(`prof_${index.toString(16).padStart(8, '0')}`));
  }
  console.log(
    `provider calls per ${DECRYPTS.toLocaleString('en')} decrypts over ${SUBJECTS} cold subject DEKs (cache ${SUBJECTS}): ${provider.unwraps() - before}`,
  );
  await cold.close();
  await db.close();
}

await main();
