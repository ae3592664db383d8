import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { holdClosedPort } from './ports';

describe('holdClosedPort', () => {
  it('refuses connections and cannot be taken by a listener while held', async () => {
    const closed = await holdClosedPort();
    try {
      const socket = connect(closed.port, '127.0.0.1');
      const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      expect(err.code).toBe('ECONNREFUSED');

      const listener = createServer();
      listener.listen(closed.port, '127.0.0.1');
      const [bindErr] = (await once(listener, 'error')) as [NodeJS.ErrnoException];
      expect(bindErr.code).toBe('EADDRINUSE');
    } finally {
      await closed.release();
    }
  });
});
