import { createDigest, type Digest, isEmptyStringDigest } from '../digest';
import { asText } from '../outcome';
import type { Rule, RuleContext } from '../rules';
import { trimLower } from '../rules';
import { type MaskingMode, type PiiRules, type PiiRulesInput, parsePiiRules } from './config';
import { type FieldType, inferFieldType, TYPE_RULES } from './field-types';
import { isPlainObject, ownValue, type PlainObject, setOwn, splitPath, WILDCARD } from './path';

/** What happened to one value; bounded, safe as a metric label. */
export type PiiOutcome = 'hashed' | 'passthrough' | 'masked' | 'dropped';

export interface CompileOptions {
  /** Key for `hash_algorithm: hmac-sha256` (at least 32 bytes); copied at compile time. */
  readonly hmacKey?: Uint8Array;
  /** Called once per value a rule touched (for metrics); must not throw. Never receives the value. */
  readonly onOutcome?: (outcome: PiiOutcome) => void;
  /** Clock for the date-of-birth year window. Default: the system clock. */
  readonly now?: () => Date;
}

/** Applies the Org Data Layer PII rules to one event, returning a new event; the input is never mutated. */
export type PiiTransform = (event: Readonly<PlainObject>) => PlainObject;

/** What a leaf transform decided for one value. */
type LeafAction =
  | { readonly kind: 'set'; readonly value: unknown }
  | { readonly kind: 'delete' }
  | { readonly kind: 'keep' };

const KEEP: LeafAction = { kind: 'keep' };
const DELETE: LeafAction = { kind: 'delete' };
const set = (value: unknown): LeafAction => ({ kind: 'set', value });

type Leaf = (value: unknown) => LeafAction;

