import { ConfigError, loadConfig } from '@signal/config';
import { createKeyring, cryptoHealth, runSelfTest } from '@signal/crypto';
import type { Verb } from './verb';

export const checkKey: Verb = {
  name: 'check-key',
  summary: 'validate ENCRYPTION_KEY (and ENCRYPTION_KEY_PREVIOUS) and print their key ids',
  help: `usage: signal-cli check-key

Reads ENCRYPTION_KEY and, during a rotation, ENCRYPTION_KEY_PREVIOUS from the environment (or signal.yaml),
validates them, runs the encryption self-test and a round trip with each key, and prints each key's id
(a fingerprint derived from the key, safe to share) and the mode. It never prints a key.

Exit status: 0 valid, 1 invalid or missing (the message says what to fix).`,
  async run(_args, io) {
    try {
      const config = loadConfig({ env: io.env, cwd: io.cwd });
      const key = config.encryption.key;
      if (!key) {
        io.stderr(
          'ENCRYPTION_KEY is not set: set ENCRYPTION_KEY to 64 hexadecimal characters (generate one with `pnpm signal-cli generate-key`)\n',
        );
        return 1;
      }
      runSelfTest();
      const previous = config.encryption.previousKey;
      const keyring = createKeyring({
        current: Buffer.from(key.reveal(), 'hex'),
        ...(previous ? { previous: Buffer.from(previous.reveal(), 'hex') } : {}),
      });
      const health = cryptoHealth(keyring);
      io.stdout(`mode:         ${keyring.dualKeyMode ? 'dual-key (rotation in progress)' : 'single key'}\n`);
      io.stdout(`current key:  ${keyring.currentKeyId}\n`);
      if (keyring.previousKeyId !== undefined) io.stdout(`previous key: ${keyring.previousKeyId}\n`);
      io.stdout(`self-test:    passed\nround trip:   ${health.status === 'healthy' ? 'passed' : 'FAILED'}\n`);
      return health.status === 'healthy' ? 0 : 1;
    } catch (err) {
      const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
      io.stderr(`${message}\n`);
      return 1;
    }
  },
};
