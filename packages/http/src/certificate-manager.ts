import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { ComponentHealth } from './health';
import { type Logger, silentLogger } from './logger';
import { err, ok, type Result } from './result';

/**
 * Server certificate lifecycle: load the PEM files, validate them, watch them, and hand a new secure context
 * to the server when they change, without a restart. New connections get the new certificate; connections
 * already open keep the one they negotiated until they close. A replacement that does not validate (cannot
 * be parsed, key does not match, already expired) is refused and the running certificate stays in place.
 */

export const CERTIFICATE_REJECT_REASONS = [
  'unreadable',
  'invalid_certificate',
  'invalid_key',
  'key_mismatch',
  'expired',
  'invalid_ca',
  'unusable',
] as const;
export type CertificateRejectReason = (typeof CERTIFICATE_REJECT_REASONS)[number];

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  readonly code: CertificateRejectReason;

  constructor(code: CertificateRejectReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Public facts about a certificate: safe to log and to show in health output. */
export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  /** SHA-256 fingerprint, colon-separated upper-case hex (as Node's `fingerprint256`). */
  readonly fingerprint256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** What a TLS server needs from the files: PEM text, passed to `tls.createSecureContext`. */
export interface SecureContextMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

export interface CertificateMaterial extends SecureContextMaterial {
  readonly info: CertificateInfo;
  /** SHA-256 over the file contents, used only to notice changes. */
  readonly digest: string;
}

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function pemCertificates(text: string): string[] {
  return text.match(PEM_CERTIFICATE) ?? [];
}

export function certificateInfo(certificate: X509Certificate): CertificateInfo {
  return {
    subject: certificate.subject,
    issuer: certificate.issuer,
    serialNumber: certificate.serialNumber,
    fingerprint256: certificate.fingerprint256,
    notBefore: new Date(certificate.validFrom),
    notAfter: new Date(certificate.validTo),
  };
}

function digestOf(files: CertificateFiles): string {
  const hash = createHash('sha256');
  hash
    .update(files.cert)
    .update('\0')
    .update(files.key)
    .update('\0')
    .update(files.ca ?? '');
  return hash.digest('hex');
}

/**
 * Validates certificate, key and optional CA bundle (PEM text). Pure apart from the clock, so both the
 * initial load and every reload run exactly the same checks.
 */
export function parseCertificateMaterial(
  files: CertificateFiles,
  now: Date,
): Result<CertificateMaterial, CertificateError> {
  const chain = pemCertificates(files.cert);
  const leafPem = chain[0];
  if (leafPem === undefined) {
    return err(new CertificateError('invalid_certificate', 'the certificate file holds no PEM certificate'));
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
    for (const pem of chain.slice(1)) new X509Certificate(pem);
  } catch (cause) {
    return err(
      new CertificateError('invalid_certificate', 'the certificate file cannot be parsed', { cause }),
    );
  }

  let key: KeyObject;
  try {
    key = createPrivateKey(files.key);
  } catch {
    // The parser's message may quote key bytes; keep it out of logs and errors.
    return err(
      new CertificateError(
        'invalid_key',
        'the private key file cannot be parsed (encrypted keys are not supported)',
      ),
    );
  }
  if (!leaf.checkPrivateKey(key)) {
    return err(new CertificateError('key_mismatch', 'the private key does not belong to the certificate'));
  }

  const info = certificateInfo(leaf);
  if (info.notAfter.getTime() <= now.getTime()) {
    return err(new CertificateError('expired', `the certificate expired at ${info.notAfter.toISOString()}`));
  }

  if (files.ca !== undefined) {
    const authorities = pemCertificates(files.ca);
    if (authorities.length === 0) {
      return err(new CertificateError('invalid_ca', 'the CA file holds no PEM certificate'));
    }
    try {
      for (const pem of authorities) {
        if (!new X509Certificate(pem).ca) {
          return err(new CertificateError('invalid_ca', 'the CA file holds a certificate that is not a CA'));
        }
      }
    } catch (cause) {
      return err(new CertificateError('invalid_ca', 'the CA file cannot be parsed', { cause }));
    }
  }

  const material: SecureContextMaterial =
    files.ca === undefined
      ? { cert: files.cert, key: files.key }
      : { cert: files.cert, key: files.key, ca: files.ca };
  try {
    createSecureContext(material);
  } catch (cause) {
    const code = cause instanceof Error && 'code' in cause ? String(cause.code) : 'unknown';
    return err(new CertificateError('unusable', `OpenSSL refused the certificate material (${code})`));
  }
  return ok({ ...material, info, digest: digestOf(files) });
}

export type CertificateStatus = 'ok' | 'warn' | 'expired';

export type CertificateEvent =
  | { readonly type: 'reloaded'; readonly certificate: CertificateInfo; readonly previous: CertificateInfo }
  | { readonly type: 'rejected'; readonly reason: CertificateRejectReason; readonly message: string };

export type CheckOutcome =
  | { readonly outcome: 'unchanged' }
  | { readonly outcome: 'reloaded'; readonly certificate: CertificateInfo }
  | { readonly outcome: 'rejected'; readonly reason: CertificateRejectReason; readonly message: string };

export interface CertificateManagerOptions {
  readonly certPath: string;
  readonly keyPath: string;
  /** CA bundle for verifying client certificates (mTLS); watched and reloaded with the rest. */
  readonly caPath?: string;
  /** Label for logs, health and metrics (bounded: one per configured certificate). Default `server`. */
  readonly name?: string;
  readonly logger?: Logger;
  /** Watch the files' directories with fs.watch. Default true; polling runs regardless. */
  readonly watch?: boolean;
  /** Re-read the files this often as a fallback for file systems without change events. 0 disables. Default 30 s. */
  readonly pollIntervalMs?: number;
  /** Wait this long after the last change event before reloading (writers touch several files). Default 200 ms. */
  readonly debounceMs?: number;
  /** Report `warn` when fewer days than this remain. Default 14. */
  readonly warnBeforeDays?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly clock?: () => number;
}

export interface CertificateManager {
  readonly name: string;
  /** The certificate being served to new connections. */
  readonly certificate: CertificateInfo;
  readonly notAfter: Date;
  secondsUntilExpiry(): number;
  /** Whole days left, rounded towards zero (negative once expired: -1 is at least a day past expiry). */
  daysUntilExpiry(): number;
  status(): CertificateStatus;
  /** For `/health/ready`: `warn` under the threshold, `fail` once expired. */
  health(): ComponentHealth;
  secureContextMaterial(): SecureContextMaterial;
  /** Listeners run synchronously after each reload or rejection. Returns an unsubscribe function. */
  subscribe(listener: (event: CertificateEvent) => void): () => void;
  /** Re-reads the files now and reloads if they changed. Checks run one at a time, in call order. */
  check(): Promise<CheckOutcome>;
  /** Starts watching and polling. Idempotent. Watchers and timers never keep the process alive. */
  start(): void;
  stop(): void;
}

const DAY_SECONDS = 86_400;

function readFilesSync(options: CertificateManagerOptions): CertificateFiles {
  const cert = readFileSync(options.certPath, 'utf8');
  const key = readFileSync(options.keyPath, 'utf8');
  return options.caPath === undefined
    ? { cert, key }
    : { cert, key, ca: readFileSync(options.caPath, 'utf8') };
}

async function readFiles(options: CertificateManagerOptions): Promise<CertificateFiles> {
  const [cert, key, ca] = await Promise.all([
    readFile(options.certPath, 'utf8'),
    readFile(options.keyPath, 'utf8'),
    options.caPath === undefined ? undefined : readFile(options.caPath, 'utf8'),
  ]);
  return ca === undefined ? { cert, key } : { cert, key, ca };
}

function fileErrorCode(cause: unknown): string {
  return cause instanceof Error && 'code' in cause ? String(cause.code) : 'unknown';
}

/**
 * Loads and validates the files synchronously (start-up fails with a `CertificateError` naming what is wrong),
 * then reloads asynchronously once `start()` is called.
 */
export function createCertificateManager(options: CertificateManagerOptions): CertificateManager {
  let files: CertificateFiles;
  try {
    files = readFilesSync(options);
  } catch (cause) {
    throw new CertificateError(
      'unreadable',
      `cannot read TLS certificate files (cert ${options.certPath}, key ${options.keyPath}${
        options.caPath === undefined ? '' : `, ca ${options.caPath}`
      }): ${fileErrorCode(cause)}`,
      { cause },
    );
  }
  const clock = options.clock ?? Date.now;
  const parsed = parseCertificateMaterial(files, new Date(clock()));
  if (!parsed.ok) {
    throw new CertificateError(
      parsed.error.code,
      `TLS certificate ${options.certPath}: ${parsed.error.message}`,
      {
        cause: parsed.error,
      },
    );
  }
  return new FileCertificateManager(options, parsed.value, clock);
}

class FileCertificateManager implements CertificateManager {
  readonly name: string;
  readonly #options: CertificateManagerOptions;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #listeners = new Set<(event: CertificateEvent) => void>();
  #material: CertificateMaterial;
  /** Digest (or read error) of the last refused state, so polling does not log the same refusal forever. */
  #lastRejection: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #watchers: FSWatcher[] = [];
  #pollTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #started = false;

  constructor(options: CertificateManagerOptions, material: CertificateMaterial, clock: () => number) {
    this.#options = options;
    this.name = options.name ?? 'server';
    this.#logger = options.logger ?? silentLogger;
    this.#clock = clock;
    this.#material = material;
  }

  get certificate(): CertificateInfo {
    return this.#material.info;
  }

  get notAfter(): Date {
    return this.#material.info.notAfter;
  }

  secondsUntilExpiry(): number {
    return (this.#material.info.notAfter.getTime() - this.#clock()) / 1000;
  }

  daysUntilExpiry(): number {
    // Towards zero: 10.9 days left is 10, expired 1.5 days ago is -1 (and never -0).
    return Math.trunc(this.secondsUntilExpiry() / DAY_SECONDS) || 0;
  }

  status(): CertificateStatus {
    const seconds = this.secondsUntilExpiry();
    if (seconds <= 0) return 'expired';
    return seconds < (this.#options.warnBeforeDays ?? 14) * DAY_SECONDS ? 'warn' : 'ok';
  }

  health(): ComponentHealth {
    const status = this.status();
    return {
      status: status === 'expired' ? 'fail' : status,
      details: {
        not_after: this.notAfter.toISOString(),
        days_until_expiry: this.daysUntilExpiry(),
        fingerprint_sha256: this.#material.info.fingerprint256,
      },
    };
  }

  secureContextMaterial(): SecureContextMaterial {
    const { cert, key, ca } = this.#material;
    return ca === undefined ? { cert, key } : { cert, key, ca };
  }

  subscribe(listener: (event: CertificateEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  check(): Promise<CheckOutcome> {
    const run = this.#queue.then(() => this.#checkNow());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (this.#options.watch ?? true) this.#watchDirectories();
    const pollMs = this.#options.pollIntervalMs ?? 30_000;
    if (pollMs > 0) {
      this.#pollTimer = setInterval(() => void this.check(), pollMs);
      this.#pollTimer.unref();
    }
  }

  stop(): void {
    this.#started = false;
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    clearInterval(this.#pollTimer);
    clearTimeout(this.#debounceTimer);
    this.#pollTimer = undefined;
    this.#debounceTimer = undefined;
  }

  /**
   * Watch directories, not files: Kubernetes secret volumes and cert-manager replace files by renaming a
   * new directory or file into place (`..data` symlink swap, write-then-rename). A watch on the old file's
   * inode would never fire again after the first swap; a directory watch sees every swap.
   */
  #watchDirectories(): void {
    const paths = [this.#options.certPath, this.#options.keyPath, this.#options.caPath];
    const directories = new Set(
      paths.flatMap((path) => (path === undefined ? [] : [dirname(resolve(path))])),
    );
    for (const directory of directories) {
      try {
        const watcher = watch(directory, { persistent: false }, () => this.#scheduleCheck());
        watcher.on('error', (cause) => {
          this.#logger.warn(
            { certificate: this.name, directory, code: fileErrorCode(cause) },
            'TLS certificate directory watch failed; relying on polling',
          );
          watcher.close();
          this.#watchers = this.#watchers.filter((w) => w !== watcher);
        });
        this.#watchers.push(watcher);
      } catch (cause) {
        this.#logger.warn(
          { certificate: this.name, directory, code: fileErrorCode(cause) },
          'cannot watch TLS certificate directory; relying on polling',
        );
      }
    }
  }

  #scheduleCheck(): void {
    if (!this.#started) return;
    clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => void this.check(), this.#options.debounceMs ?? 200);
    this.#debounceTimer.unref();
  }

  async #checkNow(): Promise<CheckOutcome> {
    let files: CertificateFiles;
    try {
      files = await readFiles(this.#options);
    } catch (cause) {
      return this.#reject(
        `unreadable:${fileErrorCode(cause)}`,
        new CertificateError('unreadable', `cannot read the TLS certificate files: ${fileErrorCode(cause)}`),
      );
    }
    const digest = digestOf(files);
    if (digest === this.#material.digest) {
      this.#lastRejection = undefined;
      return { outcome: 'unchanged' };
    }
    const parsed = parseCertificateMaterial(files, new Date(this.#clock()));
    if (!parsed.ok) return this.#reject(digest, parsed.error);

    const previous = this.#material.info;
    this.#material = parsed.value;
    this.#lastRejection = undefined;
    const certificate = parsed.value.info;
    this.#logger.info(
      {
        certificate: this.name,
        fingerprint256: certificate.fingerprint256,
        previousFingerprint256: previous.fingerprint256,
        notAfter: certificate.notAfter.toISOString(),
      },
      'TLS certificate reloaded',
    );
    this.#emit({ type: 'reloaded', certificate, previous });
    return { outcome: 'reloaded', certificate };
  }

  #reject(stateKey: string, error: CertificateError): CheckOutcome {
    const outcome: CheckOutcome = { outcome: 'rejected', reason: error.code, message: error.message };
    if (this.#lastRejection === stateKey) return outcome;
    this.#lastRejection = stateKey;
    this.#logger.error(
      {
        certificate: this.name,
        reason: error.code,
        keptFingerprint256: this.#material.info.fingerprint256,
        certPath: this.#options.certPath,
      },
      `TLS certificate replacement refused, keeping the current one: ${error.message}`,
    );
    this.#emit({ type: 'rejected', reason: error.code, message: error.message });
    return outcome;
  }

  #emit(event: CertificateEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (cause) {
        this.#logger.error(
          { certificate: this.name, event: event.type, code: fileErrorCode(cause) },
          'TLS certificate listener failed',
        );
      }
    }
  }
}
