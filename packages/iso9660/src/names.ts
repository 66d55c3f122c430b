/**
 * Names in the two ISO 9660 trees. The real names live in Rock Ridge NM entries; the
 * primary tree gets level-3 d-character names and Joliet gets UCS-2 names of at most 64
 * characters. Both are derived deterministically from the real names and made unique
 * within their directory (a reader that drops the version `;1` and a trailing dot must
 * still see distinct names).
 */

/** ECMA-119 level 3: file name + '.' + extension at most 30 characters (";1" apart). */
export const PRIMARY_MAX = 30;
/** Joliet: at most 64 UCS-2 characters (";1" apart). */
export const JOLIET_MAX = 64;
const PRIMARY_EXT_MAX = 8;
const JOLIET_EXT_MAX = 16;

export interface NameRequest {
  name: string;
  isDirectory: boolean;
}

/**
 * Primary-tree identifiers for the children of one directory, in the order of `requests`.
 * Files get "NAME.EXT;1" (the dot always, ECMA-119 7.5.1), directories "NAME".
 */
export function primaryIdentifiers(requests: readonly NameRequest[]): string[] {
  return uniqueNames(requests, primarySplit, PRIMARY_MAX, '_').map((shown, i) =>
    requests[i]!.isDirectory ? shown : `${shown.includes('.') ? shown : `${shown}.`};1`,
  );
}

/**
 * Joliet identifiers for the children of one directory, in the order of `requests`, as
 * JavaScript strings of BMP characters (encode with `ucs2`). Files get ";1".
 */
export function jolietIdentifiers(requests: readonly NameRequest[]): string[] {
  return uniqueNames(requests, jolietSplit, JOLIET_MAX, '~').map((shown, i) =>
    requests[i]!.isDirectory ? shown : `${shown};1`,
  );
}

interface Split {
  base: string;
  /** Whether the name has a dot before the extension (primary files always do). */
  dot: boolean;
  /** Without the dot. */
  ext: string;
}

function primarySplit({ name, isDirectory }: NameRequest): Split {
  const dot = isDirectory ? -1 : name.lastIndexOf('.');
  const base = dot > 0 ? name.slice(0, dot) : dot === 0 ? '' : name;
  const ext = dot >= 0 ? name.slice(dot + 1) : '';
  return { base: toDChars(base), dot: !isDirectory, ext: toDChars(ext).slice(0, PRIMARY_EXT_MAX) };
}

/** Upper-case A–Z, 0–9 and '_'; every other character (one per code point) becomes '_'. */
export function toDChars(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.toUpperCase();
    out += c.length === 1 && /[A-Z0-9_]/.test(c) ? c : '_';
  }
  return out;
}

function jolietSplit({ name, isDirectory }: NameRequest): Split {
  // Windows and 7-Zip drop trailing dots and spaces; keep them out of the name so that
  // what those readers show is what we made unique.
  const mapped = toJolietChars(name).replace(/[. ]+$/, (tail) => '_'.repeat(tail.length));
  const dot = isDirectory ? -1 : mapped.lastIndexOf('.');
  const extLength = mapped.length - dot - 1;
  if (dot <= 0 || extLength === 0 || extLength > JOLIET_EXT_MAX)
    return { base: mapped, dot: false, ext: '' };
  return { base: mapped.slice(0, dot), dot: true, ext: mapped.slice(dot + 1) };
}

/**
 * Characters Joliet can hold: BMP characters except controls and * / : ; ? \ (the
 * Joliet specification's exclusions). Others (including characters beyond the BMP,
 * which UCS-2 cannot encode) become '_', one per code point.
 */
export function toJolietChars(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const bad =
      cp < 0x20 || cp > 0xffff || (cp >= 0xd800 && cp <= 0xdfff) || '*/:;?\\'.includes(ch);
    out += bad ? '_' : ch;
  }
  return out;
}

/** The name a reader shows: a trailing dot (an empty extension) and the version dropped. */
function shownName(base: string, ext: string): string {
  return ext === '' ? base : `${base}.${ext}`;
}

/**
 * The shown names (no version) for a directory's children: each request's split is cut
 * to `max` characters (the base shortened first, the extension kept); a name already
 * taken gets `mark` + a counter at the end of its base. Requests are served in the order
 * of their real names, so the result does not depend on the order of the input.
 */
function uniqueNames(
  requests: readonly NameRequest[],
  split: (request: NameRequest) => Split,
  max: number,
  mark: string,
): string[] {
  const order = requests
    .map((_, i) => i)
    .sort((a, b) => compareStrings(requests[a]!.name, requests[b]!.name));
  const taken = new Set<string>();
  const out: string[] = new Array<string>(requests.length);
  for (const i of order) {
    const parts = split(requests[i]!);
    const room = max - (parts.dot ? parts.ext.length + 1 : 0);
    let shown = shownName(parts.base.slice(0, room), parts.ext);
    for (let k = 1; taken.has(shown); k++) {
      const suffix = `${mark}${k}`;
      shown = shownName(parts.base.slice(0, Math.max(0, room - suffix.length)) + suffix, parts.ext);
    }
    taken.add(shown);
    out[i] = shown;
  }
  return out;
}

/** Plain code-unit order: total and locale-free. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * ECMA-119 9.3 order of primary identifiers: by file name, then extension, each padded
 * with spaces (d-characters all sort after the space, so shorter first), then version
 * (all ours are 1).
 */
export function comparePrimary(a: string, b: string): number {
  const [an, ae] = nameAndExtension(a);
  const [bn, be] = nameAndExtension(b);
  return compareStrings(an, bn) || compareStrings(ae, be);
}

function nameAndExtension(identifier: string): [string, string] {
  const semi = identifier.indexOf(';');
  const bare = semi < 0 ? identifier : identifier.slice(0, semi);
  const dot = bare.indexOf('.');
  return dot < 0 ? [bare, ''] : [bare.slice(0, dot), bare.slice(dot + 1)];
}
