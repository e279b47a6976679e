// Kubernetes label selectors ("team=payments,tier in (web,api),!legacy"), parsed at the edge so a
// typo is a config error at start, not a 400 from the API server on the first list. The same typed
// value matches labels locally (the CLI) and is sent to the API server as its canonical text (the
// Namespace watch), so both read it the same way. Set-based and equality-based requirements are
// supported; the numeric operators (gt, lt) that only node affinity uses are not.

export type Requirement =
  | { key: string; op: 'exists' | 'not-exists' }
  | { key: string; op: 'equals' | 'not-equals'; value: string }
  | { key: string; op: 'in' | 'not-in'; values: readonly string[] };

export interface LabelSelector {
  /** Canonical form, as sent to the API server and shown in messages. */
  readonly text: string;
  readonly requirements: readonly Requirement[];
}

export type SelectorParse = { ok: true; selector: LabelSelector } | { ok: false; reason: string };

const NAME = '[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const PREFIX = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*';
const KEY = `(?:${PREFIX}/)?${NAME}`;
const VALUE = `(?:${NAME})?`;
const EXISTS = new RegExp(`^(!?)\\s*(${KEY})$`);
const EQUALITY = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const VALUE_ONLY = new RegExp(`^${VALUE}$`);
const MAX_PREFIX = 253;

/** Splits on the commas between requirements, not those inside an in/notin list. */
function splitRequirements(text: string): string[] | undefined {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    if (depth < 0 || depth > 1) return undefined;
    if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (depth !== 0) return undefined;
  parts.push(text.slice(start).trim());
  return parts;
}

function parseRequirement(part: string): Requirement | string {
  if (part === '') return 'an empty requirement (two commas in a row, or a trailing comma)';
  const key = part.match(/^!?\s*([^\s=!(]+)/)?.[1] ?? part;
  const prefix = key.includes('/') ? key.slice(0, key.indexOf('/')) : '';
  if (prefix.length > MAX_PREFIX) return `the key prefix of "${part}" is longer than ${MAX_PREFIX} characters`;

  const exists = part.match(EXISTS);
  if (exists) return { key: exists[2]!, op: exists[1] === '!' ? 'not-exists' : 'exists' };
  const equality = part.match(EQUALITY);
  if (equality) return { key: equality[1]!, op: equality[2] === '!=' ? 'not-equals' : 'equals', value: equality[3]! };
  const set = part.match(SET);
  if (set) {
    const values = set[3]!.split(',').map((v) => v.trim());
    if (values.length === 0 || values.some((v) => v === '')) return `"${part}" needs one or more values in its parentheses`;
    const bad = values.find((v) => !VALUE_ONLY.test(v));
    if (bad !== undefined) return `"${bad}" in "${part}" is not a label value (63 characters at most: letters, digits, - _ . inside)`;
    return { key: set[1]!, op: set[2] === 'in' ? 'in' : 'not-in', values: [...new Set(values)].sort() };
  }
  if (/[<>]/.test(part)) return `"${part}": the operators < and > are not supported here`;
  return `"${part}" is not a requirement (key, !key, key=value, key!=value, key in (a,b) or key notin (a,b); keys and values are labels)`;
}

function formatRequirement(r: Requirement): string {
  switch (r.op) {
    case 'exists':
      return r.key;
    case 'not-exists':
      return `!${r.key}`;
    case 'equals':
      return `${r.key}=${r.value}`;
    case 'not-equals':
      return `${r.key}!=${r.value}`;
    case 'in':
      return `${r.key} in (${r.values.join(',')})`;
    case 'not-in':
      return `${r.key} notin (${r.values.join(',')})`;
  }
}

export function parseLabelSelector(raw: string): SelectorParse {
  const parts = splitRequirements(raw.trim());
  if (!parts) return { ok: false, reason: 'unbalanced or nested parentheses' };
  const requirements: Requirement[] = [];
  for (const part of parts) {
    const r = parseRequirement(part);
    if (typeof r === 'string') return { ok: false, reason: r };
    requirements.push(r);
  }
  return { ok: true, selector: { text: requirements.map(formatRequirement).join(','), requirements } };
}

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  return selector.requirements.every((r) => requirementHolds(r, Object.hasOwn(l, r.key) ? l[r.key] : undefined));
}

/** `value` is the label's value, undefined when the object has no such label. */
function requirementHolds(r: Requirement, value: string | undefined): boolean {
  switch (r.op) {
    case 'exists':
      return value !== undefined;
    case 'not-exists':
      return value === undefined;
    case 'equals':
      return value === r.value;
    case 'not-equals':
      return value !== r.value;
    case 'in':
      return value !== undefined && r.values.includes(value);
    case 'not-in':
      return value === undefined || !r.values.includes(value);
  }
}
