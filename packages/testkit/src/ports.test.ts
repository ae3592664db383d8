import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { holdClosedPort } from './ports';

describe('holdClosedPort', () => {
  it('refuses every connection while held, and is a port the kernel never picks by itself', async () => {
    const closed = await holdClosedPort();
    try {
      for (let i = 0; i < 20; i++) {
        const socket = connect(closed.port, '127.0.0.1');
        const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
        expect(err.code).toBe('ECONNREFUSED');
      }
      const range = readRange();
      if (range !== undefined) expect(closed.port).toBeLessThan(range[0]);
    } finally {
      await closed.release();
    }
  });
});

function readRange(): [number, number] | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return [Number(low), Number(high)];
  } catch {
    return undefined;
  }
}
