// Container health check: GET <path> (default /health/live) on this container's own PORT, exit 0 on 2xx.
// Runs with the image's node, so the image needs no curl or wget. When the service serves HTTPS
// (TLS_CERT_PATH set), the request goes over TLS to 127.0.0.1 without verifying the certificate: the
// certificate names the public host, not the loopback address, and nothing but this probe is sent.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const path = process.argv[2] ?? '/health/live';
// biome-ignore lint/suspicious/noUndeclaredEnvVars: runs in the container, outside turbo
const port = Number(process.env.PORT ?? '8080');
// biome-ignore lint/suspicious/noUndeclaredEnvVars: runs in the container, outside turbo
const tls = (process.env.TLS_CERT_PATH ?? '') !== '';
const request = tls ? httpsRequest : httpRequest;

const req = request(
  { host: '127.0.0.1', port, path, method: 'GET', timeout: 2500, rejectUnauthorized: false },
  (res) => {
    res.resume();
    process.exitCode = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300 ? 0 : 1;
  },
);
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => {
  process.exitCode = 1;
});
req.end();
