import { createHash } from 'node:crypto';
import { stringify as stringifyYaml } from 'yaml';

/**
 * A Go text/template renderer for the SUBSET of Go templates and Sprig that deploy/helm/signal uses, so the
 * chart can be rendered and checked where no helm binary exists. Not Helm; its limits, stated plainly:
 *
 * - Actions: output pipelines, `if`/`else if`/`else`, `range` (lists and maps in key order, with `$i, $v :=`),
 *   `with`/`else`, `define`, variables (`$x :=`, `$x =`, `$`), comments, `{{-`/`-}}` trimming, parenthesised
 *   sub-pipelines and field chains on them. No `template`/`block`, `break`/`continue`, method calls
 *   (`.Capabilities.APIVersions.Has`), `tpl`, `lookup` or `.Files`.
 * - Functions: include required fail default empty quote squote toString toYaml toJson indent nindent b64enc
 *   sha256sum printf print trunc trim trimSuffix trimPrefix replace lower upper contains hasPrefix hasSuffix
 *   eq ne lt le gt ge and or not index hasKey dict list int len join regexMatch (JavaScript RegExp) ternary.
 *   Any other function is an error, so a template that needs more fails here instead of rendering wrongly.
 * - Values follow Helm's types: numbers from values.yaml are float64 (printed like Go's %v: 1e+06 for a
 *   million), `--set` integers are int64 (BigInt here), `toString nil` is "<nil>", printing nil gives "".
 * - A field of nil is an error (as in Helm); a missing map key is nil.
 */

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

// ── lexing ───────────────────────────────────────────────────────────────────────────────────────────

type Token =
  | { readonly t: 'field'; readonly path: readonly string[] } // `.a.b` ([] for `.`)
  | { readonly t: 'var'; readonly name: string; readonly path: readonly string[] } // `$x.a` (`$` → name '')
  | { readonly t: 'ident'; readonly name: string }
  | { readonly t: 'lit'; readonly value: unknown }
  | { readonly t: 'pipe' }
  | { readonly t: 'lparen' }
  | { readonly t: 'rparen'; readonly path: readonly string[] } // `).a.b`
  | { readonly t: 'declare' }
  | { readonly t: 'assign' }
  | { readonly t: 'comma' };

type Item =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'action'; readonly src: string };

/** Splits a template into text and action items, applying `{{-` and `-}}` whitespace trimming. */
function split(source: string, name: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = open === -1 ? source.slice(pos) : source.slice(pos, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open === -1) {
      if (text) items.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (/^-[ \t\r\n]/.test(source.slice(start, start + 2))) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) items.push({ kind: 'text', text });
    // Find the closing `}}` outside string literals.
    let i = start;
    let quote: string | null = null;
    for (; i < source.length; i += 1) {
      const c = source[i];
      if (quote) {
        if (c === '\\' && quote === '"') i += 1;
        else if (c === quote) quote = null;
      } else if (c === '"' || c === '`') {
        quote = c;
      } else if (c === '/' && source[i + 1] === '*') {
        const endComment = source.indexOf('*/', i + 2);
        if (endComment === -1) throw new TemplateError(`${name}: unclosed comment`);
        i = endComment + 1;
      } else if (c === '}' && source[i + 1] === '}') {
        break;
      }
    }
    if (i >= source.length) throw new TemplateError(`${name}: unclosed action`);
    let src = source.slice(start, i);
    if (/[ \t\r\n]-$/.test(src)) {
      src = src.slice(0, -1);
      trimNext = true;
    }
    src = src.trim();
    if (!(src.startsWith('/*') && src.endsWith('*/'))) items.push({ kind: 'action', src });
    pos = i + 2;
  }
  return items;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;
const FIELD_CHAIN = /^(?:\.[A-Za-z_][A-Za-z0-9_]*)+/;

