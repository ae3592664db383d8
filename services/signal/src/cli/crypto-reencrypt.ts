import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAuditLog, cryptoAuditSink } from '@signal/audit';
import type { SignalConfig } from '@signal/config';
import { ENCRYPTED_COLUMNS } from '@signal/control-plane';
import { DELIVERY_WORKER_ENCRYPTED_COLUMNS } from '@signal/delivery-worker';
import { IDENTITY_ENCRYPTED_COLUMNS } from '@signal/identity-hub';
import {
  createReencryptionJobs,
  type ReencryptionJobs,
  type ReencryptionStatus,
  readReencryptionFailures,
  readReencryptionStatus,
} from '@signal/management-api';
import { bootstrapCryptoWithKms, DEV_KEY_FILE } from '@signal/runtime';
import type { Database } from '@signal/store';
import { cliLogger } from './cli-logger';
import { describeError, withDatabase } from './database';
import { parseOptions, parseWholeNumber, UsageError } from './options';
import { createProgress } from './progress';
import type { CliIo, Verb } from './verb';

/**
 * Every encrypted column of a deployment (`signal-cli migrate` creates every service's tables): the control
 * plane's, the identity graph's and the delivery worker's (DLQ index and retry schedule).
 */
export const DEPLOYMENT_ENCRYPTED_COLUMNS = Object.freeze([
  ...ENCRYPTED_COLUMNS,
  ...IDENTITY_ENCRYPTED_COLUMNS,
  ...DELIVERY_WORKER_ENCRYPTED_COLUMNS,
]);

const DEFAULT_LEASE_SECONDS = 30;
const POLL_MS = 1000;

type Progress = ReturnType<typeof createProgress>;

const view = (status: ReencryptionStatus) => ({
  total: status.total_records,
  done: status.processed_records + status.failed_records,
  failed: status.failed_records,
});

/**
 * 0 for `completed` with no failed record, and for a job still running when the caller only asked where it
 * stands; 1 for failed records, a failed job, or a job left running by an interrupt.
 */
function exitCodeOf(status: ReencryptionStatus, waited: boolean): number {
  if (status.failed_records > 0 || status.status === 'failed') return 1;
  return status.status === 'completed' || !waited ? 0 : 1;
}

/**
 * Polls the latest job until it is no longer running (or the verb is interrupted). With `takeOver`, each
 * poll first offers to continue a job whose owner stopped renewing its lease (it died), so an attached
 * `start` finishes the job itself instead of waiting for a process that is gone.
 */
async function followJob(
  db: Database,
  io: CliIo,
  progress: Progress | null,
  takeOver?: () => Promise<void>,
): Promise<ReencryptionStatus | null> {
  for (;;) {
    await takeOver?.();
    const status = await readReencryptionStatus(db);
    if (status === null || status.status !== 'running' || io.signal?.aborted === true) return status;
    progress?.update(view(status));
    try {
      await sleep(POLL_MS, undefined, io.signal ? { signal: io.signal } : {});
    } catch {
      // Interrupted: report where the job stands.
    }
  }
}

/** The final status on stdout (the exact API JSON), the failed records (ids and reasons only) on stderr. */
async function report(
  db: Database,
  status: ReencryptionStatus,
  io: CliIo,
  progress: Progress | null,
  waited: boolean,
): Promise<number> {
  progress?.finish(view(status));
  if (status.failed_records > 0) {
    const failures = await readReencryptionFailures(db, 100);
    io.stderr(
      `${status.failed_records} record(s) failed and stay under their old key; fix them and run start again:\n${failures
        .map((f) => `  ${f.column} ${f.recordId}: ${f.reason}\n`)
        .join('')}`,
    );
  }
  if (status.status === 'running' && waited) {
    io.stderr('interrupted: the job is still running; run `signal-cli crypto-reencrypt status --follow`\n');
  }
  io.stdout(`${JSON.stringify(status)}\n`);
  return exitCodeOf(status, waited);
}

export function allowsDevelopmentKey(config: SignalConfig): boolean {
  // Only an embedded deployment that already runs on its generated development key; never create one here.
  return config.database.url === null && existsSync(join(config.dataDir, DEV_KEY_FILE));
}

