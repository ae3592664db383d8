import { describe, expect, it } from 'vitest';
import { parseTemplates, renderString, TemplateError } from './support/go-template';
import { coalesce, parseSet } from './support/helm';

/**
 * The renderer the chart test relies on, held to Go text/template + Sprig behaviour (expected outputs are
 * what `helm template` prints for the same input).
 */

const values = {
  Values: {
    name: 'signal',
    replicas: 2,
    big: 1_000_000,
    enabled: true,
    empty: '',
    list: ['a', 'b'],
    map: { b: 2, a: 1 },
    nested: { key: 'value' },
  },
};

describe('Go template subset', () => {
  it('prints fields, literals and trims whitespace around {{- and -}}', () => {
    expect(renderString('name: {{ .Values.name }}', values)).toBe('name: signal');
    expect(renderString('a\n  {{- "b" }}\n{{- "c" -}}\n  d', values)).toBe('abcd');
    expect(renderString('{{ .Values.missing }}|{{ .Values.enabled }}|{{ 3 }}', values)).toBe('|true|3');
    expect(renderString('x {{/* a comment */}} y {{- /* trimmed */ -}} z', values)).toBe('x  yz');
  });

  it('prints numbers from values.yaml as Go float64 does', () => {
    expect(
      renderString('{{ .Values.replicas }} {{ .Values.big }} {{ .Values.big | toString }}', values),
    ).toBe('2 1e+06 1e+06');
  });

  it('pipes the previous value as the last argument', () => {
    expect(renderString('{{ .Values.name | quote }}', values)).toBe('"signal"');
    expect(renderString('{{ .Values.empty | default "fallback" | upper }}', values)).toBe('FALLBACK');
    expect(renderString('{{ printf "%s-%s" .Values.name "x" | trunc 8 | trimSuffix "-" }}', values)).toBe(
      'signal-x',
    );
  });

  it('if / else if / else, with truthiness of empty values', () => {
    const t = '{{ if .Values.empty }}a{{ else if .Values.list }}b{{ else }}c{{ end }}';
    expect(renderString(t, values)).toBe('b');
    expect(renderString('{{ if .Values.map }}yes{{ end }}{{ if dict }}no{{ end }}', values)).toBe('yes');
    expect(renderString('{{ if and .Values.enabled (not .Values.empty) }}ok{{ end }}', values)).toBe('ok');
  });

  it('and/or short-circuit like Go 1.18+', () => {
    expect(
      renderString('{{ if and .Values.missing .Values.missing.deeper }}x{{ else }}y{{ end }}', values),
    ).toBe('y');
    expect(() => renderString('{{ .Values.missing.deeper }}', values)).toThrow(/nil pointer/);
  });

  it('range over lists and maps (sorted keys), with variables and else', () => {
    expect(renderString('{{ range .Values.list }}[{{ . }}]{{ end }}', values)).toBe('[a][b]');
    expect(renderString('{{ range $k, $v := .Values.map }}{{ $k }}={{ $v }};{{ end }}', values)).toBe(
      'a=1;b=2;',
    );
    expect(renderString('{{ range $i, $v := .Values.list }}{{ $i }}{{ $v }}{{ end }}', values)).toBe('0a1b');
    expect(renderString('{{ range .Values.nothing }}x{{ else }}none{{ end }}', values)).toBe('none');
    expect(renderString('{{ range .Values.list }}{{ $.Values.name }}{{ end }}', values)).toBe('signalsignal');
  });

  it('with rebinds dot; variables are scoped to their block', () => {
    expect(renderString('{{ with .Values.nested }}{{ .key }}{{ end }}', values)).toBe('value');
    expect(renderString('{{ with .Values.empty }}x{{ else }}y{{ end }}', values)).toBe('y');
    expect(renderString('{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}', values)).toBe('b');
    expect(() => renderString('{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}', values)).toThrow(
      /undefined variable/,
    );
  });

  it('define / include, toYaml | nindent', () => {
    const set = parseTemplates(
      new Map([
        ['_helpers.tpl', '{{- define "labels" -}}\napp: {{ .name }}\ntier: web\n{{- end -}}'],
        [
          'main.yaml',
          'metadata:\n  labels:\n    {{- include "labels" .Values | nindent 4 }}\n  map:\n    {{- toYaml .Values.map | nindent 4 }}',
        ],
      ]),
    );
    expect(set.render('main.yaml', values)).toBe(
      'metadata:\n  labels:\n    app: signal\n    tier: web\n  map:\n    a: 1\n    b: 2',
    );
  });

  it('required, fail, default, toString of nil, b64enc, sha256sum, regexMatch', () => {
    expect(() => renderString('{{ required "set name" .Values.empty }}', values)).toThrow('set name');
    expect(() => renderString('{{ fail "no" }}', values)).toThrow(TemplateError);
    expect(renderString('{{ default "d" .Values.name }}', values)).toBe('signal');
    expect(renderString('{{ toString .Values.missing }}', values)).toBe('<nil>');
    expect(renderString('{{ "signal" | b64enc }}', values)).toBe('c2lnbmFs');
    expect(renderString('{{ "abc" | sha256sum }}', values)).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(
      renderString(
        '{{ regexMatch "^[0-9a-f]{4}$" "beef" }} {{ regexMatch "^[0-9a-f]{4}$" "beefy" }}',
        values,
      ),
    ).toBe('true false');
  });

  it('index, hasKey, eq with several candidates, int comparisons', () => {
    const data = { Values: { services: { 'ingestion-gateway': { replicas: 3 } } } };
    expect(renderString('{{ (index .Values.services "ingestion-gateway").replicas }}', data)).toBe('3');
    expect(renderString('{{ hasKey .Values.services "ingestion-gateway" }}', data)).toBe('true');
    expect(renderString('{{ eq "b" "a" "b" }} {{ ne 1 2 }} {{ gt (int "3") 1 }}', data)).toBe(
      'true true true',
    );
  });

  it('refuses what it does not implement instead of rendering wrongly', () => {
    expect(() => renderString('{{ tpl "x" . }}', values)).toThrow(/not supported/);
    expect(() => renderString('{{ template "x" . }}', values)).toThrow(/not supported/);
    expect(() => renderString('{{ if true }}unclosed', values)).toThrow(/missing end/);
  });
});

describe('Helm values', () => {
  it('--set infers types like strvals: 64 hex digits stay a string, small integers become int64', () => {
    expect(
      parseSet(['encryption.key=0123456789012345678901234567890123456789012345678901234567890123']),
    ).toEqual({
      encryption: { key: '0123456789012345678901234567890123456789012345678901234567890123' },
    });
    expect(parseSet(['a=123,b=true,c=null,d=1e5'])).toEqual({ a: 123n, b: true, c: null, d: '1e5' });
  });

  it('coalescing: maps merge, null deletes a default', () => {
    expect(coalesce({ a: { b: 1, c: 2 }, d: 3 }, { a: { c: null }, d: 4 })).toEqual({ a: { b: 1 }, d: 4 });
  });
});
