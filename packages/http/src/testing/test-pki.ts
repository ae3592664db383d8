import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * FOR TESTS ONLY. Generates a throw-away PKI on the fly with the `openssl` CLI in a private temp directory:
 * CAs, server certificates (valid, expired, not yet valid, wrong host name, self-signed) and client
 * certificates. Nothing is committed; `cleanup()` deletes every key. Keys are ECDSA P-256 (fast to make);
 * RSA on request. Requires `openssl` (1.1.1 or 3.x) on PATH.
 */

const run = promisify(execFile);

export type TestKeyType = 'ec' | 'rsa';

export interface TestCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Colon-separated upper-case hex, as `tls.TLSSocket#getPeerCertificate().fingerprint256`. */
  readonly fingerprint256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface ValidityOptions {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface ServerCertificateOptions extends ValidityOptions {
  readonly commonName?: string;
  /** Default `['localhost']`. */
  readonly dnsNames?: readonly string[];
  /** Default `['127.0.0.1']`. */
  readonly ipAddresses?: readonly string[];
  readonly keyType?: TestKeyType;
}

export interface ClientCertificateOptions extends ValidityOptions {
  readonly commonName?: string;
  readonly keyType?: TestKeyType;
}

export interface TestCa extends TestCertificate {
  readonly commonName: string;
  issueServerCertificate(options?: ServerCertificateOptions): Promise<TestCertificate>;
  issueClientCertificate(options?: ClientCertificateOptions): Promise<TestCertificate>;
}

export interface TestPki {
  readonly dir: string;
  createCa(
    options?: { readonly commonName?: string; readonly keyType?: TestKeyType } & ValidityOptions,
  ): Promise<TestCa>;
  /** A leaf certificate signed by its own key (no CA): clients see DEPTH_ZERO_SELF_SIGNED_CERT. */
  createSelfSignedServerCertificate(options?: ServerCertificateOptions): Promise<TestCertificate>;
  cleanup(): Promise<void>;
}

const DAY_MS = 86_400_000;

/** A positive 128-bit serial (top bit clear, no leading zero byte), unique per certificate. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return bytes.toString('hex');
}

function pemKey(type: TestKeyType): string {
  const pair =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** OpenSSL `ca -startdate/-enddate` format: YYYYMMDDHHMMSSZ. */
function asn1Time(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

function subject(commonName: string): string {
  if (!/^[\w .-]+$/.test(commonName)) throw new Error(`test PKI: unsupported common name ${commonName}`);
  return `/CN=${commonName}`;
}

async function describe(dir: string, certPem: string, keyPem: string): Promise<TestCertificate> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await writeFile(certPath, certPem);
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  const x509 = new X509Certificate(certPem);
  return {
    certPem,
    keyPem,
    certPath,
    keyPath,
    fingerprint256: x509.fingerprint256,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
  };
}

const REQ_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_self]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
`;

export async function createTestPki(): Promise<TestPki> {
  const root = await mkdtemp(join(tmpdir(), 'signal-test-pki-'));
  let counter = 0;
  const workDir = async (label: string): Promise<string> => {
    counter += 1;
    const dir = join(root, `${String(counter).padStart(3, '0')}-${label}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  };

  /** Signs `csr` with the CA using `openssl ca`, which (unlike `x509 -req`) accepts explicit validity dates. */
  async function sign(
    ca: TestCertificate,
    dir: string,
    csrPath: string,
    extensions: string,
    validity: ValidityOptions,
  ) {
    const now = Date.now();
    const notBefore = validity.notBefore ?? new Date(now - 60 * 60 * 1000);
    const notAfter = validity.notAfter ?? new Date(now + 30 * DAY_MS);
    await writeFile(join(dir, 'index.txt'), '');
    await writeFile(join(dir, 'serial'), `${randomSerial()}\n`);
    await writeFile(
      join(dir, 'ca.cnf'),
      `[ca]
default_ca = test_ca
[test_ca]
database = ${join(dir, 'index.txt')}
serial = ${join(dir, 'serial')}
new_certs_dir = ${dir}
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no
[any_name]
commonName = supplied
[leaf]
${extensions}
`,
    );
    const certPath = join(dir, 'issued.pem');
    await run(
      'openssl',
      [
        'ca',
        '-batch',
        '-notext',
        '-config',
        join(dir, 'ca.cnf'),
        '-extensions',
        'leaf',
        '-cert',
        ca.certPath,
        '-keyfile',
        ca.keyPath,
        '-in',
        csrPath,
        '-out',
        certPath,
        '-startdate',
        asn1Time(notBefore),
        '-enddate',
        asn1Time(notAfter),
      ],
      { cwd: dir },
    );
    return readFile(certPath, 'utf8');
  }

  async function csr(
    dir: string,
    commonName: string,
    keyType: TestKeyType,
  ): Promise<{ keyPem: string; csrPath: string }> {
    const keyPem = pemKey(keyType);
    const keyPath = join(dir, 'request-key.pem');
    await writeFile(keyPath, keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'req.cnf'), REQ_CONFIG);
    const csrPath = join(dir, 'request.csr');
    await run('openssl', [
      'req',
      '-new',
      '-config',
      join(dir, 'req.cnf'),
      '-key',
      keyPath,
      '-subj',
      subject(commonName),
      '-out',
      csrPath,
    ]);
    return { keyPem, csrPath };
  }

  function serverExtensions(options: ServerCertificateOptions): string {
    const names = [
      ...(options.dnsNames ?? ['localhost']).map((name) => `DNS:${name}`),
      ...(options.ipAddresses ?? ['127.0.0.1']).map((ip) => `IP:${ip}`),
    ];
    return `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${names.join(', ')}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid`;
  }

  return {
    dir: root,

    async createCa(options = {}) {
      const commonName = options.commonName ?? `Signal Test CA ${randomBytes(4).toString('hex')}`;
      const dir = await workDir('ca');
      const keyPem = pemKey(options.keyType ?? 'ec');
      const keyPath = join(dir, 'key.pem');
      await writeFile(keyPath, keyPem, { mode: 0o600 });
      await writeFile(join(dir, 'req.cnf'), REQ_CONFIG);
      const days = Math.max(
        1,
        Math.ceil(((options.notAfter?.getTime() ?? Date.now() + 365 * DAY_MS) - Date.now()) / DAY_MS),
      );
      await run('openssl', [
        'req',
        '-x509',
        '-new',
        '-config',
        join(dir, 'req.cnf'),
        '-extensions',
        'v3_ca',
        '-key',
        keyPath,
        '-subj',
        subject(commonName),
        '-days',
        String(days),
        '-sha256',
        '-out',
        join(dir, 'cert.pem'),
      ]);
      const ca = await describe(dir, await readFile(join(dir, 'cert.pem'), 'utf8'), keyPem);
      return {
        ...ca,
        commonName,
        async issueServerCertificate(serverOptions = {}) {
          const leafDir = await workDir('server');
          const request = await csr(
            leafDir,
            serverOptions.commonName ?? 'localhost',
            serverOptions.keyType ?? 'ec',
          );
          const certPem = await sign(
            ca,
            leafDir,
            request.csrPath,
            serverExtensions(serverOptions),
            serverOptions,
          );
          return describe(leafDir, certPem, request.keyPem);
        },
        async issueClientCertificate(clientOptions = {}) {
          const leafDir = await workDir('client');
          const request = await csr(
            leafDir,
            clientOptions.commonName ?? 'signal-service',
            clientOptions.keyType ?? 'ec',
          );
          const extensions = `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid`;
          const certPem = await sign(ca, leafDir, request.csrPath, extensions, clientOptions);
          return describe(leafDir, certPem, request.keyPem);
        },
      };
    },

    async createSelfSignedServerCertificate(options = {}) {
      const dir = await workDir('self-signed');
      const keyPem = pemKey(options.keyType ?? 'ec');
      const keyPath = join(dir, 'key.pem');
      await writeFile(keyPath, keyPem, { mode: 0o600 });
      const names = [
        ...(options.dnsNames ?? ['localhost']).map((name) => `DNS:${name}`),
        ...(options.ipAddresses ?? ['127.0.0.1']).map((ip) => `IP:${ip}`),
      ];
      await writeFile(join(dir, 'req.cnf'), `${REQ_CONFIG}subjectAltName = ${names.join(', ')}\n`);
      await run('openssl', [
        'req',
        '-x509',
        '-new',
        '-config',
        join(dir, 'req.cnf'),
        '-extensions',
        'v3_self',
        '-key',
        keyPath,
        '-subj',
        subject(options.commonName ?? 'localhost'),
        '-days',
        '30',
        '-sha256',
        '-out',
        join(dir, 'cert.pem'),
      ]);
      return describe(dir, await readFile(join(dir, 'cert.pem'), 'utf8'), keyPem);
    },

    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}