async function start(
  db: Database,
  config: SignalConfig,
  io: CliIo,
  options: { follow: boolean; leaseMs: number },
): Promise<number> {
  const progress = options.follow ? createProgress(io) : null;
  const logger = cliLogger(io, config, () => progress?.clear());
  const audit = createAuditLog({ db, logger });
  const sink = cryptoAuditSink(audit, logger);
  let jobs: ReencryptionJobs | undefined;
  let closeCrypto = async (): Promise<void> => {};
  try {
    const cryptoRuntime = await bootstrapCryptoWithKms({
      config,
      logger,
      audit: sink,
      allowDevelopmentKey: allowsDevelopmentKey(config),
      db,
    });
    closeCrypto = cryptoRuntime.close;
    const { crypto } = cryptoRuntime;
    jobs = createReencryptionJobs({
      db,
      crypto,
      audit,
      logger,
      columns: DEPLOYMENT_ENCRYPTED_COLUMNS,
      leaseMs: options.leaseMs,
      ...(cryptoRuntime.rewrapKeys === undefined ? {} : { rewrapKeys: cryptoRuntime.rewrapKeys }),
      ...(progress === null
        ? {}
        : { onProgress: (status: ReencryptionStatus) => progress.update(view(status)) }),
    });
    const running = jobs;
    const interrupted = new Promise<void>((resolve) => {
      if (io.signal?.aborted) resolve();
      io.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    /** Runs the job loop of this process until the job ends, is taken over, or the verb is interrupted. */
    const runHere = async (message: string) => {
      progress?.clear();
      io.stderr(
        `${message}: it runs in this process until it completes (Ctrl-C pauses it; start again to resume)\n`,
      );
      await Promise.race([running.idle(), interrupted]);
      // On interrupt the lease is released at once, so another process (or a new start) continues.
      await running.stop();
    };
    const outcome = await running.start(null);
    if (outcome.kind === 'already_running') {
      progress?.clear();
      io.stderr('a re-encryption job is already running in another process: following it\n');
    } else {
      await runHere(
        `re-encryption job ${outcome.jobId} ${outcome.kind === 'resumed' ? 'resumed' : 'started'}`,
      );
    }
    // The job ended here, or runs elsewhere: follow it to its end, taking it over if its process dies.
    const status = await followJob(db, io, progress, async () => {
      if (io.signal?.aborted !== true && (await running.resumeOrphaned())) {
        await runHere('the process running the re-encryption job stopped; job taken over');
      }
    });
    if (status === null) throw new Error('the re-encryption job disappeared');
    return await report(db, status, io, progress, true);
  } finally {
    await jobs?.stop();
    await closeCrypto();
    await sink.drain();
  }
}

/** Reads the job table only: no key needed. */
async function status(db: Database, io: CliIo, follow: boolean): Promise<number> {
  const progress = follow ? createProgress(io) : null;
  const current = follow ? await followJob(db, io, progress) : await readReencryptionStatus(db);
  if (current === null) {
    io.stderr('no re-encryption job has run yet: start one with `signal-cli crypto-reencrypt start`\n');
    return 1;
  }
  return report(db, current, io, progress, follow);
}

export const cryptoReencrypt: Verb = {
  name: 'crypto-reencrypt',
  summary:
    're-encrypt stored secrets, identity data, dead letters and scheduled retries under the current key (start | status)',
  help: `usage: signal-cli crypto-reencrypt start [--follow] [--lease-seconds <n>]
       signal-cli crypto-reencrypt status [--follow]

The runbook's "Re-encrypt existing data" step, from the command line (the same job as
POST /v1/admin/crypto/re-encrypt, on the database in DATABASE_URL or the embedded SIGNAL_DATA_DIR).

start   Starts a job with the keys in ENCRYPTION_KEY / ENCRYPTION_KEY_PREVIOUS (env or signal.yaml): every
        pipeline secret, integration credential, identity record, dead letter and scheduled retry not under
        the current key is opened and sealed again (one stored before encryption at rest is sealed). The job
        runs in this process until it completes; if one already runs elsewhere this attaches to it, and if
        one was orphaned by a crash it is resumed after its last committed batch.
        Ctrl-C pauses it (another process, or start again, continues). Records that fail (corrupted, unknown
        key, database timeout) stay under their old key and are listed on stderr with the reason.
        --lease-seconds: how long a crash of this process holds the job before another may take it over
        (default ${DEFAULT_LEASE_SECONDS}).
status  Prints the latest job's status.

--follow draws a progress bar on stderr until the job is completed or failed. The result is always the
status JSON on stdout, exactly as the API returns it:
  {"status","total_records","processed_records","failed_records","started_at","completed_at"}

Exit status: 0 completed with failed_records 0 (status: also while running), 1 failed records, a failed
or interrupted job, or an error; 2 usage.`,
  async run(args, io) {
    let follow: boolean;
    let leaseSeconds: number;
    let action: string | undefined;
    try {
      const parsed = parseOptions(args, { valued: ['lease-seconds'], flags: ['follow'] });
      follow = parsed.flags.has('follow');
      leaseSeconds =
        parseWholeNumber('lease-seconds', parsed.values.get('lease-seconds'), { min: 2, max: 3600 }) ??
        DEFAULT_LEASE_SECONDS;
      if (parsed.positionals.length !== 1) throw new UsageError('give exactly one action: start or status');
      action = parsed.positionals[0];
      if (action !== 'start' && action !== 'status') throw new UsageError(`unknown action "${action}"`);
      if (action === 'status' && parsed.values.has('lease-seconds')) {
        throw new UsageError('--lease-seconds applies to start only');
      }
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      io.stderr(`${err.message}\n\n${cryptoReencrypt.help}\n`);
      return 2;
    }
    try {
      return await withDatabase(io, (db, config) =>
        action === 'start'
          ? start(db, config, io, { follow, leaseMs: leaseSeconds * 1000 })
          : status(db, io, follow),
      );
    } catch (err) {
      io.stderr(`crypto-reencrypt failed: ${describeError(err)}\n`);
      return 1;
    }
  },
};
