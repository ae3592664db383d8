import { auditVerify } from './audit-verify';
import { checkKey } from './check-key';
import { cryptoReencrypt } from './crypto-reencrypt';
import { cryptoRotateDeks } from './crypto-rotate-deks';
import { dlqVerb } from './dlq';
import { generateKey } from './generate-key';
import { kafkaVerb } from './kafka';
import { migrateVerb } from './migrate';
import type { CliIo, Verb } from './verb';

const VERBS: readonly Verb[] = [
  generateKey,
  checkKey,
  migrateVerb,
  auditVerify,
  cryptoReencrypt,
  cryptoRotateDeks,
  dlqVerb,
  kafkaVerb,
];

function usage(): string {
  const width = Math.max(...VERBS.map((v) => v.name.length));
  return [
    'usage: signal-cli <verb> [options]',
    '',
    'verbs:',
    ...VERBS.map((v) => `  ${v.name.padEnd(width)}  ${v.summary}`),
    '',
    'signal-cli <verb> --help describes a verb.',
    '',
  ].join('\n');
}

/** Runs one verb and returns the process exit code: 0 success, 1 failure, 2 usage error. */
/** Two-word spellings the runbooks use, mapped onto verbs: `crypto re-encrypt [status] …`. */
function canonical(argv: readonly string[]): readonly string[] {
  if (argv[0] === 'crypto' && argv[1] === 're-encrypt') {
    const rest = argv.slice(2);
    return rest[0] === 'status' || rest[0] === 'start'
      ? ['crypto-reencrypt', ...rest]
      : ['crypto-reencrypt', 'start', ...rest];
  }
  return argv;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...args] = canonical(argv);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(usage());
    return name === undefined ? 2 : 0;
  }
  const verb = VERBS.find((v) => v.name === name);
  if (!verb) {
    io.stderr(`signal-cli: unknown verb "${name}"\n\n${usage()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(`${verb.help}\n`);
    return 0;
  }
  return verb.run(args, io);
}
