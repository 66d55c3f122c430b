import { isKinvaultError } from '@kinvault/protocol';
import { describe, expect, it } from 'vitest';
import { getBe16, getBe32, getLe16, getLe32, SECTOR } from './encoding.js';
import { MAX_EXTENT, planIso, type IsoOptions, type IsoPlan } from './plan.js';
import { readIso } from './read.js';
import type { IsoEntry } from './tree.js';
import { writeIso } from './write.js';

const options: IsoOptions = { volumeId: 'KV_TEST', created: new Date('2026-12-02T18:00:00Z') };
const mtime = new Date('2025-03-04T05:06:07Z');
const hex = (i: number): string => i.toString(16).padStart(64, '0');

/** The image's bytes before file data (the writer needs no source for them). */
async function metadata(plan: IsoPlan): Promise<Uint8Array> {
  const out = new Uint8Array(plan.dataOffset);
  let at = 0;
  const never = (path: string): AsyncIterable<Uint8Array> => {
    throw new Error(`source opened for ${path}`);
  };
  for await (const chunk of writeIso(plan, never)) {
    out.set(chunk, at);
    at += chunk.length;
    if (at === plan.dataOffset) break;
  }
  return out;
}

const reader =
  (bytes: Uint8Array) =>
  async (offset: number, length: number): Promise<Uint8Array> =>
    bytes.subarray(offset, offset + length);

interface RawRecord {
  at: number;
  length: number;
  lba: number;
  dataLength: number;
  flags: number;
  id: Uint8Array;
}

/** Every record of a directory extent, checking both-endian fields and sector boundaries. */
function rawRecords(image: Uint8Array, lba: number, size: number): RawRecord[] {
  const out: RawRecord[] = [];
  let at = lba * SECTOR;
  const end = at + size;
  while (at < end) {
    const length = image[at]!;
    if (length === 0) {
      at = (Math.floor(at / SECTOR) + 1) * SECTOR;
      continue;
    }
    expect((at % SECTOR) + length, `record at ${at} crosses a sector`).toBeLessThanOrEqual(SECTOR);
    expect(length % 2).toBe(0);
    expect(getBe32(image, at + 6)).toBe(getLe32(image, at + 2));
    expect(getBe32(image, at + 14)).toBe(getLe32(image, at + 10));
    const idLength = image[at + 32]!;
    out.push({
      at,
      length,
      lba: getLe32(image, at + 2),
      dataLength: getLe32(image, at + 10),
      flags: image[at + 25]!,
      id: image.subarray(at + 33, at + 33 + idLength),
    });
    at += length;
  }
  return out;
}

function descriptor(image: Uint8Array, lba: number): Uint8Array {
  return image.subarray(lba * SECTOR, (lba + 1) * SECTOR);
}

interface PathRecord {
  id: string;
  lba: number;
  parent: number;
}

function pathTable(image: Uint8Array, lba: number, size: number, bigEndian: boolean): PathRecord[] {
  const out: PathRecord[] = [];
  for (let at = lba * SECTOR; at < lba * SECTOR + size;) {
    const n = image[at]!;
    out.push({
      id: Buffer.from(image.subarray(at + 8, at + 8 + n)).toString('hex'),
      lba: bigEndian ? getBe32(image, at + 2) : getLe32(image, at + 2),
      parent: bigEndian ? getBe16(image, at + 6) : getLe16(image, at + 6),
    });
    at += 8 + n + (n % 2);
  }
  return out;
}

function manyEntries(): IsoEntry[] {
  const entries: IsoEntry[] = [];
  for (let i = 0; i < 600; i++) entries.push({ path: `packs/${hex(i)}`, size: 100 + i, mtime });
  for (let i = 0; i < 40; i++)
    entries.push({ path: `d${i % 7}/e${i % 3}/f${i}.txt`, size: i, mtime });
  entries.push({ path: 'empty/dir', directory: true });
  entries.push({ path: 'MANIFEST', size: 10, mtime });
  return entries;
}

