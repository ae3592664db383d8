import { BlockList, isIP } from 'node:net';
import type { CanonicalEvent } from '@signal/events';
import type { BotFilteringConfig } from '@signal/org-data-layer';
import { isbot } from 'isbot';

/**
 * Bot scoring, compiled once per Org Data Layer version. Strong signals (a user agent on the `isbot` list of
 * crawlers, headless browsers and HTTP libraries; an org-configured user-agent pattern; an address in a
 * configured range) score 100 on their own. Browser signals are weaker and only apply to events that came
 * from a browser (pipeline key or pixel): a server source (HMAC) forwards what its own visitor sent, and
 * need not forward a user agent at all. The score is capped at 100; `threshold` decides.
 */

export const BOT_SIGNALS = [
  'known_bot',
  'user_agent_pattern',
  'ip_range',
  'no_user_agent',
  'implausible_user_agent',
  'page_without_url',
] as const;
export type BotSignal = (typeof BOT_SIGNALS)[number];

const WEIGHTS: Readonly<Record<BotSignal, number>> = {
  known_bot: 100,
  user_agent_pattern: 100,
  ip_range: 100,
  // A real browser always sends a User-Agent header: its absence on a browser request is a strong hint.
  no_user_agent: 60,
  // Real browser user agents are long and start with a product token such as `Mozilla/5.0`.
  implausible_user_agent: 40,
  // Datafly.js always reports the page URL with a page call.
  page_without_url: 30,
};

export interface BotVerdict {
  /** 0–100. */
  readonly score: number;
  readonly signals: readonly BotSignal[];
  readonly isBot: boolean;
}

export type BotScorer = (event: CanonicalEvent) => BotVerdict;

const NOT_A_BOT: BotVerdict = Object.freeze({ score: 0, signals: Object.freeze([]), isBot: false });

function blockListOf(ranges: readonly string[]): BlockList | null {
  if (ranges.length === 0) return null;
  const list = new BlockList();
  for (const range of ranges) {
    const [address = '', prefix] = range.split('/');
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

function plausibleBrowserAgent(ua: string): boolean {
  return ua.length >= 20 && /^[A-Za-z][\w.-]*\/\S+/.test(ua);
}

export function compileBotScorer(config: BotFilteringConfig): BotScorer {
  if (!config.enabled) return () => NOT_A_BOT;
  const patterns = config.user_agent_patterns.map((p) => p.toLowerCase());
  const blocked = blockListOf(config.ip_ranges);
  const threshold = config.threshold;

  return (event) => {
    const signals: BotSignal[] = [];
    const ua = event.context.userAgent;
    const fromBrowser = event.context.provenance !== 'hmac';
    if (ua !== undefined && ua !== '') {
      if (config.known_bots && isbot(ua)) signals.push('known_bot');
      if (patterns.length > 0) {
        const lower = ua.toLowerCase();
        if (patterns.some((p) => lower.includes(p))) signals.push('user_agent_pattern');
      }
      if (config.browser_signals && fromBrowser && !plausibleBrowserAgent(ua)) {
        signals.push('implausible_user_agent');
      }
    } else if (config.browser_signals && fromBrowser) {
      signals.push('no_user_agent');
    }
    const ip = event.context.ip;
    if (blocked !== null && ip !== undefined) {
      if (blocked.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4')) signals.push('ip_range');
    }
    if (config.browser_signals && fromBrowser && event.type === 'page' && event.context.page === undefined) {
      signals.push('page_without_url');
    }
    if (signals.length === 0) return NOT_A_BOT;
    const score = Math.min(
      100,
      signals.reduce((sum, s) => sum + WEIGHTS[s], 0),
    );
    return { score, signals, isBot: score >= threshold };
  };
}
