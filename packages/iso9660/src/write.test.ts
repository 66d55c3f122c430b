import { isKinvaultError } from '@kinvault/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SECTOR } from './encoding.js';
import { planIso, type IsoOptions, type IsoPlan } from './plan.js';
import { readIso } from './read.js';
import { patternBytes, patternSource, sha256, type PatternFile } from './testing/pattern.js';
import type { IsoEntry } from './tree.js';
import { writeIso, type IsoSource } from './write.js';

const options: IsoOptions = { volumeId: 'KV_WRITE', created: new Date('2026-12-02T18:00:00Z') };
const mtime = new Date('2025-03-04T05:06:07Z');

const sizes = [0, 1, 2047, 2048, 2049, (1 << 20) + 3, 3 * SECTOR, 100_000, 5];
const files: PatternFile[] = sizes.map((size, i) => ({
  path: i === sizes.length - 1 ? 'MANIFEST' : `packs/${i % 3}/${String(i).repeat(64).slice(0, 64)}`,
  size,
  seed: i + 1,
}));
const entries: IsoEntry[] = [
  ...files.map((f, i) => ({ path: f.path, size: f.size, mtime, mode: 0o600 + i })),
  { path: 'empty', directory: true, mode: 0o700, mtime },
];

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** A source that records where each file was opened. */
function recording(source: IsoSource): { source: IsoSource; opened: [string, number][] } {
  const opened: [string, number][] = [];
  return {
    opened,
    source: (path, start) => {
      opened.push([path, start]);
      return source(path, start);
    },
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('writeIso', () => {
  it('writes exactly plan.size bytes with each file’s bytes at its planned offset, zero-padded', async () => {
    const plan = planIso(entries, options);
    const image = await collect(writeIso(plan, patternSource(files)));
    expect(image.length).toBe(plan.size);
    for (const [i, f] of plan.files.entries()) {
      if (f.size === 0) continue;
      const expected = sha256([await collect(patternBytes(files[i]!.seed, f.size))]);
      expect(sha256([image.subarray(f.offset, f.offset + f.size)]), f.path).toBe(expected);
      const end = f.offset + Math.ceil(f.size / SECTOR) * SECTOR;
      expect(image.subarray(f.offset + f.size, end).every((b) => b === 0)).toBe(true);
    }
  });

  it('is deterministic: the same entries give the same bytes', async () => {
    const a = await collect(writeIso(planIso(entries, options), patternSource(files)));
    const b = await collect(writeIso(planIso(entries, options), patternSource(files)));
    expect(sha256([a])).toBe(sha256([b]));
    const reordered = planIso([entries.at(-1)!, ...entries.slice(0, -1)], options);
    expect(sha256([await collect(writeIso(reordered, patternSource(files)))])).toBe(sha256([a]));
  });

  it('from any offset yields exactly the rest of the full image, opening sources only from there', async () => {
    const plan = planIso(entries, options);
    const full = await collect(writeIso(plan, patternSource(files)));
    const offsets = fc.sample(fc.integer({ min: 0, max: plan.size }), { numRuns: 40, seed: 42 });
    const edges = [0, 1, plan.dataOffset - 1, plan.dataOffset, plan.size - 1, plan.size];
    for (const f of plan.files) edges.push(f.offset, f.offset + f.size, f.offset + f.size + 1);
    for (const from of [...offsets, ...edges.filter((e) => e >= 0 && e <= plan.size)]) {
      const { source, opened } = recording(patternSource(files));
      const rest = await collect(writeIso(plan, source, { from }));
      expect(rest.equals(full.subarray(from)), `from ${from}`).toBe(true);
      const needed = plan.files.filter((f) => f.size > 0 && f.offset + f.size > from);
      expect(opened.map(([path]) => path)).toEqual(needed.map((f) => f.path));
      if (needed[0]) expect(opened[0]![1]).toBe(Math.max(0, from - needed[0].offset));
      for (const [, start] of opened.slice(1)) expect(start).toBe(0);
    }
  });

  it('passes the sources’ chunks through as they are (no copy)', async () => {
    const chunks: Uint8Array[] = [new Uint8Array(3000).fill(1), new Uint8Array(5000).fill(2)];
    const plan = planIso([{ path: 'f', size: 8000, mtime }], options);
    const out: Uint8Array[] = [];
    for await (const c of writeIso(plan, async function* () {
      yield* chunks;
    }))
      out.push(c);
    expect(out.filter((c) => chunks.includes(c))).toHaveLength(2);
    expect(out.at(-1)!.length).toBe(4 * SECTOR - 8000);
  });

  it('fails, naming the file, when a source gives more or fewer bytes than planned', async () => {
    const plan = planIso(
      [
        { path: 'ok', size: 10, mtime },
        { path: 'dir/changed.bin', size: 10, mtime },
      ],
      options,
    );
    for (const given of [9, 11, 0]) {
      const source: IsoSource = async function* (path) {
        yield new Uint8Array(path === 'ok' ? 10 : given);
      };
      const error = await failure(collect(writeIso(plan, source)));
      expect(isKinvaultError(error, 'CONFLICT'), String(given)).toBe(true);
      expect((error as Error).message).toContain('dir/changed.bin');
    }
    // From byte 5 of the file on, 5 bytes are due: 6 are too many.
    const short: IsoSource = async function* () {
      yield new Uint8Array(6);
    };
    const error = await failure(
      collect(writeIso(plan, short, { from: plan.files[1]!.offset + 5 })),
    );
    expect((error as Error).message).toMatch(/dir\/changed\.bin gave more than 10 bytes/);
  });

  it('refuses a from outside the image and a plan it did not make', async () => {
    const plan = planIso(entries, options);
    for (const from of [-1, plan.size + 1, 1.5]) {
      const error = await failure(collect(writeIso(plan, patternSource(files), { from })));
      expect(isKinvaultError(error, 'INVALID_ARGUMENT'), String(from)).toBe(true);
    }
    expect(await collect(writeIso(plan, patternSource(files), { from: plan.size }))).toHaveLength(
      0,
    );
    const copy: IsoPlan = structuredClone(plan);
    expect(isKinvaultError(await failure(collect(writeIso(copy, patternSource(files)))))).toBe(
      true,
    );
  });

  it('reads back with readIso: Rock Ridge names, modes and mtimes; Joliet and primary names', async () => {
    const odd = ['with space.txt', 'é😀.bin', `${'long'.repeat(30)}.dat`, 'Same.TXT', 'same.txt'];
    const plan = planIso(
      [
        ...odd.map((name, i) => ({ path: `odd/${name}`, size: i * 1000, mtime, mode: 0o640 })),
        { path: 'empty', directory: true, mode: 0o700, mtime },
      ],
      options,
    );
    const image = await collect(
      writeIso(plan, async function* (_path, start) {
        yield new Uint8Array(plan.files.find((f) => f.path === _path)!.size - start);
      }),
    );
    const read = async (offset: number, length: number): Promise<Uint8Array> =>
      image.subarray(offset, offset + length);
    const rr = await readIso(read);
    expect(rr.tree).toBe('rockridge');
    expect(rr.volumeSectors * SECTOR).toBe(plan.size);
    expect(rr.entries.map((e) => e.path).sort()).toEqual(
      ['empty', 'odd', ...odd.map((n) => `odd/${n}`)].sort(),
    );
    for (const e of rr.entries) {
      expect(e.mode).toBe(e.path === 'empty' ? 0o700 : e.type === 'directory' ? 0o755 : 0o640);
      if (e.path !== 'odd') expect(e.mtime.toISOString()).toBe(mtime.toISOString());
    }
    const joliet = await readIso(read, { tree: 'joliet' });
    expect(joliet.entries.map((e) => e.path).sort()).toEqual(
      [
        'empty',
        'odd',
        'odd/with space.txt',
        'odd/é_.bin',
        `odd/${'long'.repeat(15)}.dat`,
        'odd/Same.TXT',
        'odd/same.txt',
      ].sort(),
    );
    const primary = await readIso(read, { tree: 'primary' });
    expect(primary.entries.map((e) => e.path)).toContain('ODD/WITH_SPACE.TXT');
    expect(new Set(primary.entries.map((e) => e.path)).size).toBe(primary.entries.length);
  });
});
