import type { CanonicalEvent } from '@signal/events';
import { compact } from '../compact';

/**
 * GA4-style e-commerce in `properties` (`value`, `currency`, `transaction_id`, `items[]` with `item_id`,
 * `item_name`, `price`, `quantity`, …), with the Segment e-commerce spec names accepted as fallbacks
 * (`revenue`/`total`, `order_id`, `products[]` with `product_id`/`sku`). Numbers may arrive as numeric strings.
 */
export interface Commerce {
  readonly value?: number;
  /** ISO 4217, upper case. */
  readonly currency?: string;
  readonly transactionId?: string;
  readonly items: readonly Item[];
  readonly searchTerm?: string;
  readonly coupon?: string;
  readonly tax?: number;
  readonly shipping?: number;
}

export interface Item {
  readonly id?: string;
  readonly name?: string;
  readonly brand?: string;
  readonly category?: string;
  readonly variant?: string;
  readonly price?: number;
  readonly quantity?: number;
}

type Bag = Readonly<Record<string, unknown>>;

const CURRENCY = /^[A-Za-z]{3}$/;
/** The most items mapped per event: enough for any real cart, bounded for a hostile one. */
const MAX_ITEMS = 200;

function isBag(value: unknown): value is Bag {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function first<T>(bag: Bag, keys: readonly string[], read: (v: unknown) => T | undefined): T | undefined {
  for (const key of keys) {
    if (!Object.hasOwn(bag, key)) continue;
    const value = read(bag[key]);
    if (value !== undefined) return value;
  }
  return undefined;
}

function readItem(raw: Bag): Item {
  return compact({
    id: first(raw, ['item_id', 'product_id', 'sku', 'id'], str),
    name: first(raw, ['item_name', 'name'], str),
    brand: first(raw, ['item_brand', 'brand'], str),
    category: first(raw, ['item_category', 'category'], str),
    variant: first(raw, ['item_variant', 'variant'], str),
    price: first(raw, ['price'], num),
    quantity: first(raw, ['quantity'], num),
  });
}

export function readCommerce(event: Pick<CanonicalEvent, 'properties'>): Commerce {
  const p = event.properties;
  const list = first(p, ['items', 'products'], (v) => (Array.isArray(v) ? v : undefined)) ?? [];
  const items = list.slice(0, MAX_ITEMS).filter(isBag).map(readItem);
  const currency = first(p, ['currency'], str);
  return {
    items,
    ...compact({
      value: first(p, ['value', 'revenue', 'total'], num),
      currency: currency !== undefined && CURRENCY.test(currency) ? currency.toUpperCase() : undefined,
      transactionId: first(p, ['transaction_id', 'order_id', 'orderId'], str),
      searchTerm: first(p, ['search_term', 'query', 'search_string'], str),
      coupon: first(p, ['coupon'], str),
      tax: first(p, ['tax'], num),
      shipping: first(p, ['shipping'], num),
    }),
  };
}

/** Sum of item quantities (1 per item without one), or undefined without items. */
export function itemCount(commerce: Commerce): number | undefined {
  if (commerce.items.length === 0) return undefined;
  return commerce.items.reduce((sum, item) => sum + (item.quantity ?? 1), 0);
}
