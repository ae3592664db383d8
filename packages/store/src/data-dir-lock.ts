import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rmdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { nodeCode, StoreError } from './errors';

/**
 * PGlite does not stop a second instance (in this process or another) from opening the same data
 * directory, and two writers corrupt it. Like Postgres' postmaster.pid, a lock file inside the directory
 * names the owning process; a lock left by a process that no longer runs on this host is taken over.
 *
 * Two hazards shape the code:
 * - A pid names a process only while it runs. In a container node runs as PID 1, and after a crash (OOM,
 *   SIGKILL) the restarted process is PID 1 again on the same host name. So a lock naming our own pid is ours
 *   only if this process holds it (its token is in `heldTokens`); otherwise an earlier incarnation left it.
 *   A lock naming another running pid is stale when that pid now belongs to a process started at another
 *   time or in another boot (Linux: /proc start time and boot id, recorded in the lock).
 * - Two openers can find the same stale lock. If both removed it and created their own, the slower one would
 *   delete the lock the faster one had just created, and both would run. Takeover is therefore serialised
 *   through a marker created atomically (mkdir), and under it the lock is read again and removed only if it
 *   is still exactly the content judged stale.
 *
 * Not covered: processes in different PID namespaces that share a host name (containers on the host network)
 * and a data directory cannot see each other's pids. Give each container its own host name (Docker's
 * default) or its own data directory.
 */
const LOCK_FILE = 'signal-store.lock';
const TAKEOVER_MARKER = 'signal-store.lock.takeover';
/** A lock file still empty or half-written after this long was left by a crash while it was written. */
const WRITE_GRACE_MS = 10_000;
/** A takeover takes milliseconds; a marker older than this was left by an opener that crashed during one. */
const TAKEOVER_STALE_MS = 10_000;
/** How long an opener waits for another opener's takeover to finish before giving up. */
const TAKEOVER_WAIT_MS = 2_000;
const RETRY_MS = 20;

const lockContent = z.object({
  pid: z.number().int(),
  host: z.string(),
  /** Random per acquisition: tells this process's own lock from one an earlier process with our pid left. */
  token: z.string().optional(),
  /** Linux: /proc/sys/kernel/random/boot_id when the lock was taken. */
  bootId: z.string().optional(),
  /** Linux: the owner's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  startTicks: z.string().optional(),
});
type LockOwner = z.infer<typeof lockContent>;

/**
 * Tokens of the locks this process holds or is taking. Process-wide on purpose: the question it answers,
 * "is this lock naming my pid mine?", is about the process, not about one database instance.
 */
const heldTokens = new Set<string>();

export interface LockDataDirOptions {
  /**
   * Test seam: awaited after the existing lock was judged stale and before it is taken over, so a test can
   * interleave two openers deterministically.
   */
  readonly beforeTakeover?: () => Promise<void>;
}

interface Incarnation {
  readonly bootId: string;
  readonly startTicks: string;
}

/** Boot id and start time of `pid` on Linux: together they name one process among all that had this pid. */
async function incarnation(pid: number | 'self'): Promise<Incarnation | undefined> {
  try {
    const [boot, procStat] = await Promise.all([
      readFile('/proc/sys/kernel/random/boot_id', 'utf8'),
      readFile(`/proc/${pid}/stat`, 'utf8'),
    ]);
    // Field 2, the command name, is in parentheses and may itself contain spaces and ')': fields 3… follow
    // the last ')'. Field 22 is the start time.
    const startTicks = procStat.slice(procStat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    const bootId = boot.trim();
    if (startTicks === undefined || !/^\d+$/.test(startTicks) || bootId.length === 0) return undefined;
    return { bootId, startTicks };
  } catch {
    return undefined; // not Linux, or the process is gone
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return nodeCode(err) === 'EPERM';
  }
}

async function ownerRuns(owner: LockOwner): Promise<boolean> {
  // Another host's processes cannot be checked from here: the lock stands until its operator removes it.
  if (owner.host !== hostname()) return true;
  if (owner.pid === process.pid) return owner.token !== undefined && heldTokens.has(owner.token);
  if (!processRuns(owner.pid)) return false;
  if (owner.bootId === undefined || owner.startTicks === undefined) return true;
  const now = await incarnation(owner.pid);
  // Cannot tell (no /proc, or it exited a moment ago): assume it runs; the next attempt will know.
  if (now === undefined) return true;
  return now.bootId === owner.bootId && now.startTicks === owner.startTicks;
}

function parseOwner(raw: string): LockOwner | undefined {
  try {
    return lockContent.parse(JSON.parse(raw));
  } catch {
    return undefined;
  }
}

async function modifiedWithin(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs < ms;
  } catch {
    return false;
  }
}

function cannotLock(dataDir: string, err: unknown): StoreError {
  return new StoreError(
    'invalid_config',
    `cannot create the lock file in data directory ${dataDir} (${nodeCode(err) ?? 'unknown'})`,
  );
}

function beingLocked(dataDir: string): StoreError {
  return new StoreError('unavailable', `data directory ${dataDir} is being locked by another process`);
}

/** The lock file's text, or undefined when there is none. */
async function readLock(path: string, dataDir: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (nodeCode(err) === 'ENOENT') return undefined;
    throw cannotLock(dataDir, err);
  }
}

/** Creates the lock file with `content` if there is none; false when one exists. */
async function create(path: string, content: string, dataDir: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if (nodeCode(err) === 'EEXIST') return false;
    throw cannotLock(dataDir, err);
  }
  try {
    await handle.writeFile(content);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw cannotLock(dataDir, err);
  }
  await handle.close();
  return true;
}