function unquote(raw: string): string {
  return JSON.parse(raw.replace(/\\'/g, "'")) as string;
}

function tokenize(src: string, where: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const rest = src.slice(i);
    const c = src[i] ?? '';
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    if (rest.startsWith(':=')) {
      tokens.push({ t: 'declare' });
      i += 2;
    } else if (c === '=') {
      tokens.push({ t: 'assign' });
      i += 1;
    } else if (c === '|') {
      tokens.push({ t: 'pipe' });
      i += 1;
    } else if (c === ',') {
      tokens.push({ t: 'comma' });
      i += 1;
    } else if (c === '(') {
      tokens.push({ t: 'lparen' });
      i += 1;
    } else if (c === ')') {
      const chain = FIELD_CHAIN.exec(rest.slice(1))?.[0] ?? '';
      tokens.push({ t: 'rparen', path: chain.split('.').filter(Boolean) });
      i += 1 + chain.length;
    } else if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      if (!m) throw new TemplateError(`${where}: unterminated string`);
      tokens.push({ t: 'lit', value: unquote(m[0]) });
      i += m[0].length;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end === -1) throw new TemplateError(`${where}: unterminated raw string`);
      tokens.push({ t: 'lit', value: src.slice(i + 1, end) });
      i = end + 1;
    } else if (c === '.') {
      const chain = FIELD_CHAIN.exec(rest)?.[0] ?? '';
      tokens.push({ t: 'field', path: chain.split('.').filter(Boolean) });
      i += chain.length === 0 ? 1 : chain.length;
    } else if (c === '$') {
      const name = IDENT.exec(rest.slice(1))?.[0] ?? '';
      const chain = FIELD_CHAIN.exec(rest.slice(1 + name.length))?.[0] ?? '';
      tokens.push({ t: 'var', name, path: chain.split('.').filter(Boolean) });
      i += 1 + name.length + chain.length;
    } else if (/[-0-9]/.test(c)) {
      const m = /^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/.exec(rest);
      if (!m) throw new TemplateError(`${where}: bad number at ${rest}`);
      tokens.push({ t: 'lit', value: m[0].includes('.') || /e/i.test(m[0]) ? Number(m[0]) : BigInt(m[0]) });
      i += m[0].length;
    } else {
      const m = IDENT.exec(rest);
      if (!m) throw new TemplateError(`${where}: unexpected ${JSON.stringify(c)} in {{ ${src} }}`);
      const word = m[0];
      if (word === 'true' || word === 'false') tokens.push({ t: 'lit', value: word === 'true' });
      else if (word === 'nil') tokens.push({ t: 'lit', value: null });
      else tokens.push({ t: 'ident', name: word });
      i += word.length;
    }
  }
  return tokens;
}

// ── parsing ──────────────────────────────────────────────────────────────────────────────────────────

type Operand =
  | { readonly o: 'field'; readonly path: readonly string[] }
  | { readonly o: 'var'; readonly name: string; readonly path: readonly string[] }
  | { readonly o: 'lit'; readonly value: unknown }
  | { readonly o: 'fn'; readonly name: string }
  | { readonly o: 'sub'; readonly pipeline: Pipeline; readonly path: readonly string[] };

interface Pipeline {
  readonly decl?: { readonly names: readonly string[]; readonly op: 'declare' | 'assign' };
  readonly commands: readonly (readonly Operand[])[];
}

type Node =
  | { readonly n: 'text'; readonly text: string }
  | { readonly n: 'out'; readonly pipeline: Pipeline }
  | {
      readonly n: 'if';
      readonly branches: readonly { readonly cond: Pipeline; readonly body: readonly Node[] }[];
      readonly otherwise: readonly Node[];
    }
  | {
      readonly n: 'range';
      readonly pipeline: Pipeline;
      readonly body: readonly Node[];
      readonly otherwise: readonly Node[];
    }
  | {
      readonly n: 'with';
      readonly pipeline: Pipeline;
      readonly body: readonly Node[];
      readonly otherwise: readonly Node[];
    };

