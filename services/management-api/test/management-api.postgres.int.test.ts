import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { POSTGRES_URL, postgresAvailable, repoRoot } from '@signal/testkit';
import { describeApiSuite } from './api.suite';
import { postgresTarget } from './db-targets';
import { describeOperationsSuite } from './operations.suite';
import { describeRbacSuite } from './rbac.suite';
import { describeReencryptSuite } from './reencrypt.suite';
import { describeSecuritySuite } from './security.suite';

const target = postgresTarget();
const skip = !(await postgresAvailable());

describeRbacSuite(target, skip);
describeApiSuite(target, skip);
describeOperationsSuite(target, skip);
describeSecuritySuite(target, skip);
describeReencryptSuite(target, skip, {
  /** A real crash: the job runs in a child process that is SIGKILLed after it committed `batches` batches. */
  async runAndKill(db, keys, batches) {
    const { rows } = await db.query<{ schema: string }>('SELECT current_schema() AS schema');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./reencrypt-worker.fixture.ts', import.meta.url))],
      {
        cwd: repoRoot(),
        env: {
          ...process.env,
          WORKER_DATABASE_URL: POSTGRES_URL,
          WORKER_SCHEMA: rows[0]?.schema ?? '',
          WORKER_KEY: keys.current.toString('hex'),
          WORKER_PREVIOUS_KEY: keys.previous.toString('hex'),
          WORKER_LEASE_MS: '1000',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      let seen = 0;
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        seen += lines.filter((line) => line.startsWith('{')).length;
        if (seen >= batches && child.exitCode === null) {
          child.kill('SIGKILL');
        }
      });
      child.on('exit', (code, signal) => {
        if (signal === 'SIGKILL') resolve();
        else reject(new Error(`worker exited on its own (code ${code}) before it could be killed`));
      });
      child.on('error', reject);
    });
  },
});
