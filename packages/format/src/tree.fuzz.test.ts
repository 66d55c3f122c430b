/**
 * Property and fuzz tests for the tree encoding: valid trees round-trip, every byte
 * string that decodes is canonical (re-encodes to itself), and anything else is
 * TREE_INVALID — never another exception, a hang or a giant allocation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isKinvaultError } from '@kinvault/protocol';
import {
  decodeTree,
  encodeTree,
  MAX_NAME_BYTES,
  MAX_SYMLINK_BYTES,
  sortNodes,
  type Tree,
  type TreeNode,
} from './tree.js';

const utf8 = new TextEncoder();
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function byteLength(s: string): number {
  return utf8.encode(s).byteLength;
}

/** No lone surrogates (checked code point by code point, independently of tree.ts). */
function wellFormed(s: string): boolean {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) return false;
  }
  return true;
}

/** The spec's rule for a name: one path component, 1..1024 UTF-8 bytes. */
function isValidName(s: string): boolean {
  const n = byteLength(s);
  return (
    n >= 1 &&
    n <= MAX_NAME_BYTES &&
    s !== '.' &&
    s !== '..' &&
    !s.includes('/') &&
    !s.includes('\0') &&
    wellFormed(s)
  );
}

function isValidTarget(s: string): boolean {
  const n = byteLength(s);
  return n >= 1 && n <= MAX_SYMLINK_BYTES && !s.includes('\0') && wellFormed(s);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** decodeTree either returns a canonical tree or throws TREE_INVALID; anything else fails. */
function decodeOrInvalid(bytes: Uint8Array): Tree | undefined {
  let tree: Tree;
  try {
    tree = decodeTree(bytes);
  } catch (error) {
    if (!isKinvaultError(error)) {
      throw new Error(`expected a KinvaultError, got: ${String(error)}`, { cause: error });
    }
    expect(error.code).toBe('TREE_INVALID');
    return undefined;
  }
  expect(same(encodeTree(tree), bytes)).toBe(true);
  return tree;
}

function expectInvalid(run: () => unknown): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(isKinvaultError(thrown, 'TREE_INVALID')).toBe(true);
}

// ---------------------------------------------------------------------------------
// Independent little-endian writer for hand-made (possibly invalid) encodings.

class Lax {
  private readonly parts: Uint8Array[] = [];
  private fixed(n: number, set: (v: DataView) => void): this {
    const b = new Uint8Array(n);
    set(new DataView(b.buffer));
    this.parts.push(b);
    return this;
  }
  u8(v: number): this {
    return this.fixed(1, (d) => d.setUint8(0, v));
  }
  u16(v: number): this {
    return this.fixed(2, (d) => d.setUint16(0, v, true));
  }
  u32(v: number): this {
    return this.fixed(4, (d) => d.setUint32(0, v >>> 0, true));
  }
  u64(v: bigint): this {
    return this.fixed(8, (d) => d.setBigUint64(0, BigInt.asUintN(64, v), true));
  }
  i64(v: bigint): this {
    return this.fixed(8, (d) => d.setBigInt64(0, BigInt.asIntN(64, v), true));
  }
  raw(b: Uint8Array): this {
    this.parts.push(b);
    return this;
  }
  str16(b: Uint8Array | string): this {
    const bytes = typeof b === 'string' ? utf8.encode(b) : b;
    return this.u16(bytes.byteLength).raw(bytes);
  }
  finish(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts));
  }
}

interface LaxEntry {
  name: Uint8Array | string;
  kind: number;
  mode?: number;
  size?: bigint;
  chunkCount?: number;
  chunks?: Uint8Array;
  subtree?: Uint8Array;
  target?: Uint8Array | string;
  tail?: Uint8Array;
}

function writeEntry(w: Lax, e: LaxEntry): void {
  w.str16(e.name)
    .u8(e.kind)
    .u32(e.mode ?? 0o644)
    .i64(1_700_000_000_000_000_000n)
    .i64(-5n)
    .u64(42n)
    .u32(1000)
    .u32(1000);
  if (e.kind === 1) {
    const chunks = e.chunks ?? new Uint8Array(32).fill(1);
    w.u64(e.size ?? 100n)
      .u32(e.chunkCount ?? chunks.byteLength / 32)
      .raw(chunks);
  } else if (e.kind === 2) {
    w.raw(e.subtree ?? new Uint8Array(32).fill(2));
  } else if (e.kind === 3) {
    w.str16(e.target ?? 'target');
  } else {
    w.raw(e.tail ?? new Uint8Array(32));
  }
}

