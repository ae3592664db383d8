import type { CanonicalEvent } from '@signal/events';
import type { RoutingRule } from '@signal/org-data-layer';
import { compileCondition, type Predicate } from '@signal/org-data-layer';

/** What routing needs to know about a destination. */
export interface RoutingTarget {
  readonly id: string;
  readonly vendor: string;
}

export type RoutingDecision =
  | { readonly route: true }
  | {
      readonly route: false /** The excluding rule's name (config text, not event data). */;
      readonly rule: string;
    };

export type Router = (event: CanonicalEvent, target: RoutingTarget) => RoutingDecision;

const ROUTE: RoutingDecision = Object.freeze({ route: true });

function eventNameMatcher(patterns: readonly string[]): (name: string | undefined) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return (name) =>
    name !== undefined && (exact.has(name) || prefixes.some((prefix) => name.startsWith(prefix)));
}

interface CompiledRule {
  readonly name: string;
  readonly include: boolean;
  readonly appliesTo: (target: RoutingTarget) => boolean;
  readonly matches: Predicate;
}

function compileRule(rule: RoutingRule): CompiledRule {
  const targets = new Set(rule.integrations);
  const everyone = targets.has('*');
  const checks: Predicate[] = [];
  const types = rule.when.event_types;
  if (types !== undefined) {
    const allowed = new Set<string>(types);
    checks.push((e) => allowed.has((e as CanonicalEvent).type));
  }
  const events = rule.when.events;
  if (events !== undefined) {
    const matchName = eventNameMatcher(events);
    checks.push((e) => matchName((e as CanonicalEvent).event));
  }
  if (rule.condition !== undefined) checks.push(compileCondition(rule.condition));
  return {
    name: rule.name,
    include: rule.action === 'include',
    appliesTo: (t) => everyone || targets.has(t.id) || targets.has(t.vendor),
    matches: (e) => checks.every((check) => check(e)),
  };
}

/**
 * Rules are evaluated in order; for each integration the first enabled rule that applies to it and matches
 * the event decides (`include` routes, `exclude` does not). No matching rule: the event is routed. So a
 * "server events only" integration is one rule: `{integrations: [id], action: exclude, condition: {not:
 * {field: 'context.provenance', op: 'eq', value: 'hmac'}}}`.
 */
export function compileRouter(rules: readonly RoutingRule[]): Router {
  const compiled = rules.filter((r) => r.enabled).map(compileRule);
  if (compiled.length === 0) return () => ROUTE;
  return (event, target) => {
    for (const rule of compiled) {
      if (!rule.appliesTo(target) || !rule.matches(event)) continue;
      return rule.include ? ROUTE : { route: false, rule: rule.name };
    }
    return ROUTE;
  };
}
