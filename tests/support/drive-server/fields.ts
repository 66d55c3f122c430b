/**
 * The `fields` parameter (partial response): `a,b/c,files(id,name)`, `*` for everything.
 * A selection maps a field name to `true` (the whole value) or to a nested selection.
 */
import { errors } from './errors.js';

export type Selection = Map<string, Selection | true>;

export function parseFields(text: string): Selection {
  let pos = 0;
  const fail = () => errors.invalidParameter('fields', `Invalid field selection ${text}`);
  const name = (): string => {
    const m = /^\s*([A-Za-z_*][A-Za-z0-9_]*)\s*/.exec(text.slice(pos));
    if (!m) throw fail();
    pos += m[0].length;
    return m[1]!;
  };
  const list = (): Selection => {
    const sel: Selection = new Map();
    for (;;) {
      const path = [name()];
      while (text[pos] === '/') {
        pos++;
        path.push(name());
      }
      let leaf: Selection | true = true;
      if (text[pos] === '(') {
        pos++;
        leaf = list();
        if (text[pos] !== ')') throw fail();
        pos++;
        while (text[pos] === ' ') pos++;
      }
      merge(sel, path, leaf);
      if (text[pos] !== ',') return sel;
      pos++;
    }
  };
  const sel = list();
  if (pos !== text.length) throw fail();
  return sel;
}

function merge(sel: Selection, path: string[], leaf: Selection | true): void {
  const [head = '', ...rest] = path;
  if (rest.length === 0) {
    sel.set(head, leaf);
    return;
  }
  let child = sel.get(head);
  if (child === true) return;
  if (!child) sel.set(head, (child = new Map()));
  merge(child, rest, leaf);
}

/** Checks the names a selection uses against a resource's known fields. */
export function checkNames(sel: Selection, known: ReadonlySet<string>): void {
  for (const key of sel.keys()) {
    if (key !== '*' && !known.has(key)) {
      throw errors.invalidParameter('fields', `Invalid field selection ${key}`);
    }
  }
}

/** Keeps only the selected fields of a JSON value (arrays are filtered element-wise). */
export function pick(value: unknown, sel: Selection | true): unknown {
  if (sel === true || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => pick(v, sel));
  if (sel.has('*')) return value;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of sel) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = pick(v, sub);
  }
  return out;
}