function laxTree(entries: readonly LaxEntry[], opts: { version?: number; count?: number } = {}) {
  const w = new Lax().u8(opts.version ?? 1).u32(opts.count ?? entries.length);
  for (const e of entries) writeEntry(w, e);
  return w.finish();
}

// ---------------------------------------------------------------------------------
// Arbitraries for valid trees

const SPECIAL_CHARS = [
  'a',
  'b',
  'Z',
  '0',
  '.',
  '-',
  ' ',
  '~',
  '\\',
  ':',
  '\u007f',
  '\u0080',
  'é',
  'e\u0301',
  'ß',
  'ﬁ',
  '中',
  '😀',
  '\u200b',
  '\ufeff', // a leading BOM must survive (TextDecoder strips it unless told not to)
  '\ufffd',
  '\uffff',
  '\u{10ffff}',
  '/',
  '\0',
  '\ud800', // lone surrogates: never valid
  '\udfff',
];

const charArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL_CHARS) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

/** Any string, including invalid names (for the rejection properties). */
const anyNameArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: charArb, minLength: 0, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string() },
  {
    weight: 1,
    arbitrary: fc.constantFrom('.', '..', '...', '/', 'a/b', '\0', 'a\0', '', '.a', 'a.'),
  },
  // Long names around the 1024-byte limit.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('a', 'é', '中', '😀'), fc.integer({ min: 1000, max: 1030 }))
      .map(([c, bytes]) => c.repeat(Math.ceil(bytes / byteLength(c)))),
  },
);

const nameArb = anyNameArb.filter(isValidName);

const anyTargetArb = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: charArb, minLength: 0, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('/', '../x', '/a/b/c', '\0', '', '.') },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('a', 'é', '中', '😀'), fc.integer({ min: 4080, max: 4100 }))
      .map(([c, bytes]) => c.repeat(Math.ceil(bytes / byteLength(c)))),
  },
);
const targetArb = anyTargetArb.filter(isValidTarget);

const i64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const id32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

const baseArb = (name: fc.Arbitrary<string>) =>
  fc.record({
    name,
    mode: fc.integer({ min: 0, max: 0o7777 }),
    mtimeNs: i64,
    ctimeNs: i64,
    inode: u64,
    uid: u32,
    gid: u32,
  });

const fileArb = (name: fc.Arbitrary<string>): fc.Arbitrary<TreeNode> =>
  fc
    .record({
      base: baseArb(name),
      chunks: fc.array(id32, { maxLength: 6 }),
      extra: fc.oneof(
        fc.integer({ min: 0, max: 1000 }),
        fc.maxSafeNat(),
        fc.constant(Number.MAX_SAFE_INTEGER),
      ),
    })
    .map(({ base, chunks, extra }) => ({
      ...base,
      kind: 'file' as const,
      // size 0 ⇔ no chunks; never fewer bytes than chunks
      size: chunks.length === 0 ? 0 : Math.min(chunks.length + extra, Number.MAX_SAFE_INTEGER),
      chunks,
    }));

const dirArb = (name: fc.Arbitrary<string>): fc.Arbitrary<TreeNode> =>
  fc.record({ base: baseArb(name), subtree: id32 }).map(({ base, subtree }) => ({
    ...base,
    kind: 'dir' as const,
    subtree,
  }));

const symlinkArb = (name: fc.Arbitrary<string>): fc.Arbitrary<TreeNode> =>
  fc.record({ base: baseArb(name), target: targetArb }).map(({ base, target }) => ({
    ...base,
    kind: 'symlink' as const,
    target,
  }));

const nodeArb = (name: fc.Arbitrary<string>) =>
  fc.oneof(fileArb(name), dirArb(name), symlinkArb(name));

const treeArb: fc.Arbitrary<Tree> = fc
  .uniqueArray(nodeArb(nameArb), { selector: (n) => n.name, maxLength: 12 })
  .map((nodes) => ({ nodes: sortNodes(nodes) }));

