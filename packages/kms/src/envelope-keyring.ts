import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type CryptoAuditSink, CryptoError, type DataClass, KeyEntry, type Keyring } from '@signal/crypto';
import type { Database } from '@signal/store';
import type { Metrics } from '@signal/telemetry';
import { LRUCache } from 'lru-cache';
import { DekCache, type DekCacheResult, type LoadedDek } from './dek-cache';
import { DEK_CLASSES, type DekClass, type DekRow, DekStore } from './dek-store';
import { KmsError, type KmsProvider, type WrapContext } from './provider';
import { canonicalWrapContext } from './wrap-context';

export interface DekCacheSettings {
  /** Unpinned DEKs kept at most. Default 1000. */
  readonly maxEntries?: number;
  /** Re-verify a cached DEK with the KMS after this long. Default 300 000 (5 min). */
  readonly ttlMs?: number;
  /** Refresh in the background once this much TTL is left. Default: a fifth of the TTL. */
  readonly refreshAheadMs?: number;
  /** Decrypts go on from a cached DEK this long past its TTL while the KMS is unavailable. Default 900 000. */
  readonly staleGraceMs?: number;
}

export interface EnvelopeKeyringOptions {
  readonly db: Database;
  readonly provider: KmsProvider;
  readonly audit?: CryptoAuditSink;
  readonly metrics?: Metrics;
  readonly cache?: DekCacheSettings;
  /** Deadline of each KMS call. Default 2000 ms. */
  readonly kmsTimeoutMs?: number;
  readonly now?: () => number;
  /**
   * Crypto-shredding: identity data sealed for a subject (`sealAsync(…, { subject })`) gets a DEK of that
   * subject's own, which `destroySubjects` destroys. Default false (subjects share the identity DEK).
   */
  readonly shredding?: boolean;
  /**
   * Migration from direct mode: the keyring of ENCRYPTION_KEY (and ENCRYPTION_KEY_PREVIOUS) as direct mode
   * derives it. Its keys open what was sealed before envelope mode was turned on, never seal, and are never
   * current, so the re-encryption job moves that data under the DEKs.
   */
  readonly legacy?: {
    readonly keyring: Keyring;
    /**
     * Show it as the previous key (dual-key mode in health, `records_under_previous_key`), so the runbook's
     * "drop the old key at 0" applies: true when moving to a KMS, where ENCRYPTION_KEY can then be removed;
     * false for the local provider, whose KEK still comes from ENCRYPTION_KEY.
     */
    readonly asPrevious: boolean;
  };
}

/** An envelope keyring: a `Keyring` for `createCryptoService`, plus the DEK operations rotation and health need. */
export interface EnvelopeKeyring extends Keyring {
  prepare(keyId: Uint8Array): Promise<void>;
  /** The active DEK id (hex) of each class. */
  activeKeyIds(): Readonly<Record<DekClass, string>>;
  /** DEK rotation: a new active DEK per class (the old ones become decrypt-only); returns the new ids. */
  rotateDeks(): Promise<Readonly<Record<DekClass, string>>>;
  /**
   * KEK rotation: re-wraps every undestroyed DEK row under the provider's current KEK (data untouched).
   * Rows already under it are skipped; failures leave the row as it was.
   */
  rewrapDeks(options?: { readonly batchSize?: number }): Promise<RewrapResult>;
  /**
   * Re-reads the DEK table (new active DEKs from another process's rotation, DEKs it destroyed), evicts what
   * is gone and refreshes what is due. Runs on a timer (at most every 10 s); callable at once.
   */
  sync(): Promise<void>;
  /**
   * Crypto-shredding: destroys every DEK of these subjects (wrapped key and commitment deleted, row kept as
   * `destroyed`), evicts them here at once; other processes drop them at their next `sync` (every 10 s at
   * most), or at the latest when their cache TTL makes them re-verify (if they cannot read the DEK table).
   * Returns the destroyed DEK ids (what the erasure audit records).
   */
  destroySubjects(subjects: readonly string[]): Promise<string[]>;
  /**
   * Crypto-shredding, for writers inside a database transaction (PGlite has one connection, so nothing may
   * query the DEK table there): `prepareSubject` (outside it) makes the subject's DEK ready, creating it at
   * most once; `subjectReady` and `readySubjectEntry` then answer from memory. `holds` says whether a DEK
   * (hex id) can open data now without I/O; `prepare` fetches it.
   */
  prepareSubject(subject: string): Promise<void>;
  subjectReady(subject: string): boolean;
  holds(keyIdHex: string): boolean;
  /** DEK rows per state. */
  dekCounts(): Promise<Record<string, number>>;
  /** Wraps and unwraps a random key under the KEK (within the KMS deadline): is the provider usable now? */
  canary(): Promise<boolean>;
  /** Stops the refresh timer, zeroes every cached DEK. Does not close the provider or the database. */
  close(): Promise<void>;
}