type Verdict =
  | { readonly kind: 'gone' }
  | { readonly kind: 'held'; readonly error: StoreError }
  | { readonly kind: 'stale'; readonly raw: string };

async function judge(path: string, dataDir: string): Promise<Verdict> {
  const raw = await readLock(path, dataDir);
  if (raw === undefined) return { kind: 'gone' };
  const owner = parseOwner(raw);
  if (owner === undefined) {
    // Created and not yet written by another opener, or left half-written by a crash.
    if (await modifiedWithin(path, WRITE_GRACE_MS)) return { kind: 'held', error: beingLocked(dataDir) };
    return { kind: 'stale', raw };
  }
  if (await ownerRuns(owner)) {
    return {
      kind: 'held',
      error: new StoreError(
        'unavailable',
        `data directory ${dataDir} is in use by process ${owner.pid} on ${owner.host}; stop it first (or delete ${LOCK_FILE} if that process is gone)`,
      ),
    };
  }
  return { kind: 'stale', raw };
}

/**
 * Replaces the stale lock whose text is `staleRaw` with ours, under the takeover marker. Under it the lock is
 * read again: if it is no longer `staleRaw` (another opener took it over meanwhile), nothing is removed.
 */
async function takeOver(
  dataDir: string,
  path: string,
  staleRaw: string,
  content: string,
): Promise<'taken' | 'retry'> {
  const marker = join(dataDir, TAKEOVER_MARKER);
  try {
    await mkdir(marker, { mode: 0o700 });
  } catch (err) {
    if (nodeCode(err) !== 'EEXIST') throw cannotLock(dataDir, err);
    // Another opener is taking over now, or one crashed in the middle of a takeover and left its marker.
    if (!(await modifiedWithin(marker, TAKEOVER_STALE_MS))) await rmdir(marker).catch(() => undefined);
    return 'retry';
  }
  try {
    if ((await readLock(path, dataDir)) !== staleRaw) return 'retry';
    await unlink(path).catch((err: unknown) => {
      if (nodeCode(err) !== 'ENOENT') throw cannotLock(dataDir, err);
    });
    // Fails only if a new opener created a lock in the moment the path was free: it holds the directory.
    return (await create(path, content, dataDir)) ? 'taken' : 'retry';
  } finally {
    await rmdir(marker).catch(() => undefined);
  }
}

/** Takes the directory's lock or throws `unavailable` naming the owner; resolves to the release function. */
export async function lockDataDir(
  dataDir: string,
  options: LockDataDirOptions = {},
): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE);
  const token = randomBytes(16).toString('hex');
  const me = await incarnation('self');
  const content = JSON.stringify({
    pid: process.pid,
    host: hostname(),
    token,
    ...me,
    startedAt: new Date().toISOString(),
  });
  // Registered before the file exists: another opener in this process must never judge it stale.
  heldTokens.add(token);
  try {
    const waitUntil = Date.now() + TAKEOVER_WAIT_MS;
    for (;;) {
      if (await create(path, content, dataDir)) break;
      const verdict = await judge(path, dataDir);
      if (verdict.kind === 'held') throw verdict.error;
      if (verdict.kind === 'stale') {
        await options.beforeTakeover?.();
        if ((await takeOver(dataDir, path, verdict.raw, content)) === 'taken') break;
      }
      if (Date.now() >= waitUntil) throw beingLocked(dataDir);
      // Gone: released a moment ago, create it at once. Otherwise let the other opener finish.
      if (verdict.kind !== 'gone') await sleep(RETRY_MS);
    }
    // Re-verify: the file on disk must be the one just written.
    if (parseOwner((await readLock(path, dataDir)) ?? '')?.token !== token) throw beingLocked(dataDir);
  } catch (err) {
    heldTokens.delete(token);
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    try {
      // Only our own lock is removed, never one that replaced it.
      const raw = await readLock(path, dataDir).catch(() => undefined);
      if (raw !== undefined && parseOwner(raw)?.token === token) await unlink(path).catch(() => undefined);
    } finally {
      heldTokens.delete(token);
    }
  };
}