interface CompiledRule {
  readonly segments: readonly string[];
  readonly leaf: Leaf;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const MASK = '***';
const PARTIAL_VISIBLE = 4;

/**
 * Compiles `pii_rules` once (validated, paths split, normalisers and digest chosen) into a function the
 * Event Processor runs per event. Rules apply in order: every `hash_fields` entry, then every
 * `redact_fields` entry. Only the containers on a matched path are copied; the rest of the output shares
 * structure with the input, which both sides treat as immutable.
 */
export function compilePiiRules(
  config: PiiRulesInput | PiiRules,
  options: CompileOptions = {},
): PiiTransform {
  const rules = parsePiiRules(config);
  if (!rules.enabled) return (event) => ({ ...event });

  const digest = createDigest(rules.hash_algorithm, options.hmacKey);
  const context: RuleContext = { now: options.now ?? (() => new Date()) };
  const report = options.onOutcome ?? (() => {});

  const compiled: CompiledRule[] = [
    ...rules.hash_fields.map(({ field, type }) => {
      const segments = splitPath(field);
      return {
        segments,
        leaf: eachElement(hashLeaf(type ?? inferFieldType(segments), digest, context, report)),
      };
    }),
    ...rules.redact_fields.map(({ field, mode }) => {
      const segments = splitPath(field);
      return { segments, leaf: maskLeaf(mode, inferFieldType(segments), digest, context, report) };
    }),
  ];

  return (event) => {
    if (!isPlainObject(event)) return {};
    const owned = new WeakSet<object>();
    let root: PlainObject = { ...event };
    owned.add(root);
    for (const rule of compiled) {
      const next = applyAt(root, rule.segments, 0, rule.leaf, owned);
      if (isPlainObject(next)) root = next;
    }
    return root;
  };
}

/** Leaf arrays (`traits.emails: [...]`) have the leaf transform applied to each element. */
function eachElement(leaf: Leaf): Leaf {
  return (value) => {
    if (!Array.isArray(value)) return leaf(value);
    let changed = false;
    const out = value.map((element: unknown) => {
      const action = Array.isArray(element) ? DELETE : leaf(element);
      if (action.kind === 'keep') return element;
      changed = true;
      return action.kind === 'set' ? action.value : null;
    });
    return changed ? set(out) : KEEP;
  };
}

function hashLeaf(type: FieldType, digest: Digest, ctx: RuleContext, report: (o: PiiOutcome) => void): Leaf {
  const rule: Rule = TYPE_RULES[type];
  return (value) => {
    if (value === null || value === undefined || typeof value === 'boolean') return KEEP;
    const text = asText(value);
    const trimmed = text?.trim();
    if (trimmed === undefined || trimmed === '') {
      // Objects, floats, blank strings: nothing safe to hash, and leaving them would leak — drop.
      report('dropped');
      return DELETE;
    }
    if (SHA256_HEX.test(trimmed)) {
      const hex = trimmed.toLowerCase();
      report(isEmptyStringDigest(hex) ? 'dropped' : 'passthrough');
      return isEmptyStringDigest(hex) ? DELETE : set(hex);
    }
    const typed = rule(trimmed, ctx);
    // A value the type rule refuses (an unknown gender word, a malformed date) is still PII: hash its
    // generic form rather than keep it in clear.
    const plain = typed.ok && typed.value !== '' ? typed : trimLower(trimmed, ctx);
    if (!plain.ok || plain.value === '') {
      report('dropped');
      return DELETE;
    }
    report('hashed');
    return set(digest(plain.value));
  };
}

function maskLeaf(
  mode: MaskingMode,
  type: FieldType,
  digest: Digest,
  ctx: RuleContext,
  report: (o: PiiOutcome) => void,
): Leaf {
  switch (mode) {
    case 'hash':
      return eachElement(hashLeaf(type, digest, ctx, report));
    case 'partial':
      return eachElement((value) => {
        if (value === null || value === undefined) return KEEP;
        report('masked');
        const text = asText(value);
        const chars = text === undefined ? [] : Array.from(text.trim());
        // Reveal the last four only when at least as many stay hidden: "***1234" of "1234" is the value.
        return set(
          chars.length >= 2 * PARTIAL_VISIBLE ? MASK + chars.slice(-PARTIAL_VISIBLE).join('') : MASK,
        );
      });
    case 'full':
    case 'null':
      // The whole field, whatever its shape (string, number, object, array).
      return (value) => {
        if (value === null || value === undefined) return KEEP;
        report('masked');
        return set(mode === 'full' ? MASK : null);
      };
  }
}

/**
 * Walks `segments` from `node`, applying `leaf` at the end. Returns the (possibly copied) node, or `node`
 * itself when nothing below changed. Containers are copied at most once per event (`owned`).
 */
function applyAt(
  node: unknown,
  segments: readonly string[],
  depth: number,
  leaf: Leaf,
  owned: WeakSet<object>,
): unknown {
  const segment = segments[depth];
  if (segment === undefined) return node;
  const last = depth === segments.length - 1;

  if (Array.isArray(node)) {
    if (segment !== WILDCARD && !/^\d+$/.test(segment)) return node;
    const indices = segment === WILDCARD ? node.keys() : [Number(segment)];
    let copy: unknown[] | undefined;
    for (const index of indices) {
      if (index >= node.length) continue;
      const before: unknown = node[index];
      const after = last ? leaf(before) : descend(before, segments, depth, leaf, owned);
      if (after.kind === 'keep') continue;
      copy ??= owned.has(node) ? node : own(node.slice(), owned);
      // Arrays keep their length: a dropped element becomes null.
      copy[index] = after.kind === 'set' ? after.value : null;
    }
    return copy ?? node;
  }

  if (!isPlainObject(node)) return node;
  const keys = segment === WILDCARD ? Object.keys(node) : Object.hasOwn(node, segment) ? [segment] : [];
  let copy: PlainObject | undefined;
  for (const key of keys) {
    const before = ownValue(node, key);
    const after = last ? leaf(before) : descend(before, segments, depth, leaf, owned);
    if (after.kind === 'keep') continue;
    copy ??= owned.has(node) ? node : own({ ...node }, owned);
    if (after.kind === 'set') setOwn(copy, key, after.value);
    else delete copy[key];
  }
  return copy ?? node;
}

function descend(
  child: unknown,
  segments: readonly string[],
  depth: number,
  leaf: Leaf,
  owned: WeakSet<object>,
): LeafAction {
  const next = applyAt(child, segments, depth + 1, leaf, owned);
  return next === child ? KEEP : set(next);
}

function own<T extends object>(value: T, owned: WeakSet<object>): T {
  owned.add(value);
  return value;
}