export interface RewrapResult {
  readonly total: number;
  readonly rewrapped: number;
  readonly alreadyCurrent: number;
  readonly failed: number;
}

const DEFAULT_TTL_MS = 300_000;
const DEFAULT_STALE_GRACE_MS = 900_000;
const DEFAULT_MAX_ENTRIES = 1000;
const DEFAULT_KMS_TIMEOUT_MS = 2000;
/** Subjects go into wrap contexts, which providers log: short printable ASCII only (profile ids are). */
const SUBJECT = /^[\x21-\x7e]{1,200}$/;
const COMMITMENT_LABEL = Buffer.from('signal/dek-commitment/v1\0', 'latin1');

/** What binds a wrapped DEK to its row: its id and data class (and subject), under a fixed purpose. */
export function dekWrapContext(row: Pick<DekRow, 'id' | 'dataClass' | 'subject'>): WrapContext {
  return row.subject === ''
    ? { purpose: 'signal-dek', dek_id: row.id, data_class: row.dataClass }
    : { purpose: 'signal-dek', dek_id: row.id, data_class: row.dataClass, subject: row.subject };
}

/**
 * `HMAC-SHA-256(DEK, label ‖ canonical wrap context)`: stored with the row and checked after every unwrap, so
 * a DEK row copied to another id or class, or a provider that binds no context (Azure, Vault rewrap) or
 * answers with another key, is refused even when the provider itself accepted the unwrap.
 */
export function dekCommitment(dek: Uint8Array, context: WrapContext): Buffer {
  return createHmac('sha256', dek).update(COMMITMENT_LABEL).update(canonicalWrapContext(context)).digest();
}

function toDataClass(dekClass: DekClass): DataClass | undefined {
  return dekClass === 'general' ? undefined : dekClass;
}

function toDekClass(dataClass: DataClass | undefined): DekClass {
  return dataClass ?? 'general';
}

/**
 * Opens the envelope keyring: makes sure each data class has an active DEK (generating and wrapping one when
 * it has none), unwraps and pins every class DEK, and starts the refresh timer. Throws (the service must not
 * start) when the KMS cannot unwrap an active DEK: revoked, unreachable or wrong KEK.
 */