function parsePipeline(tokens: readonly Token[], where: string): Pipeline {
  let pos = 0;
  let decl: Pipeline['decl'];
  // `$a :=`, `$a, $b :=`, `$a =`
  const declEnd = tokens.findIndex((t) => t.t === 'declare' || t.t === 'assign');
  if (declEnd > 0 && tokens.slice(0, declEnd).every((t) => t.t === 'var' || t.t === 'comma')) {
    const names = tokens
      .slice(0, declEnd)
      .filter((t): t is Extract<Token, { t: 'var' }> => t.t === 'var')
      .map((t) => t.name);
    const op = tokens[declEnd]?.t === 'declare' ? 'declare' : 'assign';
    decl = { names, op };
    pos = declEnd + 1;
  }

  function pipeline(stopAtParen: boolean): (readonly Operand[])[] {
    const commands: Operand[][] = [[]];
    while (pos < tokens.length) {
      const token = tokens[pos];
      if (token === undefined) break;
      if (token.t === 'rparen') {
        if (!stopAtParen) throw new TemplateError(`${where}: unexpected )`);
        break;
      }
      pos += 1;
      const current = commands[commands.length - 1] ?? [];
      switch (token.t) {
        case 'pipe':
          commands.push([]);
          break;
        case 'field':
          current.push({ o: 'field', path: token.path });
          break;
        case 'var':
          current.push({ o: 'var', name: token.name, path: token.path });
          break;
        case 'lit':
          current.push({ o: 'lit', value: token.value });
          break;
        case 'ident':
          current.push({ o: 'fn', name: token.name });
          break;
        case 'lparen': {
          const inner = pipeline(true);
          const close = tokens[pos];
          if (close?.t !== 'rparen') throw new TemplateError(`${where}: missing )`);
          pos += 1;
          current.push({ o: 'sub', pipeline: { commands: inner }, path: close.path });
          break;
        }
        default:
          throw new TemplateError(`${where}: unexpected ${token.t}`);
      }
    }
    if (commands.some((c) => c.length === 0)) throw new TemplateError(`${where}: empty command`);
    return commands;
  }

  const commands = pipeline(false);
  return decl === undefined ? { commands } : { decl, commands };
}

interface Parsed {
  readonly nodes: readonly Node[];
  readonly defines: ReadonlyMap<string, readonly Node[]>;
}

function keyword(src: string): { word: string; rest: string } {
  const m = /^(if|else|end|range|with|define|template|block|break|continue)\b\s*(.*)$/s.exec(src);
  return m ? { word: m[1] ?? '', rest: m[2] ?? '' } : { word: '', rest: src };
}

function parseTemplate(source: string, name: string): Parsed {
  const items = split(source, name);
  const defines = new Map<string, readonly Node[]>();
  let pos = 0;

  /** Parses nodes until `end` or `else…` at this level; returns the nodes and the terminator. */
  function block(): { nodes: Node[]; stop: { word: string; rest: string } | null } {
    const nodes: Node[] = [];
    while (pos < items.length) {
      const item = items[pos];
      pos += 1;
      if (item === undefined) break;
      if (item.kind === 'text') {
        nodes.push({ n: 'text', text: item.text });
        continue;
      }
      const where = `${name}: {{ ${item.src} }}`;
      const { word, rest } = keyword(item.src);
      switch (word) {
        case 'end':
        case 'else':
          return { nodes, stop: { word, rest } };
        case 'if': {
          const branches: { cond: Pipeline; body: readonly Node[] }[] = [];
          let cond = parsePipeline(tokenize(rest, where), where);
          let otherwise: readonly Node[] = [];
          for (;;) {
            const inner = block();
            branches.push({ cond, body: inner.nodes });
            if (inner.stop === null) throw new TemplateError(`${where}: missing end`);
            if (inner.stop.word === 'end') break;
            const elseIf = /^if\b\s*(.*)$/s.exec(inner.stop.rest);
            if (elseIf) {
              cond = parsePipeline(tokenize(elseIf[1] ?? '', where), where);
              continue;
            }
            const last = block();
            if (last.stop?.word !== 'end') throw new TemplateError(`${where}: missing end after else`);
            otherwise = last.nodes;
            break;
          }
          nodes.push({ n: 'if', branches, otherwise });
          break;
        }
        case 'range':
        case 'with': {
          const pipeline = parsePipeline(tokenize(rest, where), where);
          const inner = block();
          let otherwise: readonly Node[] = [];
          if (inner.stop === null) throw new TemplateError(`${where}: missing end`);
          if (inner.stop.word === 'else') {
            if (inner.stop.rest.trim() !== '')
              throw new TemplateError(`${where}: else ${inner.stop.rest} unsupported`);
            const last = block();
            if (last.stop?.word !== 'end') throw new TemplateError(`${where}: missing end after else`);
            otherwise = last.nodes;
          }
          nodes.push({ n: word, pipeline, body: inner.nodes, otherwise });
          break;
        }
        case 'define': {
          const m = /^"([^"]+)"$/.exec(rest.trim());
          if (!m) throw new TemplateError(`${where}: define needs a quoted name`);
          const inner = block();
          if (inner.stop?.word !== 'end') throw new TemplateError(`${where}: missing end`);
          defines.set(m[1] ?? '', inner.nodes);
          break;
        }
        case 'template':
        case 'block':
        case 'break':
        case 'continue':
          throw new TemplateError(`${where}: "${word}" is not supported by this renderer (use include)`);
        default:
          nodes.push({ n: 'out', pipeline: parsePipeline(tokenize(item.src, where), where) });
      }
    }
    return { nodes, stop: null };
  }

  const top = block();
  if (top.stop !== null) throw new TemplateError(`${name}: unexpected {{ ${top.stop.word} }}`);
  return { nodes: top.nodes, defines };
}

