import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@signal/testkit';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from './settings';

describe('README configuration table', () => {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  it.each(Object.entries(SETTINGS))('documents %s with its signal.yaml key', (name, spec) => {
    expect(readme).toContain(`| \`${name}\` | \`${spec.yaml}\` |`);
  });
});
