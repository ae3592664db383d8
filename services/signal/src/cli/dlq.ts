import { createAuditLog, cryptoAuditSink } from '@signal/audit';
import type { SignalConfig } from '@signal/config';
import type { CryptoService } from '@signal/crypto';
import {
  createDlqStore,
  type DeadLetterEntry,
  type DeadLetterFilter,
  replayDlq,
} from '@signal/delivery-worker';
import { bootstrapCryptoWithKms, openBus } from '@signal/runtime';
import type { Database } from '@signal/store';
import type { Logger } from '@signal/telemetry';
import { cliLogger } from './cli-logger';
import { allowsDevelopmentKey } from './crypto-reencrypt';
import { describeError, withDatabase } from './database';
import { type ParsedOptions, parseInstant, parseOptions, parseWholeNumber, UsageError } from './options';
import type { CliIo, Verb } from './verb';

const LIST_DEFAULT = 50;
const LIST_MAX = 1000;
/** Entries per replay round (one publish per topic, then marked replayed). */
const REPLAY_BATCH = 100;
const DLQ_ID = /^[1-9][0-9]{0,18}$/;

type Filter = Pick<DeadLetterFilter, 'integrationId' | 'from' | 'to'>;

function filterOf(options: ParsedOptions, untilAllowed: boolean): Filter {
  const integrationId = options.values.get('integration');
  const from = parseInstant('since', options.values.get('since'));
  const to = untilAllowed ? parseInstant('until', options.values.get('until')) : undefined;
  if (from !== undefined && to !== undefined && from >= to)
    throw new UsageError('--since must be before --until');
  return {
    ...(integrationId === undefined ? {} : { integrationId }),
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
  };
}

function row(entry: DeadLetterEntry): string {
  return [
    entry.id.padStart(8),
    entry.failedAt.toISOString(),
    (entry.integrationId ?? '-').padEnd(40),
    entry.error.padEnd(22),
    String(entry.attempts ?? '-').padStart(3),
    entry.messageId ?? '-',
  ].join('  ');
}

/**
 * Runs `fn` with the deployment's crypto (ENCRYPTION_KEY / ENCRYPTION_KEY_PREVIOUS, or the KMS in envelope
 * mode): dead letters are sealed at rest (`delivery_dlq.letter`), and a replay's bus seals what it publishes.
 * A letter that does not open is audited (`crypto.decrypt_failed`) like any other ciphertext.
 */
async function withCrypto<T>(
  db: Database,
  config: SignalConfig,
  io: CliIo,
  fn: (crypto: CryptoService, logger: Logger) => Promise<T>,
): Promise<T> {
  const logger = cliLogger(io, config);
  const sink = cryptoAuditSink(createAuditLog({ db, logger }), logger);
  let close = async (): Promise<void> => {};
  try {
    const runtime = await bootstrapCryptoWithKms({
      config,
      logger,
      audit: sink,
      allowDevelopmentKey: allowsDevelopmentKey(config),
      db,
    });
    close = runtime.close;
    return await fn(runtime.crypto, logger);
  } finally {
    await close();
    await sink.drain();
  }
}

async function list(db: Database, crypto: CryptoService, options: ParsedOptions, io: CliIo): Promise<number> {
  const limit =
    parseWholeNumber('limit', options.values.get('limit'), { min: 1, max: LIST_MAX }) ?? LIST_DEFAULT;
  const filter = filterOf(options, true);
  const store = createDlqStore(db, crypto);
  const entries = await store.list({ ...filter, limit: limit + 1 });
  const shown = entries.slice(0, limit);
  if (options.flags.has('json')) {
    // Personal data is masked exactly as in the API (`maskPersonalData`).
    for (const entry of shown) io.stdout(`${JSON.stringify(entry)}\n`);
  } else {
    io.stdout(
      `${['id'.padStart(8), 'failed at'.padEnd(24), 'integration'.padEnd(40), 'error'.padEnd(22), 'att', 'message id'].join('  ')}\n`,
    );
    for (const entry of shown) io.stdout(`${row(entry)}\n`);
  }
  const more = entries.length > limit ? ' (more match: raise --limit or narrow the filter)' : '';
  io.stderr(
    `${shown.length} pending dead letter(s) shown of ${await store.depth()} pending in total${more}\n`,
  );
  return 0;
}

/** What a replay selects: exactly `ids`, or the pending entries matching `filter` (one integration). */
function replaySelection(options: ParsedOptions): { ids: string[] | undefined; filter: Filter } {
  const idsArg = options.values.get('ids');
  const ids = idsArg?.split(',').map((id) => id.trim());
  if (ids !== undefined && (ids.length === 0 || ids.length > 1000 || !ids.every((id) => DLQ_ID.test(id)))) {
    throw new UsageError(
      '--ids must be a comma-separated list of up to 1000 DLQ entry ids (as `dlq list` shows)',
    );
  }
  const filter = filterOf(options, true);
  if (ids !== undefined && Object.keys(filter).length > 0) {
    throw new UsageError('give either --ids or --integration (with --since/--until), not both');
  }
  if (ids === undefined && filter.integrationId === undefined) {
    throw new UsageError('give --ids or --integration: a replay never selects every dead letter by accident');
  }
  return { ids, filter };
}