// ── values ───────────────────────────────────────────────────────────────────────────────────────────

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go template truth: false, 0, nil, "" and empty lists/maps are false. */
export function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === '' || v === 0 || v === 0n) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v)) return Object.keys(v).length > 0;
  return true;
}

/**
 * Go's %v of a float64 (strconv 'g' with the shortest digits): exponent form when the exponent is below -4
 * or at least 6 — why Helm prints a values.yaml `1000000` as `1e+06`.
 */
function goFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : '-Inf';
  if (n === 0) return '0';
  const [mantissa = '', power = '0'] = n.toExponential().split('e');
  const exp = Number(power);
  if (exp < -4 || exp >= 6)
    return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(n);
}

/** fmt's %v, as Helm prints a value. */
function goString(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return goFloat(v);
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (isDict(v)) {
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goString(v[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

function toYaml(v: unknown): string {
  const normalised = JSON.parse(
    JSON.stringify(v ?? null, (_k, value: unknown) => (typeof value === 'bigint' ? Number(value) : value)),
  ) as unknown;
  return stringifyYaml(normalised, { sortMapEntries: true, lineWidth: 0, minContentWidth: 0 }).replace(
    /\n$/,
    '',
  );
}

function needString(fn: string, v: unknown): string {
  if (typeof v !== 'string')
    throw new TemplateError(`${fn}: wrong type for value; expected string; got ${typeof v}`);
  return v;
}

function num(v: unknown): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  throw new TemplateError(`expected a number, got ${goString(v)}`);
}

function goEq(a: unknown, b: unknown): boolean {
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) {
    return Number(a) === Number(b);
  }
  return a === b || (a == null && b == null);
}

function printf(format: string, args: readonly unknown[]): string {
  let i = 0;
  return format.replace(/%([%sdvq])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    const arg = args[i];
    i += 1;
    if (verb === 'q') return JSON.stringify(goString(arg));
    if (verb === 'd') return typeof arg === 'bigint' ? arg.toString() : String(Math.trunc(num(arg)));
    return arg === null || arg === undefined ? '%!s(<nil>)' : goString(arg);
  });
}

// ── execution ────────────────────────────────────────────────────────────────────────────────────────

type Scope = Map<string, unknown>[];

class Renderer {
  readonly #defines: ReadonlyMap<string, readonly Node[]>;
  #depth = 0;

  constructor(defines: ReadonlyMap<string, readonly Node[]>) {
    this.#defines = defines;
  }

  render(nodes: readonly Node[], dot: unknown): string {
    return this.#nodes(nodes, dot, [new Map([['', dot]])]);
  }

  include(name: string, dot: unknown): string {
    const body = this.#defines.get(name);
    if (body === undefined) throw new TemplateError(`include: no template "${name}"`);
    this.#depth += 1;
    if (this.#depth > 100) throw new TemplateError(`include: "${name}" recurses too deeply`);
    try {
      return this.render(body, dot);
    } finally {
      this.#depth -= 1;
    }
  }

  #nodes(nodes: readonly Node[], dot: unknown, scope: Scope): string {
    let out = '';
    for (const node of nodes) out += this.#node(node, dot, scope);
    return out;
  }

  #node(node: Node, dot: unknown, scope: Scope): string {
    switch (node.n) {
      case 'text':
        return node.text;
      case 'out': {
        const value = this.#pipeline(node.pipeline, dot, scope);
        if (node.pipeline.decl) return '';
        return value === null || value === undefined ? '' : goString(value);
      }
      case 'if': {
        for (const branch of node.branches) {
          const inner: Scope = [...scope, new Map()];
          if (truthy(this.#pipeline(branch.cond, dot, inner))) return this.#nodes(branch.body, dot, inner);
        }
        return this.#nodes(node.otherwise, dot, [...scope, new Map()]);
      }
      case 'with': {
        const inner: Scope = [...scope, new Map()];
        const value = this.#pipeline(node.pipeline, dot, inner);
        return truthy(value) ? this.#nodes(node.body, value, inner) : this.#nodes(node.otherwise, dot, inner);
      }
      case 'range': {
        const { decl } = node.pipeline;
        const collection = this.#pipeline({ commands: node.pipeline.commands }, dot, scope);
        const entries: [unknown, unknown][] = Array.isArray(collection)
          ? collection.map((v, i) => [BigInt(i), v])
          : isDict(collection)
            ? Object.keys(collection)
                .sort()
                .map((k) => [k, collection[k]])
            : collection === null || collection === undefined
              ? []
              : (() => {
                  throw new TemplateError(`range can't iterate over ${goString(collection)}`);
                })();
        if (entries.length === 0) return this.#nodes(node.otherwise, dot, [...scope, new Map()]);
        let out = '';
        for (const [key, value] of entries) {
          const frame = new Map<string, unknown>();
          if (decl?.names.length === 1) frame.set(decl.names[0] ?? '', value);
          if (decl?.names.length === 2) {
            frame.set(decl.names[0] ?? '', key);
            frame.set(decl.names[1] ?? '', value);
          }
          out += this.#nodes(node.body, value, [...scope, frame]);
        }
        return out;
      }
    }
  }

  #pipeline(pipeline: Pipeline, dot: unknown, scope: Scope): unknown {
    let value: unknown;
    let first = true;
    for (const command of pipeline.commands) {
      value = this.#command(command, dot, scope, first ? { has: false } : { has: true, value });
      first = false;
    }
    if (pipeline.decl) {
      const [name] = pipeline.decl.names;
      if (name === undefined || pipeline.decl.names.length !== 1) {
        throw new TemplateError('only single-variable declarations are supported outside range');
      }
      if (pipeline.decl.op === 'declare') {
        scope[scope.length - 1]?.set(name, value);
      } else {
        const frame = [...scope].reverse().find((f) => f.has(name));
        if (!frame) throw new TemplateError(`undefined variable $${name}`);
        frame.set(name, value);
      }
    }
    return value;
  }

  #lookup(base: unknown, path: readonly string[], label: string): unknown {
    let value = base;
    let where = label;
    for (const key of path) {
      if (value === null || value === undefined) {
        throw new TemplateError(`nil pointer evaluating ${where}.${key}`);
      }
      if (!isDict(value)) throw new TemplateError(`can't evaluate field ${key} in ${where} (not a map)`);
      value = Object.hasOwn(value, key) ? value[key] : undefined;
      where = `${where}.${key}`;
    }
    return value;
  }

  #variable(name: string, scope: Scope): unknown {
    for (let i = scope.length - 1; i >= 0; i -= 1) {
      const frame = scope[i];
      if (frame?.has(name)) return frame.get(name);
    }
    throw new TemplateError(`undefined variable $${name}`);
  }

  #operand(op: Operand, dot: unknown, scope: Scope): unknown {
    switch (op.o) {
      case 'field':
        return this.#lookup(dot, op.path, '.');
      case 'var':
        return this.#lookup(this.#variable(op.name, scope), op.path, `$${op.name}`);
      case 'lit':
        return op.value;
      case 'sub':
        return this.#lookup(this.#pipeline(op.pipeline, dot, scope), op.path, '(…)');
      case 'fn':
        return this.#call(op.name, [], dot, scope);
    }
  }

  #command(
    command: readonly Operand[],
    dot: unknown,
    scope: Scope,
    piped: { has: false } | { has: true; value: unknown },
  ): unknown {
    const [head, ...rest] = command;
    if (head === undefined) throw new TemplateError('empty command');
    if (head.o !== 'fn') {
      if (rest.length > 0 || piped.has)
        throw new TemplateError('can only pipe into or give arguments to a function');
      return this.#operand(head, dot, scope);
    }
    const thunks = rest.map((op) => () => this.#operand(op, dot, scope));
    if (piped.has) thunks.push(() => piped.value);
    return this.#callLazy(head.name, thunks);
  }

  #call(name: string, args: readonly unknown[], _dot: unknown, _scope: Scope): unknown {
    return this.#callLazy(
      name,
      args.map((a) => () => a),
    );
  }

  #callLazy(name: string, thunks: readonly (() => unknown)[]): unknown {
    if (name === 'and') {
      let v: unknown = true;
      for (const t of thunks) {
        v = t();
        if (!truthy(v)) return v;
      }
      return v;
    }
    if (name === 'or') {
      let v: unknown = false;
      for (const t of thunks) {
        v = t();
        if (truthy(v)) return v;
      }
      return v;
    }
    const a = thunks.map((t) => t());
    const arg = (i: number): unknown => a[i];
    const str = (i: number): string => needString(name, a[i]);
    switch (name) {
      case 'include':
        return this.include(str(0), arg(1));
      case 'required':
        if (arg(1) === null || arg(1) === undefined || arg(1) === '') throw new TemplateError(str(0));
        return arg(1);
      case 'fail':
        throw new TemplateError(str(0));
      case 'default':
        return a.length < 2 || !truthy(arg(1)) ? arg(0) : arg(1);
      case 'empty':
        return !truthy(arg(0));
      case 'quote':
        return a
          .filter((v) => v !== null && v !== undefined)
          .map((v) => JSON.stringify(goString(v)))
          .join(' ');
      case 'squote':
        return a
          .filter((v) => v !== null && v !== undefined)
          .map((v) => `'${goString(v)}'`)
          .join(' ');
      case 'toString':
        return goString(arg(0));
      case 'toYaml':
        return toYaml(arg(0));
      case 'toJson':
        return JSON.stringify(arg(0) ?? null, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v));
      case 'indent':
      case 'nindent': {
        const pad = ' '.repeat(Number(num(arg(0))));
        const body = str(1)
          .split('\n')
          .map((line) => pad + line)
          .join('\n');
        return name === 'nindent' ? `\n${body}` : body;
      }
      case 'b64enc':
        return Buffer.from(str(0), 'utf8').toString('base64');
      case 'sha256sum':
        return createHash('sha256').update(str(0), 'utf8').digest('hex');
      case 'printf':
        return printf(str(0), a.slice(1));
      case 'print':
        return a.map(goString).join('');
      case 'trunc': {
        const n = Number(num(arg(0)));
        const s = str(1);
        return n >= 0 ? s.slice(0, n) : s.slice(n);
      }
      case 'trim':
        return str(0).trim();
      case 'trimSuffix':
        return str(1).endsWith(str(0)) ? str(1).slice(0, str(1).length - str(0).length) : str(1);
      case 'trimPrefix':
        return str(1).startsWith(str(0)) ? str(1).slice(str(0).length) : str(1);
      case 'replace':
        return str(2).split(str(0)).join(str(1));
      case 'lower':
        return str(0).toLowerCase();
      case 'upper':
        return str(0).toUpperCase();
      case 'contains':
        return str(1).includes(str(0));
      case 'hasPrefix':
        return str(1).startsWith(str(0));
      case 'hasSuffix':
        return str(1).endsWith(str(0));
      case 'eq':
        return a.slice(1).some((b) => goEq(arg(0), b));
      case 'ne':
        return !goEq(arg(0), arg(1));
      case 'lt':
        return num(arg(0)) < num(arg(1));
      case 'le':
        return num(arg(0)) <= num(arg(1));
      case 'gt':
        return num(arg(0)) > num(arg(1));
      case 'ge':
        return num(arg(0)) >= num(arg(1));
      case 'not':
        return !truthy(arg(0));
      case 'index': {
        let v = arg(0);
        for (const key of a.slice(1)) {
          if (Array.isArray(v)) {
            const i = Number(num(key));
            if (i < 0 || i >= v.length) throw new TemplateError(`index out of range: ${i}`);
            v = v[i];
          } else if (isDict(v)) {
            v = Object.hasOwn(v, String(key)) ? v[String(key)] : undefined;
          } else if (v === null || v === undefined) {
            v = undefined;
          } else {
            throw new TemplateError(`can't index item of type ${typeof v}`);
          }
        }
        return v;
      }
      case 'hasKey': {
        const m = arg(0);
        return isDict(m) && Object.hasOwn(m, str(1));
      }
      case 'dict': {
        const out: Dict = {};
        for (let i = 0; i < a.length; i += 2) out[goString(a[i])] = a[i + 1];
        return out;
      }
      case 'list':
        return [...a];
      case 'int': {
        const v = arg(0);
        if (typeof v === 'string') return BigInt(/^-?\d+$/.test(v) ? v : '0');
        if (typeof v === 'number') return BigInt(Math.trunc(v));
        if (typeof v === 'bigint') return v;
        return 0n;
      }
      case 'len': {
        const v = arg(0);
        if (typeof v === 'string' || Array.isArray(v)) return BigInt(v.length);
        if (isDict(v)) return BigInt(Object.keys(v).length);
        throw new TemplateError(`len of ${typeof v}`);
      }
      case 'join': {
        const list = arg(1);
        if (!Array.isArray(list)) throw new TemplateError('join: expected a list');
        return list.map(goString).join(str(0));
      }
      case 'regexMatch':
        return new RegExp(str(0)).test(str(1));
      case 'ternary':
        return truthy(arg(2)) ? arg(0) : arg(1);
      default:
        throw new TemplateError(`function "${name}" is not supported by this renderer`);
    }
  }
}

export interface TemplateSet {
  /** Renders one named file's body with `data` as dot and `$`. */
  render(file: string, data: unknown): string;
  /** Renders a `define`d template (as `include` does). */
  include(name: string, data: unknown): string;
}

/** Parses every file (defines from all of them are shared, as in Helm) and returns a renderer. */
export function parseTemplates(files: ReadonlyMap<string, string>): TemplateSet {
  const bodies = new Map<string, readonly Node[]>();
  const defines = new Map<string, readonly Node[]>();
  for (const [file, source] of files) {
    const parsed = parseTemplate(source, file);
    bodies.set(file, parsed.nodes);
    for (const [name, body] of parsed.defines) defines.set(name, body);
  }
  const renderer = new Renderer(defines);
  return {
    render(file, data) {
      const body = bodies.get(file);
      if (body === undefined) throw new TemplateError(`no file ${file}`);
      return renderer.render(body, data).replaceAll('<no value>', '');
    },
    include(name, data) {
      return renderer.include(name, data);
    },
  };
}

/** Renders a single template string (tests of the renderer itself). */
export function renderString(source: string, data: unknown): string {
  return parseTemplates(new Map([['inline', source]])).render('inline', data);
}
