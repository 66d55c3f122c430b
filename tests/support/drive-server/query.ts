/**
 * The subset of Drive's search-query language (`q` of files.list) that Kinvault uses:
 *   name = '…' | name != '…' | mimeType = '…' | mimeType != '…' | trashed = true|false
 *   '<id>' in parents | appProperties has { key='…' and value='…' }
 * joined with `and`, with parentheses. Strings are single-quoted, `\'` and `\\` escape.
 * Anything else is refused with 400 `invalid` on `q`, as Drive refuses queries it cannot parse.
 */
import { errors } from './errors.js';
import type { FileMeta } from './state.js';

export type Predicate = (file: FileMeta) => boolean;

type Token = { kind: 'string'; value: string } | { kind: 'word'; value: string };

function tokenize(q: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= q.length) throw errors.invalid('q');
        const d = q[i++];
        if (d === "'") break;
        if (d === '\\') {
          if (i >= q.length) throw errors.invalid('q');
          value += q[i++];
        } else value += d;
      }
      tokens.push({ kind: 'string', value });
    } else if ('(){}='.includes(c)) {
      tokens.push({ kind: 'word', value: c });
      i++;
    } else if (q.startsWith('!=', i)) {
      tokens.push({ kind: 'word', value: '!=' });
      i += 2;
    } else {
      const m = /^[A-Za-z]+/.exec(q.slice(i));
      if (!m) throw errors.invalid('q');
      tokens.push({ kind: 'word', value: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

export function parseQuery(q: string): Predicate {
  const tokens = tokenize(q);
  let pos = 0;
  const fail = () => errors.invalid('q');
  const peekWord = (w: string) =>
    tokens[pos]?.kind === 'word' && tokens[pos]!.value.toLowerCase() === w.toLowerCase();
  const word = (w: string) => {
    if (!peekWord(w)) throw fail();
    pos++;
  };
  const str = (): string => {
    const t = tokens[pos++];
    if (t?.kind !== 'string') throw fail();
    return t.value;
  };
  const eqOp = (): boolean => {
    if (peekWord('=')) return (pos++, true);
    if (peekWord('!=')) return (pos++, false);
    throw fail();
  };
  const term = (): Predicate => {
    const t = tokens[pos];
    if (!t) throw fail();
    if (t.kind === 'string') {
      pos++;
      word('in');
      word('parents');
      return (f) => f.parents.includes(t.value);
    }
    pos++;
    switch (t.value) {
      case '(': {
        const inner = conjunction();
        word(')');
        return inner;
      }
      case 'name':
      case 'mimeType': {
        const field = t.value;
        const eq = eqOp();
        const value = str();
        return (f) => (f[field] === value) === eq;
      }
      case 'trashed': {
        const eq = eqOp();
        const b = tokens[pos++];
        if (b?.kind !== 'word' || !/^(true|false)$/i.test(b.value)) throw fail();
        const value = b.value.toLowerCase() === 'true';
        return (f) => (f.trashed === value) === eq;
      }
      case 'appProperties': {
        word('has');
        word('{');
        word('key');
        word('=');
        const key = str();
        word('and');
        word('value');
        word('=');
        const value = str();
        word('}');
        return (f) => f.appProperties[key] === value;
      }
      default:
        throw fail();
    }
  };
  const conjunction = (): Predicate => {
    const parts = [term()];
    while (peekWord('and')) {
      pos++;
      parts.push(term());
    }
    return (f) => parts.every((p) => p(f));
  };
  const pred = conjunction();
  if (pos !== tokens.length) throw fail();
  return pred;
}
