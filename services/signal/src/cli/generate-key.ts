import { randomBytes } from 'node:crypto';
import type { Verb } from './verb';

export const generateKey: Verb = {
  name: 'generate-key',
  summary: 'print a new 256-bit encryption key (64 hex characters)',
  help: `usage: signal-cli generate-key

Prints 32 bytes from the operating system's CSPRNG as 64 lowercase hexadecimal characters and nothing else
on stdout, so it can be captured directly:

  export ENCRYPTION_KEY="$(pnpm --silent signal-cli generate-key)"

Store it in a secrets manager: losing it makes all stored credentials unrecoverable.`,
  async run(_args, io) {
    io.stdout(`${randomBytes(32).toString('hex')}\n`);
    return 0;
  },
};