async function replay(
  db: Database,
  config: SignalConfig,
  crypto: CryptoService,
  logger: Logger,
  options: ParsedOptions,
  io: CliIo,
): Promise<number> {
  const { ids, filter } = replaySelection(options);
  // Replays are published to the bus, which seals them with the same key.
  const bus = openBus(config, db, logger, 'signal-cli', { crypto });
  let replayed = 0;
  const skipped = new Map<string, string>();
  try {
    if (ids !== undefined) {
      const result = await replayDlq(
        { db, bus, namespace: config.namespace, crypto },
        { ids, limit: ids.length },
      );
      replayed = result.replayed;
      for (const s of result.skipped) skipped.set(s.id, s.reason);
    } else {
      // Oldest first, in rounds; entries that cannot be replayed stay pending and are reported.
      for (;;) {
        const result = await replayDlq(
          { db, bus, namespace: config.namespace, crypto },
          { ...filter, limit: REPLAY_BATCH },
        );
        replayed += result.replayed;
        for (const s of result.skipped) skipped.set(s.id, s.reason);
        if (result.replayed === 0 || result.replayed + result.skipped.length < REPLAY_BATCH) break;
        if (io.signal?.aborted === true) break;
      }
    }
  } finally {
    await bus.close();
  }
  await createAuditLog({ db, logger }).record({
    action: 'dlq.replayed',
    user_id: null,
    user_email: null,
    resource_type: 'dlq',
    resource_id: filter.integrationId ?? null,
    user_agent: 'signal-cli',
    changes: {
      replayed: { old: null, new: replayed },
      skipped: { old: null, new: skipped.size },
      selection: {
        old: null,
        new:
          ids === undefined
            ? {
                integration_id: filter.integrationId ?? null,
                from: filter.from?.toISOString() ?? null,
                to: filter.to?.toISOString() ?? null,
              }
            : { ids: ids.length },
      },
    },
  });
  io.stdout(`replayed ${replayed} dead letter(s) onto their topics\n`);
  if (skipped.size > 0) {
    io.stdout(
      `skipped ${skipped.size} (left pending):\n${[...skipped].map(([id, reason]) => `  ${id}: ${reason}\n`).join('')}`,
    );
  }
  if (ids !== undefined && replayed + skipped.size < ids.length) {
    io.stdout(
      `${ids.length - replayed - skipped.size} id(s) matched no pending dead letter (unknown or replayed already)\n`,
    );
  }
  return skipped.size > 0 ? 1 : 0;
}

export const dlqVerb: Verb = {
  name: 'dlq',
  summary: 'list or replay dead-lettered events (list | replay)',
  help: `usage: signal-cli dlq list [--integration <id>] [--since <iso>] [--until <iso>] [--limit <n>] [--json]
       signal-cli dlq replay (--ids <id,id,…> | --integration <id> [--since <iso>] [--until <iso>])

Dead letters are events a vendor refused for good or that ran out of retries (ARCHITECTURE §6), indexed by
the delivery worker in the database in DATABASE_URL (or the embedded SIGNAL_DATA_DIR). Their events are
sealed there, so both actions need the deployment's key (ENCRYPTION_KEY, ENCRYPTION_KEY_PREVIOUS during a
rotation, or the KMS settings); an entry whose letter does not open under it is listed as unreadable and
skipped by a replay (reason unreadable).

list    Pending entries, newest first (default ${LIST_DEFAULT}, at most ${LIST_MAX}): id, when it failed, the
        integration, the error code, attempts, message id. --json prints one entry per line with the original
        event, personal data masked as in the Management API. The total pending count goes to stderr.
replay  Re-publishes the selected pending entries onto the topic they failed on (the bus from BUS /
        KAFKA_BROKERS, or the database's): each is a fresh first attempt through the worker's whole path —
        the delivery ledger never re-sends an event a vendor accepted, stage-2 consent is checked again.
        --since is inclusive, --until exclusive (ISO 8601 with a time zone). Recorded in the audit log as
        dlq.replayed (counts and the filter, no event data).

Exit status: 0 success, 1 entries that could not be replayed (listed) or an error, 2 usage.`,
  async run(args, io) {
    let options: ParsedOptions;
    let action: string | undefined;
    try {
      options = parseOptions(args, {
        valued: ['integration', 'since', 'until', 'limit', 'ids'],
        flags: ['json'],
      });
      if (options.positionals.length !== 1) throw new UsageError('give exactly one action: list or replay');
      action = options.positionals[0];
      if (action === 'list' && options.values.has('ids'))
        throw new UsageError('--ids applies to replay only');
      if (action === 'replay' && (options.values.has('limit') || options.flags.has('json'))) {
        throw new UsageError('--limit and --json apply to list only');
      }
      if (action !== 'list' && action !== 'replay') throw new UsageError(`unknown action "${action}"`);
      // Validate the filter and the selection before opening anything (the key included).
      filterOf(options, true);
      if (action === 'replay') replaySelection(options);
      parseWholeNumber('limit', options.values.get('limit'), { min: 1, max: LIST_MAX });
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      io.stderr(`${err.message}\n\n${dlqVerb.help}\n`);
      return 2;
    }
    try {
      return await withDatabase(io, (db, config) =>
        withCrypto(db, config, io, (crypto, logger) =>
          action === 'list' ? list(db, crypto, options, io) : replay(db, config, crypto, logger, options, io),
        ),
      );
    } catch (err) {
      if (err instanceof UsageError) {
        io.stderr(`${err.message}\n\n${dlqVerb.help}\n`);
        return 2;
      }
      io.stderr(`dlq ${action} failed: ${describeError(err)}\n`);
      return 1;
    }
  },
};