/** Size of an encoding, from the spec (independent of encodeTree). */
function expectedSize(tree: Tree): number {
  let n = 1 + 4;
  for (const node of tree.nodes) {
    n += 2 + byteLength(node.name) + 1 + 4 + 8 + 8 + 8 + 4 + 4;
    if (node.kind === 'file') n += 8 + 4 + 32 * node.chunks.length;
    else if (node.kind === 'dir') n += 32;
    else n += 2 + byteLength(node.target);
  }
  return n;
}

// ---------------------------------------------------------------------------------

describe('tree fuzz: valid trees', () => {
  it('decodeTree(encodeTree(t)) equals t, and the encoding is canonical', () => {
    fc.assert(
      fc.property(treeArb, (tree) => {
        const bytes = encodeTree(tree);
        expect(bytes.byteLength).toBe(expectedSize(tree));
        expect(bytes[0]).toBe(1);
        expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(1, true)).toBe(
          tree.nodes.length,
        );
        const decoded = decodeTree(bytes);
        expect(decoded).toStrictEqual(tree);
        expect(same(encodeTree(decoded), bytes)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('encodeTree accepts exactly the names and targets the spec allows', () => {
    fc.assert(
      fc.property(
        nodeArb(anyNameArb),
        fc.oneof(fc.constant(undefined), anyTargetArb),
        (node, otherTarget) => {
          const n: TreeNode =
            node.kind === 'symlink' && otherTarget !== undefined
              ? { ...node, target: otherTarget }
              : node;
          const valid = isValidName(n.name) && (n.kind !== 'symlink' || isValidTarget(n.target));
          if (valid) {
            const bytes = encodeTree({ nodes: [n] });
            expect(decodeTree(bytes)).toStrictEqual({ nodes: [n] });
          } else {
            expectInvalid(() => encodeTree({ nodes: [n] }));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('encodeTree refuses unsorted or duplicate names (TREE_INVALID)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(nodeArb(nameArb), { selector: (n) => n.name, minLength: 2, maxLength: 6 }),
        fc.nat(),
        (nodes, pick) => {
          const sorted = sortNodes(nodes);
          // Reversed order is never sorted.
          expectInvalid(() => encodeTree({ nodes: [...sorted].reverse() }));
          // A duplicate name is never unique.
          const dup = sorted[pick % sorted.length]!;
          const withDup = sortNodes([...sorted, { ...dup }]);
          expectInvalid(() => encodeTree({ nodes: withDup }));
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------
// Arbitrary byte strings

const FRAGMENTS: Uint8Array[] = ['a', 'b', 'z', '.', '/', '\0', 'é', '😀', '\ufeff', '\uffff'].map(
  (s) => utf8.encode(s),
);
// Invalid UTF-8: lone continuation, overlong NUL, encoded surrogate, > U+10FFFF, cut sequence, 0xFF.
FRAGMENTS.push(
  Uint8Array.of(0x80),
  Uint8Array.of(0xc0, 0x80),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
  Uint8Array.of(0xe4, 0xb8),
  Uint8Array.of(0xff),
  new Uint8Array(512).fill(0x78),
);
const LONG_TARGET_FRAGMENTS = [new Uint8Array(2047).fill(0x79), new Uint8Array(2048).fill(0x79)];

const nameBytesArb = fc
  .oneof(
    {
      weight: 12,
      arbitrary: fc.array(fc.constantFrom(...FRAGMENTS), { minLength: 1, maxLength: 4 }),
    },
    { weight: 1, arbitrary: fc.constant([]) },
  )
  .map((parts) => new Uint8Array(Buffer.concat(parts)));
const targetBytesArb = fc
  .array(fc.constantFrom(...FRAGMENTS, ...LONG_TARGET_FRAGMENTS), { maxLength: 3 })
  .map((parts) => new Uint8Array(Buffer.concat(parts)));

interface RawEntry {
  name: Uint8Array;
  kind: number;
  mode: number;
  mtime: bigint;
  ctime: bigint;
  inode: bigint;
  uid: number;
  gid: number;
  size: bigint;
  chunks: Uint8Array[];
  subtree: Uint8Array;
  target: Uint8Array;
}

const rawEntryArb: fc.Arbitrary<RawEntry> = fc.record({
  name: nameBytesArb,
  kind: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1, 2, 3) }, fc.constantFrom(0, 4, 255)),
  mode: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 0o7777 }) },
    fc.constantFrom(0o10000, 0o100644, 0xffff_ffff),
  ),
  mtime: i64,
  ctime: i64,
  inode: u64,
  uid: u32,
  gid: u32,
  size: fc.oneof(
    { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 10n }) },
    fc.constantFrom(BigInt(Number.MAX_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER) + 1n),
    u64,
  ),
  chunks: fc.array(id32, { maxLength: 3 }),
  subtree: id32,
  target: targetBytesArb,
});

function decodesStrict(b: Uint8Array): string | undefined {
  try {
    return utf8Fatal.decode(b);
  } catch {
    return undefined;
  }
}

/** Whether one raw entry is valid by the spec (independent oracle). */
function rawEntryValid(e: RawEntry): boolean {
  const name = decodesStrict(e.name);
  if (name === undefined || !isValidName(name)) return false;
  if (e.mode > 0o7777) return false;
  if (e.kind === 1) {
    if (e.size > BigInt(Number.MAX_SAFE_INTEGER)) return false;
    if ((e.size === 0n) !== (e.chunks.length === 0)) return false;
    return BigInt(e.chunks.length) <= e.size;
  }
  if (e.kind === 2) return true;
  if (e.kind === 3) {
    const target = decodesStrict(e.target);
    return target !== undefined && isValidTarget(target);
  }
  return false;
}

function writeRaw(w: Lax, e: RawEntry): void {
  w.str16(e.name).u8(e.kind).u32(e.mode).i64(e.mtime).i64(e.ctime).u64(e.inode);
  w.u32(e.uid).u32(e.gid);
  if (e.kind === 1) {
    w.u64(e.size).u32(e.chunks.length);
    for (const c of e.chunks) w.raw(c);
  } else if (e.kind === 2) {
    w.raw(e.subtree);
  } else if (e.kind === 3) {
    w.str16(e.target);
  }
}

const rawTreeArb = fc
  .record({
    entries: fc.array(rawEntryArb, { maxLength: 5 }),
    sort: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
    countDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.integer({ min: -1, max: 1 })),
    version: fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, fc.integer({ min: 0, max: 255 })),
  })
  .map(({ entries, sort, countDelta, version }) => {
    const ordered = sort ? [...entries].sort((a, b) => Buffer.compare(a.name, b.name)) : entries;
    const count = Math.max(0, ordered.length + countDelta);
    const w = new Lax().u8(version).u32(count);
    for (const e of ordered) writeRaw(w, e);
    let increasing = true;
    for (let i = 1; i < ordered.length; i++) {
      if (Buffer.compare(ordered[i - 1]!.name, ordered[i]!.name) >= 0) increasing = false;
    }
    const valid =
      version === 1 && count === ordered.length && increasing && ordered.every(rawEntryValid);
    return { bytes: w.finish(), valid, entries: ordered };
  });

describe('tree fuzz: arbitrary bytes', () => {
  it('random bytes: a canonical tree or TREE_INVALID', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        decodeOrInvalid(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes behind a plausible header: a canonical tree or TREE_INVALID', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 3 }), u32),
        fc.uint8Array({ maxLength: 2000 }),
        (count, rest) => {
          decodeOrInvalid(new Lax().u8(1).u32(count).raw(rest).finish());
        },
      ),
      { numRuns: 500 },
    );
  });

  it('hand-encoded entries decode exactly when the spec says they are valid', () => {
    fc.assert(
      fc.property(rawTreeArb, ({ bytes, valid, entries }) => {
        const tree = decodeOrInvalid(bytes);
        expect(tree !== undefined).toBe(valid);
        if (tree === undefined) return;
        for (const [i, node] of tree.nodes.entries()) {
          const e = entries[i]!;
          expect(same(utf8.encode(node.name), e.name)).toBe(true);
          expect(node.mode).toBe(e.mode);
          expect(node.mtimeNs).toBe(e.mtime);
          expect(node.ctimeNs).toBe(e.ctime);
          expect(node.inode).toBe(e.inode);
          expect([node.uid, node.gid]).toEqual([e.uid, e.gid]);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('mutated valid encodings: a canonical tree or TREE_INVALID', () => {
    type Mutation =
      | { kind: 'flip'; at: number; bit: number }
      | { kind: 'truncate'; keep: number }
      | { kind: 'append'; extra: Uint8Array }
      | { kind: 'splice'; at: number; remove: number; insert: Uint8Array };
    const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
      fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
      fc.record({
        kind: fc.constant('append' as const),
        extra: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      }),
      fc.record({
        kind: fc.constant('splice' as const),
        at: fc.nat(),
        remove: fc.integer({ min: 0, max: 16 }),
        insert: fc.uint8Array({ maxLength: 16 }),
      }),
    );
    fc.assert(
      fc.property(treeArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (tree, ms) => {
        let bytes = encodeTree(tree);
        for (const m of ms) {
          const len = bytes.byteLength;
          if (m.kind === 'flip') {
            if (len === 0) continue;
            bytes = bytes.slice();
            bytes[m.at % len]! ^= 1 << m.bit;
          } else if (m.kind === 'truncate') {
            bytes = bytes.slice(0, len === 0 ? 0 : m.keep % len);
          } else if (m.kind === 'append') {
            bytes = new Uint8Array(Buffer.concat([bytes, m.extra]));
          } else {
            const at = m.at % (len + 1);
            bytes = new Uint8Array(
              Buffer.concat([bytes.subarray(0, at), m.insert, bytes.subarray(at + m.remove)]),
            );
          }
        }
        decodeOrInvalid(bytes);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------

describe('tree fuzz: specific invalid encodings are TREE_INVALID', () => {
  const file: LaxEntry = { name: 'f', kind: 1 };

  it('the hand encoder agrees with encodeTree on a valid tree', () => {
    const bytes = laxTree([
      { name: 'a', kind: 1 },
      { name: 'b', kind: 2 },
      { name: 'c', kind: 3 },
    ]);
    expect(same(encodeTree(decodeTree(bytes)), bytes)).toBe(true);
    expect(decodeTree(bytes).nodes.map((n) => n.kind)).toEqual(['file', 'dir', 'symlink']);
  });

  it('unsorted entries', () => {
    expectInvalid(() =>
      decodeTree(
        laxTree([
          { name: 'b', kind: 2 },
          { name: 'a', kind: 2 },
        ]),
      ),
    );
    // Sorted by UTF-16 but not by UTF-8 bytes: U+FF61 < U+1F600 in bytes, not in UTF-16.
    expectInvalid(() =>
      decodeTree(
        laxTree([
          { name: '😀', kind: 2 },
          { name: '｡', kind: 2 },
        ]),
      ),
    );
    expect(
      decodeTree(
        laxTree([
          { name: '｡', kind: 2 },
          { name: '😀', kind: 2 },
        ]),
      ).nodes,
    ).toHaveLength(2);
  });

  it('duplicate names', () => {
    expectInvalid(() =>
      decodeTree(
        laxTree([
          { name: 'a', kind: 2 },
          { name: 'a', kind: 3 },
        ]),
      ),
    );
  });

  it('names that are not one path component', () => {
    for (const name of ['', '.', '..', '/', 'a/b', '/a', 'a/', 'a\0b', '\0']) {
      expectInvalid(() => decodeTree(laxTree([{ ...file, name }])));
    }
    expectInvalid(() => decodeTree(laxTree([{ ...file, name: 'x'.repeat(MAX_NAME_BYTES + 1) }])));
    expect(decodeTree(laxTree([{ ...file, name: 'x'.repeat(MAX_NAME_BYTES) }])).nodes).toHaveLength(
      1,
    );
  });

  it('names that are not valid UTF-8', () => {
    for (const name of [
      Uint8Array.of(0xff),
      Uint8Array.of(0x61, 0x80),
      Uint8Array.of(0xc0, 0xae), // overlong "."
      Uint8Array.of(0xc0, 0xaf), // overlong "/"
      Uint8Array.of(0xed, 0xa0, 0x80), // a surrogate
      Uint8Array.of(0xf4, 0x90, 0x80, 0x80), // beyond U+10FFFF
      Uint8Array.of(0xe4, 0xb8), // cut short
    ]) {
      expectInvalid(() => decodeTree(laxTree([{ ...file, name }])));
    }
  });

  it('a leading U+FEFF is part of the name, not a byte-order mark', () => {
    for (const name of ['\ufeff', '\ufeffa', 'a\ufeff']) {
      const bytes = laxTree([{ name, kind: 3, target: name }]);
      const tree = decodeTree(bytes);
      expect(tree.nodes[0]!.name).toBe(name);
      expect(same(encodeTree(tree), bytes)).toBe(true);
    }
  });

  it('unknown kind bytes', () => {
    for (const kind of [0, 4, 5, 0x81, 255]) {
      expectInvalid(() => decodeTree(laxTree([{ name: 'a', kind }])));
    }
  });

  it('unknown version bytes', () => {
    for (const version of [0, 2, 3, 255]) {
      expectInvalid(() => decodeTree(laxTree([], { version })));
      expectInvalid(() => decodeTree(laxTree([file], { version })));
    }
  });

  it('a count of 2^32-1 entries in a short buffer fails at once', () => {
    for (const entries of [
      [],
      [file],
      Array.from({ length: 50 }, (_, i) => ({ ...file, name: `f${1000 + i}` })),
    ]) {
      const bytes = laxTree(entries, { count: 0xffff_ffff });
      const started = performance.now();
      expectInvalid(() => decodeTree(bytes));
      expect(performance.now() - started).toBeLessThan(100);
    }
  });

  it('a chunk count of 2^32-1 in a short buffer fails at once', () => {
    const bytes = laxTree([{ ...file, size: 1n << 40n, chunkCount: 0xffff_ffff }]);
    const started = performance.now();
    expectInvalid(() => decodeTree(bytes));
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('counts that do not match the entries', () => {
    const entries = [
      { ...file, name: 'a' },
      { ...file, name: 'b' },
    ];
    expect(decodeTree(laxTree(entries)).nodes).toHaveLength(2);
    expectInvalid(() => decodeTree(laxTree(entries, { count: 1 })));
    expectInvalid(() => decodeTree(laxTree(entries, { count: 3 })));
    expectInvalid(() => decodeTree(laxTree(entries, { count: 0 })));
  });

  it('trailing bytes', () => {
    const good = laxTree([file]);
    expect(decodeTree(good).nodes).toHaveLength(1);
    for (const extra of [[0], [1], [0xff, 0xff]]) {
      expectInvalid(() => decodeTree(new Uint8Array([...good, ...extra])));
    }
    expectInvalid(() => decodeTree(new Uint8Array([...laxTree([]), 0])));
  });

  it('empty and truncated input', () => {
    expectInvalid(() => decodeTree(new Uint8Array(0)));
    expectInvalid(() => decodeTree(Uint8Array.of(1)));
    expectInvalid(() => decodeTree(Uint8Array.of(1, 0, 0, 0)));
    expect(decodeTree(Uint8Array.of(1, 0, 0, 0, 0))).toStrictEqual({ nodes: [] });
    const good = laxTree([file, { name: 'g', kind: 3 }]);
    for (let keep = 0; keep < good.byteLength; keep++) {
      expectInvalid(() => decodeTree(good.subarray(0, keep)));
    }
  });

  it('file, mode and symlink field limits', () => {
    const bad: LaxEntry[] = [
      { ...file, mode: 0o10000 },
      { ...file, mode: 0o100644 },
      { ...file, size: 0n }, // one chunk but no bytes
      { ...file, size: 1n, chunkCount: 0, chunks: new Uint8Array(0) }, // bytes but no chunks
      { ...file, size: 1n, chunks: new Uint8Array(64) }, // more chunks than bytes
      { ...file, size: BigInt(Number.MAX_SAFE_INTEGER) + 1n },
      { ...file, size: (1n << 64n) - 1n },
      { name: 'l', kind: 3, target: '' },
      { name: 'l', kind: 3, target: 'a\0b' },
      { name: 'l', kind: 3, target: 'y'.repeat(MAX_SYMLINK_BYTES + 1) },
      { name: 'l', kind: 3, target: Uint8Array.of(0xed, 0xb0, 0x80) },
    ];
    for (const e of bad) expectInvalid(() => decodeTree(laxTree([e])));
    const good: LaxEntry[] = [
      { ...file, mode: 0o7777 },
      { ...file, size: 0n, chunkCount: 0, chunks: new Uint8Array(0) },
      { ...file, size: 2n, chunks: new Uint8Array(64) },
      { ...file, size: BigInt(Number.MAX_SAFE_INTEGER) },
      { name: 'l', kind: 3, target: 'y'.repeat(MAX_SYMLINK_BYTES) },
      { name: 'l', kind: 3, target: '/' },
    ];
    for (const e of good) {
      const bytes = laxTree([e]);
      expect(same(encodeTree(decodeTree(bytes)), bytes)).toBe(true);
    }
  });
});
