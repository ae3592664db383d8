import { describe, expect, it } from 'vitest';
import { clientBucket } from './client-ip';

describe('clientBucket', () => {
  it('counts an IPv4 address as itself', () => {
    expect(clientBucket('203.0.113.7')).toBe('203.0.113.7');
  });

  it('counts an IPv6 address by its /64, however it is written', () => {
    const bucket = '2001:db8:1:2::/64';
    for (const address of [
      '2001:db8:1:2:3:4:5:6',
      '2001:0db8:0001:0002:ffff:ffff:ffff:ffff',
      '2001:DB8:1:2::1',
      '2001:db8:1:2::',
      '2001:db8:1:2:0:0:192.0.2.1',
      '2001:db8:1:2::192.0.2.1',
      '2001:db8:1:2::9%eth0',
    ]) {
      expect({ address, bucket: clientBucket(address) }).toEqual({ address, bucket });
    }
    expect(clientBucket('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientBucket('::1')).toBe('0:0:0:0::/64');
    expect(clientBucket('2001:db8:1:3::1')).not.toBe(bucket);
  });

  it('puts requests without a usable address in one bucket', () => {
    expect(clientBucket(undefined)).toBe('unknown');
  });
});