export async function openEnvelopeKeyring(options: EnvelopeKeyringOptions): Promise<EnvelopeKeyring> {
  const legacy = options.legacy?.keyring;
  const legacyPrevious = options.legacy?.asPrevious === true ? legacy : undefined;
  const { provider, audit } = options;
  const store = new DekStore(options.db);
  const now = options.now ?? Date.now;
  const timeoutMs = options.kmsTimeoutMs ?? DEFAULT_KMS_TIMEOUT_MS;
  const ttlMs = options.cache?.ttlMs ?? DEFAULT_TTL_MS;
  const refreshAheadMs = options.cache?.refreshAheadMs ?? Math.floor(ttlMs / 5);

  const requests = options.metrics?.counter(
    'signal_kms_requests_total',
    'Key-provider (KMS) calls by result: success or a KmsError code',
    ['provider', 'result'],
  );
  const latency = options.metrics?.histogram(
    'signal_kms_request_duration_seconds',
    'Key-provider (KMS) call latency',
    ['provider', 'operation'],
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
  );
  const lookups = options.metrics?.counter(
    'signal_dek_cache_lookups_total',
    'DEK cache lookups: hit, miss (a KMS unwrap was needed) or stale (served during a KMS outage)',
    ['result'],
  );

  let cache: DekCache;

  /** One KMS call: deadline signal, latency, `signal_kms_requests_total`, `crypto.kms_error`, error mapping. */
  async function kms<T>(
    operation: 'wrap' | 'unwrap' | 'rewrap' | 'canary',
    keyId: string | null,
    signal: AbortSignal | undefined,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const started = process.hrtime.bigint();
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    // The deadline holds even for a provider that ignores its signal.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new KmsError(provider.name, 'kms_timeout', `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    const calling = call(controller.signal);
    calling.then(
      (late) => {
        // An unwrap that answers after the deadline: nobody takes the key, so zero it.
        if (controller.signal.aborted && late instanceof Uint8Array) late.fill(0);
      },
      () => undefined,
    );
    try {
      const result = await Promise.race([calling, deadline]);
      requests?.inc({ provider: provider.name, result: 'success' });
      return result;
    } catch (error) {
      const code = error instanceof KmsError ? error.code : 'kms_bad_response';
      requests?.inc({ provider: provider.name, result: code });
      audit?.record({
        action: 'crypto.kms_error',
        provider: provider.name,
        operation,
        code,
        keyId,
        staleServed: keyId !== null && cache?.holds(keyId) === true,
      });
      const retryable = error instanceof KmsError ? error.retryable : false;
      throw new CryptoError(
        retryable ? 'key_unavailable' : 'invalid_key',
        `key provider ${provider.name} failed to ${operation} a DEK (${code})`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      latency?.observe(
        { provider: provider.name, operation },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    }
  }

  function entryFor(row: DekRow, dek: Buffer): KeyEntry {
    try {
      return new KeyEntry({
        id: Buffer.from(row.id, 'hex'),
        dataClasses: [toDataClass(row.dataClass)],
        // The raw DEK is zeroed once the entry has derived its Cobblestone key; later calls see zeros.
        dataKey: () => dek,
      });
    } finally {
      dek.fill(0);
    }
  }

  /** Fetches a DEK row and unwraps it, checking its commitment. */
  async function load(id: string, signal: AbortSignal): Promise<LoadedDek> {
    let row: DekRow | undefined;
    try {
      row = await store.get(id);
    } catch (error) {
      throw new CryptoError('key_unavailable', 'the DEK table could not be read', { cause: error });
    }
    if (row === undefined)
      throw new CryptoError('unknown_key_id', 'no DEK with the id this ciphertext names');
    if (row.state === 'destroyed' || row.wrapped === null || row.commitment === null) {
      throw new CryptoError('key_destroyed', 'the DEK this ciphertext names was destroyed');
    }
    const wrapped = row.wrapped;
    const context = dekWrapContext(row);
    const dek = Buffer.from(
      await kms('unwrap', id, signal, (s) => provider.unwrap(wrapped, context, { signal: s })),
    );
    const commitment = dekCommitment(dek, context);
    if (dek.length !== 32 || !timingSafeEqual(commitment, row.commitment)) {
      dek.fill(0);
      audit?.record({
        action: 'crypto.decrypt_failed',
        code: 'commitment_mismatch',
        keyId: id,
        purpose: 'signal-dek',
        dataClass: toDataClass(row.dataClass) ?? null,
        table: 'crypto_deks',
        column: 'wrapped',
        rowId: id,
      });
      throw new CryptoError(
        'commitment_mismatch',
        'the unwrapped DEK does not match its commitment (wrong KEK, or a DEK row moved to another id or class)',
      );
    }
    return { entry: entryFor(row, dek), commitment: row.commitment };
  }

  cache = new DekCache({
    load,
    maxEntries: options.cache?.maxEntries ?? DEFAULT_MAX_ENTRIES,
    ttlMs,
    refreshAheadMs,
    staleGraceMs: options.cache?.staleGraceMs ?? DEFAULT_STALE_GRACE_MS,
    timeoutMs,
    now,
    onLookup: (result: DekCacheResult) => lookups?.inc({ result }),
  });

  /** Generates a DEK locally, wraps it, and stores it as the active DEK of its class unless one appeared. */
  async function createActive(dekClass: DekClass, rotate: boolean, subject = ''): Promise<string> {
    const id = randomBytes(16).toString('hex');
    const dek = randomBytes(32);
    try {
      const context = dekWrapContext({ id, dataClass: dekClass, subject });
      const wrapped = await kms('wrap', id, undefined, (signal) => provider.wrap(dek, context, { signal }));
      const row = {
        id,
        dataClass: dekClass,
        subject,
        provider: provider.name,
        wrapped,
        commitment: dekCommitment(dek, context),
      };
      if (rotate) await store.rotate(row, (fn) => options.db.transaction(fn));
      else await store.insertActive(row);
    } finally {
      dek.fill(0);
    }
    const active = await store.active(dekClass, subject);
    if (active === undefined)
      throw new CryptoError('invalid_key', `no active ${dekClass} DEK after creating one`);
    return active.id;
  }

  let active = Object.fromEntries(DEK_CLASSES.map((dekClass) => [dekClass, ''])) as Record<DekClass, string>;
  let pinned = new Set<string>();

  async function sync(): Promise<void> {
    const rows = await store.usable({ classDeksOnly: true });
    const next = { ...active };
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.id);
      if (row.state === 'active') next[row.dataClass] = row.id;
      if (cache.isPinned(row.id)) continue;
      try {
        await cache.pin(row.id);
      } catch (error) {
        // An active DEK must unwrap (the caller refuses to start or to seal); a decrypt-only one that does
        // not is audited by the KMS call and fails only the records it sealed.
        if (row.state === 'active') throw error;
      }
    }
    for (const id of pinned) if (!seen.has(id)) cache.evict(id);
    pinned = seen;
    active = next;
    // Crypto-shredding elsewhere: a DEK another process destroyed leaves this cache at the next sync (at
    // most 10 s), not only when its TTL makes it re-verify with the KMS. One primary-key lookup of the
    // DEKs held here; the table is the message, so no process can miss it the way it could miss a bus event.
    const others = cache.ids().filter((id) => !seen.has(id));
    for (const id of await store.destroyedAmong(others)) cache.evict(id);
    cache.refreshDue();
  }

  for (const dekClass of DEK_CLASSES) {
    const row = await store.active(dekClass);
    if (row === undefined) await createActive(dekClass, false);
  }
  await sync();
  for (const dekClass of DEK_CLASSES) {
    if (cache.fresh(active[dekClass]) === undefined) {
      throw new CryptoError('key_unavailable', `the active ${dekClass} DEK could not be unwrapped`);
    }
  }

  const timer = setInterval(
    () => {
      sync().catch(() => {
        // Failures are audited per KMS call and surface in /health/crypto; the cache serves what it may.
      });
    },
    // Also how soon a DEK rotated by another process is seen here (sync opens of its ciphertexts fail
    // with unknown_key_id until then; openAsync fetches it at once): at most 10 s.
    Math.max(1000, Math.min(10_000, Math.floor(refreshAheadMs / 2))),
  );
  timer.unref();

  /**
   * Which DEK seals each subject's data, as last read from the table (bounded like the cache). An entry is
   * only a hint: sealing still needs the DEK fresh in the cache, and a DEK another process destroyed fails
   * its refresh (`key_destroyed`) and leaves the cache within the TTL.
   */
  const subjectIds = new LRUCache<string, string>({ max: options.cache?.maxEntries ?? DEFAULT_MAX_ENTRIES });

  /** The subject's active identity DEK, created once (the unique index keeps one per subject), loaded fresh. */
  async function subjectDek(subject: string): Promise<KeyEntry> {
    if (!SUBJECT.test(subject)) {
      throw new CryptoError(
        'invalid_context',
        'a crypto-shredding subject must be 1-200 printable ASCII characters',
      );
    }
    const existing = await store.active('identity', subject);
    const id = existing?.id ?? (await createActive('identity', false, subject));
    const fresh = cache.fresh(id);
    if (fresh !== undefined) {
      subjectIds.set(subject, id);
      return fresh;
    }
    // Not held, or past its TTL: re-verify with the table and the KMS. A copy served stale (KMS down) opens
    // data but never seals.
    await cache.get(id);
    const entry = cache.fresh(id);
    if (entry === undefined) {
      throw new CryptoError(
        'key_unavailable',
        "the subject's DEK could not be re-verified with the key provider: refusing to encrypt",
      );
    }
    subjectIds.set(subject, id);
    return entry;
  }

  function sealing(dataClass: DataClass | undefined): KeyEntry {
    const dekClass = toDekClass(dataClass);
    const entry = cache.fresh(active[dekClass]);
    if (entry === undefined) {
      throw new CryptoError(
        'key_unavailable',
        `the active ${dekClass} DEK could not be re-verified with the key provider: refusing to encrypt`,
      );
    }
    return entry;
  }

  const keyring: EnvelopeKeyring = {
    provider: provider.name,
    get current(): KeyEntry {
      return sealing(undefined);
    },
    previous: legacyPrevious?.current,
    get currentKeyId(): string {
      return active.general;
    },
    previousKeyId: legacyPrevious?.currentKeyId,
    dualKeyMode: legacyPrevious !== undefined,
    find(keyId: Uint8Array): KeyEntry | undefined {
      return cache.peek(Buffer.from(keyId).toString('hex')) ?? legacy?.find(keyId);
    },
    sealingEntry: sealing,
    isCurrent(keyId: Uint8Array): boolean {
      const hex = Buffer.from(keyId).toString('hex');
      return DEK_CLASSES.some((dekClass) => active[dekClass] === hex);
    },
    async subjectEntry(dataClass: DataClass | undefined, subject: string): Promise<KeyEntry | undefined> {
      if (!options.shredding || dataClass !== 'identity') return undefined;
      return subjectDek(subject);
    },
    readySubjectEntry(dataClass: DataClass | undefined, subject: string): KeyEntry | null | undefined {
      if (!options.shredding || dataClass !== 'identity') return null;
      const id = subjectIds.get(subject);
      return id === undefined ? undefined : cache.fresh(id);
    },
    async prepareSubject(subject: string): Promise<void> {
      if (options.shredding) await subjectDek(subject);
    },
    subjectReady(subject: string): boolean {
      const id = subjectIds.get(subject);
      return id !== undefined && cache.fresh(id) !== undefined;
    },
    holds(keyIdHex: string): boolean {
      return cache.peek(keyIdHex) !== undefined;
    },
    async destroySubjects(subjects: readonly string[]): Promise<string[]> {
      const destroyed: string[] = [];
      for (const subject of subjects) {
        if (subject === '') continue;
        subjectIds.delete(subject);
        for (const id of await store.destroySubject(subject)) {
          cache.evict(id);
          destroyed.push(id);
        }
      }
      return destroyed;
    },
    sealingKeyIds(): readonly string[] {
      return [...new Set(DEK_CLASSES.map((dekClass) => active[dekClass]))];
    },
    async prepare(keyId: Uint8Array): Promise<void> {
      if (legacy?.find(keyId) !== undefined) return;
      await cache.get(Buffer.from(keyId).toString('hex'));
    },
    activeKeyIds: () => ({ ...active }),
    async rotateDeks() {
      for (const dekClass of DEK_CLASSES) await createActive(dekClass, true);
      await sync();
      return { ...active };
    },
    async rewrapDeks(rewrapOptions = {}) {
      const batchSize = rewrapOptions.batchSize ?? 100;
      let after = '';
      let total = 0;
      let rewrapped = 0;
      let alreadyCurrent = 0;
      let failed = 0;
      for (;;) {
        const rows = await store.page(after, batchSize);
        if (rows.length === 0) break;
        for (const row of rows) {
          after = row.id;
          total++;
          const wrapped = row.wrapped;
          if (wrapped === null) continue;
          if (wrapped.kekRef === provider.kekId) {
            alreadyCurrent++;
            continue;
          }
          try {
            const context = dekWrapContext(row);
            const next = await kms('rewrap', row.id, undefined, (signal) =>
              provider.rewrap(wrapped, context, { signal }),
            );
            if (await store.rewrapped(row.id, wrapped, next)) rewrapped++;
            else failed++;
          } catch {
            failed++;
          }
        }
      }
      return { total, rewrapped, alreadyCurrent, failed };
    },
    sync,
    dekCounts: () => store.counts(),
    async canary() {
      const probe = randomBytes(32);
      const context: WrapContext = { purpose: 'signal-kms-canary', probe: randomBytes(8).toString('hex') };
      try {
        const unwrapped = await kms('canary', null, undefined, async (signal) => {
          const wrapped = await provider.wrap(probe, context, { signal });
          return provider.unwrap(wrapped, context, { signal });
        });
        const ok = Buffer.from(unwrapped).equals(probe);
        unwrapped.fill(0);
        return ok;
      } catch {
        return false;
      } finally {
        probe.fill(0);
      }
    },
    async close() {
      clearInterval(timer);
      cache.close();
    },
  };
  return keyring;
}
