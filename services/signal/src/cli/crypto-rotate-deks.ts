import { createAuditLog, cryptoAuditSink } from '@signal/audit';
import { bootstrapCryptoWithKms } from '@signal/runtime';
import { cliLogger } from './cli-logger';
import { describeError, withDatabase } from './database';
import type { Verb } from './verb';

/**
 * Envelope mode's DEK rotation (docs/adr/0006): a new active DEK for every data class, the old ones
 * decrypt-only. Data moves when `crypto-reencrypt start` (or POST /v1/admin/crypto/re-encrypt) runs.
 */
export const cryptoRotateDeks: Verb = {
  name: 'crypto-rotate-deks',
  summary: 'envelope mode: a new active DEK per data class (then run crypto-reencrypt start)',
  help: `usage: signal-cli crypto-rotate-deks

Envelope mode only (ENCRYPTION_ENVELOPE=true, or a KMS ENCRYPTION_PROVIDER). Generates a new data-encryption
key for every data class, wraps it with the configured KEK and makes it active; the previous DEKs become
decrypt-only, so existing data still opens. Records crypto.key_rotated in the audit log. Then run
\`signal-cli crypto-reencrypt start\` to move existing data to the new DEKs. Running services see the new
DEKs within 10 seconds.

Prints {"active_dek_ids":{"general","credentials","identity","tokens"}} on stdout (ids, never keys).
Exit status: 0 rotated, 1 error (not in envelope mode, key provider unavailable), 2 usage.`,
  async run(args, io) {
    if (args.length > 0) {
      io.stderr(`crypto-rotate-deks takes no arguments\n\n${cryptoRotateDeks.help}\n`);
      return 2;
    }
    try {
      return await withDatabase(io, async (db, config) => {
        if (!config.encryption.envelope) {
          io.stderr(
            'crypto-rotate-deks needs envelope mode: set ENCRYPTION_ENVELOPE=true (or a KMS ENCRYPTION_PROVIDER); with direct keys, rotate ENCRYPTION_KEY as the runbook says\n',
          );
          return 1;
        }
        const logger = cliLogger(io, config);
        const sink = cryptoAuditSink(createAuditLog({ db, logger }), logger);
        const runtime = await bootstrapCryptoWithKms({ config, logger, audit: sink, db });
        try {
          if (runtime.rotateDeks === undefined) throw new Error('this key provider cannot rotate DEKs');
          const previous = runtime.crypto.keyring.currentKeyId;
          const active = await runtime.rotateDeks();
          sink.record({
            action: 'crypto.key_rotated',
            provider: runtime.crypto.keyring.provider,
            keyId: active.general,
            previousKeyId: previous,
          });
          io.stdout(`${JSON.stringify({ active_dek_ids: active })}\n`);
          io.stderr('DEKs rotated: run `signal-cli crypto-reencrypt start` to move existing data to them\n');
          return 0;
        } finally {
          await runtime.close();
          await sink.drain();
        }
      });
    } catch (err) {
      io.stderr(`crypto-rotate-deks failed: ${describeError(err)}\n`);
      return 1;
    }
  },
};
