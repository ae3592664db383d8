import { createAuditLog } from '@signal/audit';
import { describeError, withDatabase } from './database';
import type { Verb } from './verb';

export const auditVerify: Verb = {
  name: 'audit-verify',
  summary: "check the audit log's hash chain for edited, deleted or reordered entries",
  help: `usage: signal-cli audit-verify [--anchor <seq>:<hash>]

Recomputes the audit log's hash chain from the first retained entry to the head and reports the first entry
that was edited, deleted, inserted or reordered behind Signal's back. Prints the head (seq and hash): keep it
outside the database and pass it back later with --anchor to detect a rewritten tail as well.

Exit status: 0 intact, 1 tampered or unreadable.`,
  async run(args, io) {
    const anchorArg = args[args.indexOf('--anchor') + 1];
    let anchor: { seq: number; hash: string } | undefined;
    if (args.includes('--anchor')) {
      const match = /^(\d+):([0-9a-f]{64})$/.exec(anchorArg ?? '');
      if (!match?.[1] || !match[2]) {
        io.stderr('--anchor must be <seq>:<64 hex hash>, as printed by a previous audit-verify\n');
        return 2;
      }
      anchor = { seq: Number(match[1]), hash: match[2] };
    }
    try {
      const result = await withDatabase(io, (db) =>
        createAuditLog({ db, logger: { debug() {}, info() {}, warn() {}, error() {} } }).verify(
          anchor ? { anchor } : {},
        ),
      );
      if (result.ok) {
        const head = 'head' in result && result.head ? ` head ${result.head.seq}:${result.head.hash}` : '';
        io.stdout(`audit log intact: ${result.rows} entries${head}\n`);
        return 0;
      }
      io.stdout(`audit log TAMPERED: first bad entry seq ${result.firstBadSeq} (${result.reason})\n`);
      return 1;
    } catch (err) {
      io.stderr(`audit-verify failed: ${describeError(err)}\n`);
      return 1;
    }
  },
};
