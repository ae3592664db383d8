import { spawnSync } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir } from './data-dir-lock';
import { isStoreError } from './errors';

function deadPid(): number {
  const exited = spawnSync(process.execPath, ['-e', '']);
  if (typeof exited.pid !== 'number') throw new Error('no child pid');
  return exited.pid;
}

/** What Linux says about a running process: boot id and start time (field 22 of /proc/<pid>/stat). */
async function linuxIncarnation(pid: number): Promise<{ bootId: string; startTicks: string }> {
  const procStat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const startTicks = procStat.slice(procStat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  return { bootId, startTicks };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('lockDataDir', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'signal-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lets one holder in at a time and frees the directory on release', async () => {
    const release = await lockDataDir(dir);
    const refused = await lockDataDir(dir).catch((err: unknown) => err);
    expect(isStoreError(refused) && refused.code).toBe('unavailable');
    expect(isStoreError(refused) && refused.message).toContain(String(process.pid));
    await release();
    await release();
    const again = await lockDataDir(dir);
    await again();
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    await writeFile(join(dir, 'signal-store.lock'), JSON.stringify({ pid: deadPid(), host: hostname() }));
    const release = await lockDataDir(dir);
    const content = JSON.parse(await readFile(join(dir, 'signal-store.lock'), 'utf8'));
    expect(content.pid).toBe(process.pid);
    await release();
  });

  it('treats a lock that is still being written as taken', async () => {
    await writeFile(join(dir, 'signal-store.lock'), '');
    const refused = await lockDataDir(dir).catch((err: unknown) => err);
    expect(isStoreError(refused) && refused.code).toBe('unavailable');
  });

  it('takes over a lock naming this process’s pid that this process does not hold (a restarted PID 1)', async () => {
    // In a container node is PID 1, and after a crash the restarted process is PID 1 again, on the same host.
    for (const left of [
      { pid: process.pid, host: hostname(), startedAt: '2024-01-01T00:00:00Z' },
      { pid: process.pid, host: hostname(), token: 'an-earlier-incarnation' },
    ]) {
      await writeFile(join(dir, 'signal-store.lock'), JSON.stringify(left));
      const release = await lockDataDir(dir);
      const content = JSON.parse(await readFile(join(dir, 'signal-store.lock'), 'utf8'));
      expect(content.pid).toBe(process.pid);
      expect(content.token).toEqual(expect.any(String));
      expect(content.token).not.toBe(left.token);
      await release();
    }
  });

  it.runIf(process.platform === 'linux')(
    'holds a lock of a running pid only if it is the same process (start time and boot), not a reused pid',
    async () => {
      const path = join(dir, 'signal-store.lock');
      const parent = process.ppid; // runs for as long as this test does
      const running = await linuxIncarnation(parent);
      const refused = async (): Promise<unknown> => lockDataDir(dir).catch((err: unknown) => err);

      await writeFile(path, JSON.stringify({ pid: parent, host: hostname(), ...running }));
      const same = await refused();
      expect(isStoreError(same) && same.code).toBe('unavailable');
      expect(isStoreError(same) && same.message).toContain(`process ${parent}`);

      // No incarnation recorded (an older lock, or written where there is no /proc): a running pid holds it.
      await writeFile(path, JSON.stringify({ pid: parent, host: hostname() }));
      expect(isStoreError(await refused())).toBe(true);

      for (const reused of [
        { ...running, startTicks: String(BigInt(running.startTicks) + 1n) },
        { ...running, bootId: '00000000-0000-4000-8000-000000000000' },
      ]) {
        await writeFile(path, JSON.stringify({ pid: parent, host: hostname(), ...reused }));
        const release = await lockDataDir(dir);
        expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid);
        await release();
      }
    },
  );

  it('records who took the lock so a reused pid can be told apart (Linux: boot id and start time)', async () => {
    const release = await lockDataDir(dir);
    const content = JSON.parse(await readFile(join(dir, 'signal-store.lock'), 'utf8'));
    expect(content).toMatchObject({ pid: process.pid, host: hostname() });
    if (process.platform === 'linux') expect(content).toMatchObject(await linuxIncarnation(process.pid));
    await release();
  });

  it('lets only one of two openers that found the same stale lock take it over', async () => {
    await writeFile(join(dir, 'signal-store.lock'), JSON.stringify({ pid: deadPid(), host: hostname() }));
    // Both openers judge the lock stale before either acts; the first then takes it over completely before
    // the second goes on with the stale lock it read.
    const bothJudged = deferred();
    const firstDone = deferred();
    let arrived = 0;
    const beforeTakeover = async (): Promise<void> => {
      arrived += 1;
      const second = arrived === 2;
      if (second) bothJudged.resolve();
      await bothJudged.promise;
      if (second) await firstDone.promise;
    };
    const attempts = [lockDataDir(dir, { beforeTakeover }), lockDataDir(dir, { beforeTakeover })].map((p) =>
      p.then(
        (release) => ({ release }),
        (error: unknown) => ({ error }),
      ),
    );
    const first = await Promise.race(attempts);
    expect(first).toHaveProperty('release');
    const winner = JSON.parse(await readFile(join(dir, 'signal-store.lock'), 'utf8'));
    firstDone.resolve();
    const outcomes = await Promise.all(attempts);

    expect(arrived).toBe(2);
    const loser = outcomes.find((o) => 'error' in o);
    expect(loser && 'error' in loser && isStoreError(loser.error) && loser.error.code).toBe('unavailable');
    expect(outcomes.filter((o) => 'release' in o)).toHaveLength(1);
    // The winner's lock is untouched, and no takeover marker is left behind.
    expect(JSON.parse(await readFile(join(dir, 'signal-store.lock'), 'utf8'))).toEqual(winner);
    await expect(access(join(dir, 'signal-store.lock.takeover'))).rejects.toThrow();
    for (const o of outcomes) if ('release' in o) await o.release();
    await expect(access(join(dir, 'signal-store.lock'))).rejects.toThrow();
  });

  it('takes over a stale lock despite a takeover marker left by an opener that crashed mid-takeover', async () => {
    await writeFile(join(dir, 'signal-store.lock'), JSON.stringify({ pid: deadPid(), host: hostname() }));
    const marker = join(dir, 'signal-store.lock.takeover');
    await mkdir(marker);
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(marker, longAgo, longAgo);
    const release = await lockDataDir(dir);
    expect(JSON.parse(await readFile(join(dir, 'signal-store.lock'), 'utf8')).pid).toBe(process.pid);
    await expect(access(marker)).rejects.toThrow();
    await release();
  });
});