describe('planIso layout', () => {
  it('writes the descriptor set: primary, Joliet (%/E), terminator, with a sane volume size', async () => {
    const plan = planIso(manyEntries(), options);
    const image = await metadata(plan);
    const [pvd, svd, end] = [16, 17, 18].map((lba) => descriptor(image, lba));
    expect([pvd![0], svd![0], end![0]]).toEqual([1, 2, 255]);
    for (const d of [pvd!, svd!, end!])
      expect(Buffer.from(d.subarray(1, 6)).toString()).toBe('CD001');
    expect(Buffer.from(svd!.subarray(88, 91)).toString()).toBe('%/E');
    for (const d of [pvd!, svd!]) {
      expect(getLe32(d, 80)).toBe(plan.size / SECTOR);
      expect(getBe32(d, 84)).toBe(plan.size / SECTOR);
      expect(getLe16(d, 128)).toBe(SECTOR);
      expect(getBe16(d, 130)).toBe(SECTOR);
      expect(d[881]).toBe(1);
    }
    expect(Buffer.from(pvd!.subarray(40, 72)).toString().trimEnd()).toBe('KV_TEST');
    expect(Buffer.from(pvd!.subarray(813, 829)).toString()).toBe('2026120218000000');
  });

  it('orders both path tables by level, parent number and identifier; M mirrors L', async () => {
    const plan = planIso(manyEntries(), options);
    const image = await metadata(plan);
    for (const lba of [16, 17]) {
      const d = descriptor(image, lba);
      const size = getLe32(d, 132);
      expect(getBe32(d, 136)).toBe(size);
      const l = pathTable(image, getLe32(d, 140), size, false);
      const m = pathTable(image, getBe32(d, 148), size, true);
      expect(m).toEqual(l);
      expect(l[0]).toEqual({ id: '00', lba: getLe32(d, 158), parent: 1 });
      const level = (i: number): number => (i === 0 ? 1 : level(l[i]!.parent - 1) + 1);
      for (let i = 1; i < l.length; i++) {
        const a = l[i - 1]!;
        const b = l[i]!;
        const key = (r: PathRecord, j: number): [number, number, string] => [
          level(j),
          r.parent,
          r.id,
        ];
        const [la, pa, ia] = key(a, i - 1);
        const [lb, pb, ib] = key(b, i);
        expect(
          la < lb || (la === lb && (pa < pb || (pa === pb && ia < ib))),
          `path table ${i}`,
        ).toBe(true);
      }
      expect(l).toHaveLength(1 + 1 + 7 + 7 * 3 + 2); // root, packs, d0-6, d*/e*, empty, empty/dir
    }
  });

  it('keeps every directory record inside one sector, in both trees, when a directory spans sectors', async () => {
    const plan = planIso(manyEntries(), options);
    const image = await metadata(plan);
    for (const lba of [16, 17]) {
      const d = descriptor(image, lba);
      const dirs = pathTable(image, getLe32(d, 140), getLe32(d, 132), false);
      let widest = 0;
      for (const dir of dirs) {
        const self = rawRecords(image, dir.lba, SECTOR)[0]!;
        expect(self.lba).toBe(dir.lba);
        widest = Math.max(widest, self.dataLength);
        expect(self.dataLength % SECTOR).toBe(0);
        rawRecords(image, dir.lba, self.dataLength);
      }
      expect(widest).toBeGreaterThan(4 * SECTOR); // 'packs' with 600 records
    }
  });

  it('starts the root’s "." record with SP and announces Rock Ridge with ER (in a continuation area)', async () => {
    const plan = planIso(manyEntries(), options);
    const image = await metadata(plan);
    const root = getLe32(descriptor(image, 16), 158);
    const dot = rawRecords(image, root, SECTOR)[0]!;
    const su = image.subarray(dot.at + 34, dot.at + dot.length);
    expect(Buffer.from(su.subarray(0, 2)).toString()).toBe('SP');
    expect([su[4], su[5]]).toEqual([0xbe, 0xef]);
    const ce = su.indexOf(0x43);
    expect(Buffer.from(su.subarray(ce, ce + 2)).toString()).toBe('CE');
    const area = getLe32(su, ce + 4) * SECTOR + getLe32(su, ce + 12);
    expect(Buffer.from(image.subarray(area, area + 2)).toString()).toBe('ER');
    expect(Buffer.from(image.subarray(area + 8, area + 17)).toString()).toBe('IEEE_1282');
  });

  it('puts file data after all metadata, in the order of the entries, each file from a sector start (empty files at 0)', () => {
    const entries = manyEntries();
    const plan = planIso(entries, options);
    const files = entries.filter((e) => e.directory !== true);
    expect(plan.files.map((f) => f.path)).toEqual(files.map((f) => f.path));
    let next = plan.dataOffset;
    expect(plan.files.some((f) => f.size === 0)).toBe(true);
    for (const f of plan.files) {
      if (f.size === 0) {
        expect(f.offset).toBe(0);
        continue;
      }
      expect(f.offset).toBe(next);
      next += Math.ceil(f.size / SECTOR) * SECTOR;
    }
    expect(plan.size).toBe(next);
    expect(plan.files.at(-1)!.path).toBe('MANIFEST');
  });

  it('lets a last MANIFEST change size without moving any other file', () => {
    const withManifest = (size: number): IsoPlan =>
      planIso([...manyEntries().slice(0, -1), { path: 'MANIFEST', size, mtime }], options);
    const a = withManifest(10);
    const b = withManifest(1_000_000);
    expect(b.files.slice(0, -1)).toEqual(a.files.slice(0, -1));
    expect(b.files.at(-1)!.offset).toBe(a.files.at(-1)!.offset);
  });

  it('records files above 4 GiB − 2048 in consecutive extents, flagged in both trees', async () => {
    const big = 10 * 2 ** 30 + 12345;
    const edge = MAX_EXTENT + 1;
    const plan = planIso(
      [
        { path: 'a', size: 5, mtime },
        { path: 'big/huge.bin', size: big, mtime },
        { path: 'big/edge.bin', size: edge, mtime },
        { path: 'big/fits.bin', size: MAX_EXTENT, mtime },
        { path: 'z', size: 7, mtime },
      ],
      options,
    );
    const huge = plan.files[1]!;
    expect(huge.extents.map((e) => e.length)).toEqual([
      MAX_EXTENT,
      MAX_EXTENT,
      big - 2 * MAX_EXTENT,
    ]);
    expect(plan.files[2]!.extents.map((e) => e.length)).toEqual([MAX_EXTENT, 1]);
    expect(plan.files[3]!.extents).toHaveLength(1);
    for (const f of plan.files) {
      let lba = f.offset / SECTOR;
      for (const e of f.extents) {
        expect(e.lba).toBe(lba);
        lba += e.length / SECTOR;
      }
    }
    expect(plan.files[4]!.offset).toBe(plan.files[3]!.offset + MAX_EXTENT);
    const image = await metadata(plan);
    for (const tree of ['rockridge', 'joliet', 'primary'] as const) {
      const { entries } = await readIso(reader(image), { tree });
      const files = entries
        .filter((e) => e.type === 'file')
        .sort((x, y) => x.extents[0]!.lba - y.extents[0]!.lba);
      expect(
        files.map((e) => e.size),
        tree,
      ).toEqual(plan.files.map((f) => f.size));
      expect(files.map((e) => e.extents)).toEqual(plan.files.map((f) => f.extents));
    }
    // The records of one file are consecutive, 0x80 on all but the last.
    const bigDir = (await readIso(reader(image))).entries.find((e) => e.path === 'big')!;
    const records = rawRecords(image, bigDir.extents[0]!.lba, bigDir.size).slice(2);
    expect(records.map((r) => r.flags)).toEqual([0x80, 0, 0, 0x80, 0x80, 0]);
  });

  it('refuses directories deeper than 8 levels, naming the path; 8 components for a file are fine', () => {
    const ok = 'a/b/c/d/e/f/g/file';
    expect(() => planIso([{ path: ok, size: 1, mtime }], options)).not.toThrow();
    const deep = 'a/b/c/d/e/f/g/h/file';
    let caught: unknown;
    try {
      planIso([{ path: deep, size: 1, mtime }], options);
    } catch (error) {
      caught = error;
    }
    expect(isKinvaultError(caught, 'INVALID_ARGUMENT')).toBe(true);
    expect((caught as Error).message).toContain('a/b/c/d/e/f/g/h');
    expect(() => planIso([{ path: 'a/b/c/d/e/f/g/h', directory: true }], options)).toThrow(
      /a\/b\/c\/d\/e\/f\/g\/h/,
    );
  });

  it('refuses bad entries with INVALID_ARGUMENT naming the path', () => {
    const cases: [IsoEntry[], RegExp][] = [
      [[{ path: '/abs', size: 1, mtime }], /\/abs/],
      [[{ path: 'a//b', size: 1, mtime }], /a\/\/b/],
      [[{ path: 'a/../b', size: 1, mtime }], /a\/\.\.\/b/],
      [[{ path: 'x', size: -1, mtime }], /x: the size/],
      [[{ path: 'x', size: 1.5, mtime }], /x: the size/],
      [[{ path: 'x', size: 1, mtime: new Date(NaN) }], /x: the time/],
      [[{ path: `${'n'.repeat(256)}`, size: 1, mtime }], /255 UTF-8 bytes/],
      [
        [
          { path: 'x', size: 1, mtime },
          { path: 'x', size: 2, mtime },
        ],
        /x is given twice/,
      ],
      [
        [
          { path: 'x', size: 1, mtime },
          { path: 'x/y', size: 2, mtime },
        ],
        /x is a file and also a directory/,
      ],
      [
        [
          { path: 'x/y', size: 1, mtime },
          { path: 'x', size: 2, mtime },
        ],
        /x is a directory and also a file/,
      ],
      [[{ path: 'bad\ud800', size: 1, mtime }], /well-formed/],
    ];
    for (const [entries, message] of cases) {
      let caught: unknown;
      try {
        planIso(entries, options);
      } catch (error) {
        caught = error;
      }
      expect(isKinvaultError(caught, 'INVALID_ARGUMENT'), String(message)).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });
});
