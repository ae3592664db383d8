import type { CanonicalEvent } from '@signal/events';
import { botFilteringSchema } from '@signal/org-data-layer';
import { describe, expect, it } from 'vitest';
import { compileBotScorer } from './bot-filter';

const BROWSER_UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

function event(
  overrides: Partial<CanonicalEvent['context']> = {},
  type: CanonicalEvent['type'] = 'track',
): CanonicalEvent {
  return {
    type,
    event: 'Viewed',
    anonymousId: 'a1',
    messageId: 'm1',
    properties: {},
    traits: {},
    context: {
      consent: {},
      provenance: 'pipeline_key',
      userAgent: BROWSER_UA,
      ip: '198.51.100.7',
      ...overrides,
    },
    timestamp: '2025-01-01T00:00:00.000Z',
    receivedAt: '2025-01-01T00:00:00.000Z',
    org: 'o',
    pipelineId: 'p',
  };
}

const score = (raw: unknown, e: CanonicalEvent) => compileBotScorer(botFilteringSchema.parse(raw))(e);

describe('bot scoring', () => {
  it('lets a real browser through', () => {
    expect(score({}, event())).toMatchObject({ score: 0, isBot: false });
  });

  it('recognises crawlers and headless browsers from the isbot list', () => {
    for (const ua of [
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36',
      'curl/8.4.0',
    ]) {
      expect(score({}, event({ userAgent: ua }))).toMatchObject({
        isBot: true,
        signals: expect.arrayContaining(['known_bot']),
      });
    }
  });

  it('applies org patterns and address ranges', () => {
    expect(
      score(
        { user_agent_patterns: ['InternalMonitor'] },
        event({ userAgent: `${BROWSER_UA} internalmonitor/1` }),
      ).isBot,
    ).toBe(true);
    expect(score({ ip_ranges: ['198.51.100.0/24'] }, event()).signals).toEqual(['ip_range']);
    expect(score({ ip_ranges: ['2001:db8::/32'] }, event({ ip: '2001:db8::1' })).isBot).toBe(true);
  });

  it('scores weak browser signals below the default threshold alone, and skips them for server sources', () => {
    const noPage = score({}, event({}, 'page'));
    expect(noPage).toMatchObject({ score: 30, isBot: false, signals: ['page_without_url'] });
    const { userAgent: _ua, ...withoutUa } = event().context;
    expect(score({}, { ...event(), context: withoutUa })).toMatchObject({ score: 60, isBot: true });
    expect(score({}, { ...event(), context: { ...withoutUa, provenance: 'hmac' } }).isBot).toBe(false);
  });

  it('does nothing when disabled', () => {
    expect(score({ enabled: false }, event({ userAgent: 'curl/8.4.0' })).isBot).toBe(false);
  });
});
