import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSecretFile } from './secret-file';

describe('createSecretFile', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-file-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file, owner-only, in a new owner-only directory, and leaves nothing else behind', () => {
    const dir = join(fresh(), 'data');
    const path = join(dir, 'development.key');
    expect(createSecretFile(path, 'abc\n')).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('abc\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual(['development.key']);
  });

  it('never overwrites: an existing file (another process won the race) is kept and false returned', () => {
    const dir = fresh();
    const path = join(dir, 'development.key');
    writeFileSync(path, 'theirs\n');
    expect(createSecretFile(path, 'ours\n')).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('theirs\n');
    expect(readdirSync(dir)).toEqual(['development.key']);
  });
});
