import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { nodeCode, StoreError } from './errors';

/**
 * PGlite does not stop a second instance (in this process or another) from opening the same data
 * directory, and two writers corrupt it. Like Postgres' postmaster.pid, a lock file inside the directory
 * names the owning process; a lock left by a process that no longer runs on this host is taken over.
 */
const LOCK_FILE = 'signal-store.lock';

const lockContent = z.object({ pid: z.number().int(), host: z.string() });

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return nodeCode(err) === 'EPERM';
  }
}

async function readOwner(path: string): Promise<z.infer<typeof lockContent> | undefined> {
  try {
    return lockContent.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return undefined;
  }
}

async function recentlyWritten(path: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs < 10_000;
  } catch {
    return false;
  }
}

/** Takes the directory's lock or throws `unavailable` naming the owner; resolves to the release function. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(mine);
        await handle.sync();
      } finally {
        await handle.close();
      }
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      const code = nodeCode(err);
      if (code !== 'EEXIST') {
        throw new StoreError(
          'invalid_config',
          `cannot create the lock file in data directory ${dataDir} (${code ?? 'unknown'})`,
        );
      }
    }
    const owner = await readOwner(path);
    if (owner !== undefined && (owner.host !== hostname() || processRuns(owner.pid))) {
      throw new StoreError(
        'unavailable',
        `data directory ${dataDir} is in use by process ${owner.pid} on ${owner.host}; stop it first (or delete ${LOCK_FILE} if that process is gone)`,
      );
    }
    if (owner === undefined && (await recentlyWritten(path))) {
      // Another process is between creating the file and writing its pid.
      throw new StoreError('unavailable', `data directory ${dataDir} is being locked by another process`);
    }
    // Stale (owner gone) or unreadable from a crash while writing: take it over.
    await unlink(path).catch(() => undefined);
  }
  throw new StoreError('unavailable', `data directory ${dataDir} is being locked by another process`);
}
