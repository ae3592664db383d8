import { auditMigrations } from '@signal/audit';
import { busMigrations } from '@signal/bus';
import { loadConfig } from '@signal/config';
import { controlPlaneMigrations } from '@signal/control-plane';
import { describe, expect, it } from 'vitest';
import { standaloneSchema } from './service-host';

const own = [{ id: 'test/0001_own', sql: 'SELECT 1' }];
const ids = (migrations: readonly { id: string }[]) => migrations.map((m) => m.id);
const config = (env: Record<string, string>) => loadConfig({ env, cwd: '/nonexistent-signal-cwd' });

describe('standaloneSchema (what a standalone service refuses to start without)', () => {
  it('audit and control plane, the bus tables on the PostgreSQL bus, then the service’s own', () => {
    expect(ids(standaloneSchema(config({ BUS: 'postgres' }), own))).toEqual(
      ids([...auditMigrations, ...controlPlaneMigrations, ...busMigrations, ...own]),
    );
  });

  it('no bus tables on Kafka', () => {
    expect(ids(standaloneSchema(config({ BUS: 'kafka', KAFKA_BROKERS: 'k:9092' })))).toEqual(
      ids([...auditMigrations, ...controlPlaneMigrations]),
    );
  });
});
