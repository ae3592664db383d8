/**
 * The Delivery Worker as its own process: `node --import tsx services/delivery-worker/src/main.ts`.
 * Configuration comes only from env and signal.yaml; a missing or bad value stops start-up here with a
 * message naming it, and so does a missing database, key or migration (exit 1); SIGTERM drains and exits 0
 * (`runService`).
 */
import { runService } from '@signal/runtime';
import { buildContainer } from './container';

await runService('delivery-worker', buildContainer);
