import { randomBytes, randomFillSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { openV1, readKeyId, sealV1 } from './ciphertext';
import { ContextEncoder, type EncryptionContext } from './context';
import type { KeyEntry, Keyring } from './keyring';

/** Body of `GET /health/crypto` (a contract: field names and meaning are fixed). */
export interface CryptoHealth {
  readonly status: 'healthy' | 'unhealthy';
  readonly provider: string;
  /**
   * Number of key generations this process holds: 1 normally, 2 in dual-key mode (current + previous).
   * Key ids, not versions, select keys; this is the operator's at-a-glance view of a rotation in progress.
   */
  readonly key_version: number;
  readonly dual_key_mode: boolean;
  readonly checks: {
    readonly key_valid: boolean;
    readonly round_trip: boolean;
    /** Present only in dual-key mode. */
    readonly previous_key_valid?: boolean;
  };
}

const HEALTH_CONTEXT: EncryptionContext = Object.freeze({ purpose: 'crypto-health-check' });
const PROBE_BYTES = 32;

/**
 * Checks the keyring for real: the provider still answers for the current key (`key_valid`), a fresh random
 * value sealed with the current key opens again through key-id lookup (`round_trip`), and in dual-key mode the
 * same for the previous key (`previous_key_valid`). Never throws; emits no audit events or metrics.
 * `provider` defaults to the keyring's (`local` for raw keys).
 */
export function cryptoHealth(keyring: Keyring, options: { readonly provider?: string } = {}): CryptoHealth {
  const keyValid = keyring.current.verify() && keyring.find(keyring.current.id) === keyring.current;
  const roundTrip = roundTrips(keyring, keyring.current);
  const previous = keyring.previous;
  const previousValid =
    previous === undefined ? undefined : previous.verify() && roundTrips(keyring, previous);
  const healthy = keyValid && roundTrip && previousValid !== false;
  return {
    status: healthy ? 'healthy' : 'unhealthy',
    provider: options.provider ?? keyring.provider,
    key_version: keyring.dualKeyMode ? 2 : 1,
    dual_key_mode: keyring.dualKeyMode,
    checks:
      previousValid === undefined
        ? { key_valid: keyValid, round_trip: roundTrip }
        : { key_valid: keyValid, round_trip: roundTrip, previous_key_valid: previousValid },
  };
}

function roundTrips(keyring: Keyring, entry: KeyEntry): boolean {
  try {
    const probe = randomBytes(PROBE_BYTES);
    const encoder = new ContextEncoder(0);
    const sealed = sealV1(entry, encoder, HEALTH_CONTEXT, probe, PROBE_BYTES, randomFillSync);
    const holder = keyring.find(readKeyId(sealed));
    if (holder !== entry) return false;
    return openV1(holder, encoder, HEALTH_CONTEXT, sealed, PROBE_BYTES).equals(probe);
  } catch {
    return false;
  }
}

/**
 * A `node:http` request handler for `GET /health/crypto` (mount it at that path): 200 with the health JSON
 * when healthy, 503 otherwise (readiness fails), `Cache-Control: no-store`. HEAD gets the headers only;
 * other methods get 405.
 */
export function cryptoHealthHandler(
  getHealth: () => CryptoHealth | Promise<CryptoHealth>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    const head = req.method === 'HEAD';
    const send = (status: number, body: unknown): void => {
      const json = JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Cache-Control': 'no-store',
        'Content-Length': Buffer.byteLength(json),
      });
      res.end(head ? undefined : json);
    };
    Promise.resolve()
      .then(getHealth)
      .then(
        (health) => send(health.status === 'healthy' ? 200 : 503, health),
        () => send(503, { status: 'unhealthy' }),
      )
      .catch(() => res.destroy());
  };
}
