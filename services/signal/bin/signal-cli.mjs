#!/usr/bin/env node
// `pnpm signal-cli <verb>` resolves to this bin (no script header on stdout, so `generate-key` output can be
// captured as is). The CLI is TypeScript, loaded through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
