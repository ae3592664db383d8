import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockDataDir } from './data-dir-lock';
import { isStoreError } from './errors';

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
    const exited = spawnSync(process.execPath, ['-e', '']);
    const deadPid = exited.pid;
    expect(typeof deadPid).toBe('number');
    await writeFile(join(dir, 'signal-store.lock'), JSON.stringify({ pid: deadPid, host: hostname() }));
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
});
