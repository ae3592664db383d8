import { Counter, Gauge, type Registry } from 'prom-client';
import type { CertificateManager } from './certificate-manager';

/** The registry the metrics are registered on: always injected, never prom-client's global one. */
export type CertificateMetricsRegistry = Registry;

/**
 * Registers, on the given registry:
 * - `signal_tls_certificate_expiry_seconds{certificate}`: seconds until the served certificate expires
 *   (negative once expired), computed at scrape time;
 * - `signal_tls_certificate_not_after_timestamp_seconds{certificate}`: its notAfter as a Unix timestamp;
 * - `signal_tls_certificate_reloads_total{certificate,result}`: reloads (`reloaded`) and refused
 *   replacements (`rejected`).
 * `certificate` is the manager's configured name, so label values stay bounded. Call once per registry.
 * Returns a function that stops counting reload events.
 */
export function registerCertificateMetrics(
  registry: CertificateMetricsRegistry,
  managers: readonly CertificateManager[],
): () => void {
  new Gauge({
    name: 'signal_tls_certificate_expiry_seconds',
    help: 'Seconds until the served TLS certificate expires (negative once expired).',
    labelNames: ['certificate'],
    registers: [registry],
    collect() {
      for (const manager of managers) this.set({ certificate: manager.name }, manager.secondsUntilExpiry());
    },
  });
  new Gauge({
    name: 'signal_tls_certificate_not_after_timestamp_seconds',
    help: 'Expiry (notAfter) of the served TLS certificate as a Unix timestamp.',
    labelNames: ['certificate'],
    registers: [registry],
    collect() {
      for (const manager of managers) {
        this.set({ certificate: manager.name }, manager.notAfter.getTime() / 1000);
      }
    },
  });
  const reloads = new Counter({
    name: 'signal_tls_certificate_reloads_total',
    help: 'TLS certificate reloads (result="reloaded") and refused replacements (result="rejected").',
    labelNames: ['certificate', 'result'],
    registers: [registry],
  });
  const unsubscribes = managers.map((manager) => {
    for (const result of ['reloaded', 'rejected']) reloads.inc({ certificate: manager.name, result }, 0);
    return manager.subscribe((event) => reloads.inc({ certificate: manager.name, result: event.type }));
  });
  return () => {
    for (const unsubscribe of unsubscribes) unsubscribe();
  };
}
