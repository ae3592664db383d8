import { describe, expect, it } from 'vitest';
import { resolveEventName, standardEvent } from './event-name';

const track = (event: string) => ({ type: 'track' as const, event });

describe('standardEvent', () => {
  it.each([
    ['purchase', 'purchase'],
    ['Order Completed', 'purchase'],
    ['order_completed', 'purchase'],
    ['Product Added', 'add_to_cart'],
    ['AddToCart', 'add_to_cart'],
    ['add-to-cart', 'add_to_cart'],
    ['InitiateCheckout', 'begin_checkout'],
    ['Checkout Started', 'begin_checkout'],
    ['ViewContent', 'view_item'],
    ['Products Searched', 'search'],
    ['Lead', 'generate_lead'],
    ['CompleteRegistration', 'sign_up'],
    ['Signed Up', 'sign_up'],
  ])('%s → %s', (name, expected) => {
    expect(standardEvent(track(name))).toBe(expected);
  });

  it('is page_view for page calls and nothing for custom, identify and group', () => {
    expect(standardEvent({ type: 'page' })).toBe('page_view');
    expect(standardEvent(track('Quote Requested'))).toBeUndefined();
    expect(standardEvent({ type: 'identify' })).toBeUndefined();
    expect(standardEvent({ type: 'group' })).toBeUndefined();
  });
});

describe('resolveEventName', () => {
  const rules = {
    table: { purchase: 'Purchase', page_view: 'PageView' },
    custom: (raw: string) => `c:${raw}`,
  };

  it('prefers the integration override (by name as sent, then by standard name), then the table', () => {
    expect(resolveEventName(track('Order Completed'), rules)).toEqual({
      ok: true,
      name: 'Purchase',
      standard: 'purchase',
    });
    expect(
      resolveEventName(track('Order Completed'), { ...rules, overrides: { purchase: 'Buy' } }),
    ).toMatchObject({
      name: 'Buy',
    });
    expect(
      resolveEventName(track('Order Completed'), {
        ...rules,
        overrides: { purchase: 'Buy', 'Order Completed': 'Exact' },
      }),
    ).toMatchObject({ name: 'Exact' });
  });

  it('names custom track events by the vendor rule, never page calls', () => {
    expect(resolveEventName(track('Quote Requested'), rules)).toMatchObject({
      ok: true,
      name: 'c:Quote Requested',
    });
    expect(resolveEventName({ type: 'page' }, { table: {}, custom: () => 'x' })).toMatchObject({
      ok: false,
      reason: 'unmapped_event',
    });
    expect(resolveEventName(track('Quote Requested'), { table: {} })).toMatchObject({
      ok: false,
      reason: 'unmapped_event',
    });
  });

  it('does not read inherited keys of the override map', () => {
    expect(resolveEventName(track('constructor'), { table: {}, overrides: {} })).toMatchObject({ ok: false });
  });

  it('refuses identify and group calls', () => {
    expect(resolveEventName({ type: 'identify' }, rules)).toMatchObject({
      ok: false,
      reason: 'unsupported_event_type',
    });
  });
});
