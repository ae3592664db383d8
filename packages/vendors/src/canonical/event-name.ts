import type { CanonicalEvent } from '@signal/events';

/**
 * The standard events every vendor table is keyed by: GA4's recommended event names. Clients may send them
 * as GA4 names (`add_to_cart`), Segment e-commerce names (`Product Added`) or Meta names (`AddToCart`); all
 * spell the same standard event once case, spaces, `_` and `-` are ignored.
 */
export const STANDARD_EVENTS = [
  'page_view',
  'view_item',
  'view_item_list',
  'search',
  'add_to_cart',
  'remove_from_cart',
  'view_cart',
  'add_to_wishlist',
  'begin_checkout',
  'add_payment_info',
  'add_shipping_info',
  'purchase',
  'refund',
  'generate_lead',
  'sign_up',
  'login',
] as const;
export type StandardEvent = (typeof STANDARD_EVENTS)[number];

const ALIASES: Readonly<Record<string, StandardEvent>> = {
  // GA4 names, squeezed.
  ...Object.fromEntries(STANDARD_EVENTS.map((name) => [squeeze(name), name])),
  // Segment e-commerce spec v2.
  productviewed: 'view_item',
  productlistviewed: 'view_item_list',
  productssearched: 'search',
  productadded: 'add_to_cart',
  productremoved: 'remove_from_cart',
  cartviewed: 'view_cart',
  productaddedtowishlist: 'add_to_wishlist',
  checkoutstarted: 'begin_checkout',
  paymentinfoentered: 'add_payment_info',
  ordercompleted: 'purchase',
  orderrefunded: 'refund',
  signedup: 'sign_up',
  signedin: 'login',
  // Meta standard event names.
  pageview: 'page_view',
  viewcontent: 'view_item',
  addtocart: 'add_to_cart',
  addtowishlist: 'add_to_wishlist',
  initiatecheckout: 'begin_checkout',
  addpaymentinfo: 'add_payment_info',
  lead: 'generate_lead',
  completeregistration: 'sign_up',
};

function squeeze(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '');
}

/**
 * The standard event an event stands for: `page_view` for a page call, the matching name for a track call,
 * undefined for a custom track event and for identify/group calls.
 */
export function standardEvent(event: Pick<CanonicalEvent, 'type' | 'event'>): StandardEvent | undefined {
  if (event.type === 'page') return 'page_view';
  if (event.type !== 'track' || event.event === undefined) return undefined;
  return ALIASES[squeeze(event.event)];
}

/** What a vendor adapter sends for an event, or why it sends nothing. */
export type EventNameResolution =
  | { readonly ok: true; readonly name: string; readonly standard: StandardEvent | undefined }
  | {
      readonly ok: false;
      readonly reason: 'unsupported_event_type' | 'unmapped_event';
      readonly detail: string;
    };

export interface EventNameRules {
  /** The vendor's name for each standard event it has one for. */
  readonly table: Readonly<Partial<Record<StandardEvent, string>>>;
  /** Per integration: event name as sent (or standard name) → vendor name; wins over the table. */
  readonly overrides?: Readonly<Record<string, string>> | undefined;
  /** How a track event with no mapping is named, or undefined to drop it (`unmapped_event`). */
  readonly custom?: ((name: string) => string | undefined) | undefined;
}

/** Resolves the vendor event name: integration override, then the vendor's table, then its custom rule. */
export function resolveEventName(
  event: Pick<CanonicalEvent, 'type' | 'event'>,
  rules: EventNameRules,
): EventNameResolution {
  if (event.type !== 'track' && event.type !== 'page') {
    return {
      ok: false,
      reason: 'unsupported_event_type',
      detail: `${event.type} calls are not sent to this vendor`,
    };
  }
  const standard = standardEvent(event);
  const raw = event.type === 'page' ? 'page_view' : (event.event ?? '');
  const override =
    rules.overrides === undefined
      ? undefined
      : (own(rules.overrides, raw) ?? (standard === undefined ? undefined : own(rules.overrides, standard)));
  if (override !== undefined) return { ok: true, name: override, standard };
  const mapped = standard === undefined ? undefined : rules.table[standard];
  if (mapped !== undefined) return { ok: true, name: mapped, standard };
  const custom = event.type === 'track' ? rules.custom?.(raw) : undefined;
  if (custom !== undefined) return { ok: true, name: custom, standard };
  return { ok: false, reason: 'unmapped_event', detail: 'no vendor event is mapped for this event name' };
}

function own(map: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}
