import { describe, expect, it } from 'vitest';
import { readClickIds } from './click-ids';
import { itemCount, readCommerce } from './commerce';
import { countryHint, readPerson } from './person';

describe('readPerson', () => {
  it('reads traits first, then properties, with camelCase and snake_case names', () => {
    const person = readPerson({
      traits: {
        first_name: 'Ada',
        last_name: 'Lovelace',
        phone: 447700900123,
        address: { postal_code: 'N1 9GU' },
      },
      properties: { email: 'ada@example.com', phone: '+1 555 0100', city: 'London' },
    });
    expect(person).toEqual({
      email: 'ada@example.com',
      phone: '447700900123',
      firstName: 'Ada',
      lastName: 'Lovelace',
      postalCode: 'N1 9GU',
      city: 'London',
    });
  });

  it('splits a full name from traits only, and ignores blanks and non-scalars', () => {
    expect(readPerson({ traits: { name: 'Grace Brewster Hopper' }, properties: {} })).toMatchObject({
      firstName: 'Grace',
      lastName: 'Brewster Hopper',
    });
    // properties.name is a page or product name.
    expect(readPerson({ traits: {}, properties: { name: 'Home Page' } })).toEqual({});
    expect(readPerson({ traits: { email: '  ', phone: { n: 1 }, gender: true }, properties: {} })).toEqual(
      {},
    );
  });

  it('gives a country hint only for alpha-2 codes', () => {
    expect(countryHint({ country: 'gb' })).toEqual({ country: 'GB' });
    expect(countryHint({ country: 'United Kingdom' })).toBeUndefined();
  });
});

describe('readCommerce', () => {
  it('reads GA4 e-commerce', () => {
    const commerce = readCommerce({
      properties: {
        transaction_id: 'T1',
        value: '19.90',
        currency: 'usd',
        items: [{ item_id: 'A', price: 9.95, quantity: 2 }, 'junk', { item_name: 'B' }],
      },
    });
    expect(commerce).toEqual({
      transactionId: 'T1',
      value: 19.9,
      currency: 'USD',
      items: [{ id: 'A', price: 9.95, quantity: 2 }, { name: 'B' }],
    });
    expect(itemCount(commerce)).toBe(3);
  });

  it('falls back to the Segment e-commerce names and refuses a currency that is not ISO 4217-shaped', () => {
    expect(
      readCommerce({
        properties: {
          order_id: 42,
          revenue: 10,
          currency: 'euro',
          products: [{ product_id: 'p', sku: 's' }],
          query: 'q',
        },
      }),
    ).toEqual({ transactionId: '42', value: 10, items: [{ id: 'p' }], searchTerm: 'q' });
  });
});

describe('readClickIds', () => {
  it('reads each id under its URL or cookie name and extracts the GA client id', () => {
    const ids = readClickIds({
      context: {
        consent: {},
        provenance: 'pipeline_key',
        clickIds: { _fbp: 'fb.1.2.3', ScCid: 'sc', _epik: 'ep', _ga: 'GA1.2.111.222', li_fat_id: 'li' },
      },
    });
    expect(ids).toEqual({
      fbp: 'fb.1.2.3',
      scClickId: 'sc',
      epik: 'ep',
      liFatId: 'li',
      gaClientId: '111.222',
    });
  });
});
