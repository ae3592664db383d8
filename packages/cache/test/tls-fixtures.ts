import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  /** CA that signed the server certificate. */
  readonly caPath: string;
  /** An unrelated CA: trusting it instead must fail the handshake. */
  readonly wrongCaPath: string;
  readonly serverKey: string;
  readonly serverCert: string;
  remove(): void;
}

/**
 * A throwaway PKI made with the openssl CLI for TLS integration tests: a CA, a server certificate for
 * `localhost` / 127.0.0.1 signed by it, and a second, unrelated CA. Valid for two days.
 */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'signal-pki-'));
  const at = (name: string) => join(dir, name);
  const openssl = (args: string) => {
    execFileSync('openssl', args.split(' '), { cwd: dir, stdio: 'pipe' });
  };
  const newKey = '-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';
  openssl(`req -x509 ${newKey} -keyout ca.key -out ca.pem -days 2 -subj /CN=SignalTestCA`);
  openssl(`req -x509 ${newKey} -keyout wrong-ca.key -out wrong-ca.pem -days 2 -subj /CN=UnrelatedTestCA`);
  openssl(`req ${newKey} -keyout server.key -out server.csr -subj /CN=localhost`);
  writeFileSync(at('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    'x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext',
  );
  return {
    caPath: at('ca.pem'),
    wrongCaPath: at('wrong-ca.pem'),
    serverKey: readFileSync(at('server.key'), 'utf8'),
    serverCert: readFileSync(at('server.pem'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
