/**
 * Oracle tests: images we write, read by 7-Zip, bsdtar and xorriso. Each reader must list
 * every file and directory and extract every file byte for byte; bsdtar and xorriso (which
 * read Rock Ridge) must restore modes and mtimes; 7-Zip reads the Joliet tree (its names,
 * the records' mtimes); xorriso's report_lba must give exactly our planned extents.
 */
import fc from 'fast-check';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECTOR } from './encoding.js';
import { planIso, type IsoOptions, type IsoPlan } from './plan.js';
import { readIso, type IsoListedEntry } from './read.js';
import { patternSha256, patternSource, type PatternFile } from './testing/pattern.js';
import {
  extract7z,
  extractBsdtar,
  extractXorriso,
  fileReader,
  hashTree,
  list7z,
  listBsdtar,
  listXorriso,
  requireTool,
  writeImage,
  xorrisoReportLba,
  type Extracted,
} from './testing/readers.js';
import type { IsoEntry } from './tree.js';

const options: IsoOptions = {
  volumeId: 'KINVAULT_ORACLE',
  created: new Date('2026-12-02T18:00:00Z'),
};

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kinvault-iso-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Volume {
  entries: IsoEntry[];
  files: PatternFile[];
}

interface Written {
  image: string;
  plan: IsoPlan;
  /** Expected SHA-256 by real path. */
  hashes: Map<string, string>;
  rockRidge: IsoListedEntry[];
  joliet: IsoListedEntry[];
}

let counter = 0;
async function write(volume: Volume): Promise<Written> {
  const plan = planIso(volume.entries, options);
  const image = join(work, `v${counter++}.iso`);
  await writeImage(plan, patternSource(volume.files), image);
  const hashes = new Map<string, string>();
  for (const f of volume.files) hashes.set(f.path, await patternSha256(f.seed, f.size));
  const { read, close } = await fileReader(image);
  try {
    const rockRidge = (await readIso(read)).entries;
    const joliet = (await readIso(read, { tree: 'joliet' })).entries;
    return { image, plan, hashes, rockRidge, joliet };
  } finally {
    await close();
  }
}

/** Every directory implied by or given in the entries, and every file. */
function expectedPaths(entries: readonly IsoEntry[]): string[] {
  const out = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join('/'));
    out.add(e.path);
  }
  return [...out].sort();
}

const sorted = (paths: Iterable<string>): string[] => [...paths].sort();

/** Checks what a Rock Ridge reader extracted: bytes, and modes and mtimes of files. */
function checkRockRidgeExtraction(
  w: Written,
  volume: Volume,
  got: Map<string, Extracted>,
  reader: string,
): void {
  expect(sorted(got.keys()), reader).toEqual(expectedPaths(volume.entries));
  for (const e of volume.entries) {
    const x = got.get(e.path)!;
    if (e.directory === true) {
      expect(x.directory, `${reader} ${e.path}`).toBe(true);
      if (e.mode !== undefined) expect(x.mode, `${reader} mode of ${e.path}`).toBe(e.mode);
      continue;
    }
    expect(x.sha256, `${reader} bytes of ${e.path}`).toBe(w.hashes.get(e.path));
    expect(x.mode, `${reader} mode of ${e.path}`).toBe(e.mode ?? 0o644);
    expect(x.mtimeMs, `${reader} mtime of ${e.path}`).toBe(
      Math.floor(e.mtime.getTime() / 1000) * 1000,
    );
  }
}

/** 7-Zip reads Joliet: match its paths to ours through the extents, then the bytes. */
function checkJolietExtraction(w: Written, volume: Volume, got: Map<string, Extracted>): void {
  expect(sorted(got.keys()), '7zz').toEqual(sorted(w.joliet.map((e) => e.path)));
  const realByLba = new Map(
    w.rockRidge.filter((e) => e.size > 0).map((e) => [e.extents[0]!.lba, e.path]),
  );
  const mtimes = new Map(volume.entries.map((e) => [e.path, e.mtime]));
  for (const e of w.joliet) {
    if (e.type === 'directory' || e.size === 0) continue;
    const real = realByLba.get(e.extents[0]!.lba)!;
    const x = got.get(e.path)!;
    expect(x.sha256, `7zz bytes of ${e.path} (${real})`).toBe(w.hashes.get(real));
    expect(x.mtimeMs, `7zz mtime of ${e.path}`).toBe(
      Math.floor(mtimes.get(real)!.getTime() / 1000) * 1000,
    );
  }
}

async function checkAllReaders(volume: Volume): Promise<void> {
  const w = await write(volume);
  const all = expectedPaths(volume.entries);

  // Listings.
  expect(sorted((await listBsdtar(w.image)).map((l) => l.path)), 'bsdtar -t').toEqual(all);
  expect(sorted((await listXorriso(w.image)).map((l) => l.path)), 'xorriso -find').toEqual(all);
  expect(sorted((await list7z(w.image)).map((l) => l.path)), '7zz l').toEqual(
    sorted(w.joliet.map((e) => e.path)),
  );
  expect(sorted(w.rockRidge.map((e) => e.path)), 'readIso').toEqual(all);

  // Offsets: xorriso's report of every file's extents is our plan.
  const reported = await xorrisoReportLba(w.image);
  for (const f of w.plan.files) {
    const extents = reported.get(f.path);
    expect(extents, `report_lba of ${f.path}`).toBeDefined();
    expect(
      extents!.map((x) => ({ lba: x.lba, length: x.length })),
      `extents of ${f.path}`,
    ).toEqual(f.extents);
    if (f.size > 0) expect(extents![0]!.lba * SECTOR).toBe(f.offset);
  }

  // Extraction, one reader at a time (disk).
  for (const [reader, extract] of [
    ['bsdtar', extractBsdtar],
    ['xorriso', extractXorriso],
    ['7zz', extract7z],
  ] as const) {
    const dir = join(work, `${reader}-${counter}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    await extract(w.image, dir);
    const got = await hashTree(dir);
    if (reader === '7zz') checkJolietExtraction(w, volume, got);
    else checkRockRidgeExtraction(w, volume, got, reader);
    await rm(dir, { recursive: true, force: true });
  }
  await rm(w.image);
}

function volumeOf(
  list: { path: string; size: number; mtime?: Date; mode?: number }[],
  dirs: IsoEntry[] = [],
): Volume {
  const files = list.map((f, i) => ({ path: f.path, size: f.size, seed: i + 1 }));
  const entries: IsoEntry[] = [
    ...dirs,
    ...list.map((f) => ({
      path: f.path,
      size: f.size,
      mtime: f.mtime ?? new Date('2024-01-02T03:04:05Z'),
      ...(f.mode === undefined ? {} : { mode: f.mode }),
    })),
  ];
  return { entries, files };
}

describe('7-Zip, bsdtar and xorriso read our images', () => {
  it('finds the readers (run scripts/install-test-tools.sh if this fails)', () => {
    expect(requireTool('7zz', '7z')).toMatch(/7z/);
    expect(requireTool('bsdtar')).toBe('bsdtar');
    expect(requireTool('xorriso')).toBe('xorriso');
  });

  it('odd names, a wide directory over several sectors, a deep path, modes and mtimes', async () => {
    const hex = (i: number): string =>
      (i * 2654435761).toString(16).padStart(8, '0').repeat(8).slice(0, 64);
    const odd = [
      'with space.txt',
      'Ünïcödé – ñ.txt',
      'emoji 😀 and 𝄞.bin',
      `${'long name '.repeat(12)}.pack`,
      `${'é'.repeat(120)}.bin`, // 244 UTF-8 bytes: NM in a continuation area
      'Same.TXT',
      'same.txt',
      'SAME.txt',
      "it's #1 (100%).txt",
      'semi;colon:star*?.txt',
      'back\\slash.txt',
      '.hidden',
      'no_extension',
      'trailing.dot.',
    ];
    const list = [
      { path: 'README.txt', size: 1234, mode: 0o644 },
      ...odd.map((name, i) => ({
        path: `odd/${name}`,
        size: 10 + i * 100,
        mode: [0o600, 0o640, 0o755, 0o444][i % 4]!,
        mtime: new Date(Date.UTC(1990 + i * 9, i % 12, 1 + i, i, 2 * i, 3 * i)),
      })),
      ...Array.from({ length: 300 }, (_, i) => ({
        path: `packs/ab/${hex(i + 1)}`,
        size: (i * 977) % 5000,
      })),
      { path: 'a/b/c/d/e/f/g/deepest.txt', size: 7 },
      { path: 'MANIFEST', size: 321 },
    ];
    await checkAllReaders(
      volumeOf(list, [
        { path: 'empty', directory: true, mode: 0o700 },
        { path: 'a/b', directory: true, mode: 0o750, mtime: new Date('2000-01-01T00:00:00Z') },
      ]),
    );
  });

  it('property: random trees of files (sizes 0 to 70 kB, up to 8 levels)', async () => {
    const component = fc
      .array(fc.constantFrom('a', 'B', 'z', '0', ' ', '.', '_', '-', 'é', '😀'), {
        minLength: 1,
        maxLength: 40,
      })
      .map((chars) => chars.join(''))
      .filter((s) => s !== '.' && s !== '..');
    const file = fc.record({
      path: fc.array(component, { minLength: 1, maxLength: 8 }).map((parts) => parts.join('/')),
      size: fc.oneof(fc.constantFrom(0, 1, 2047, 2048, 2049), fc.integer({ min: 0, max: 70_000 })),
      mode: fc.constantFrom(0o600, 0o644, 0o755),
      mtime: fc.date({
        min: new Date('1971-01-01T00:00:00Z'),
        max: new Date('2100-01-01T00:00:00Z'),
        noInvalidDate: true,
      }),
    });
    const tree = fc
      .uniqueArray(file, { minLength: 1, maxLength: 25, selector: (f) => f.path })
      .filter((files) => {
        // A path must not be a file and a directory at once.
        const paths = new Set(files.map((f) => f.path));
        return files.every(
          (f) =>
            !f.path
              .split('/')
              .some((_, i, parts) => i > 0 && paths.has(parts.slice(0, i).join('/'))),
        );
      });
    await fc.assert(
      fc.asyncProperty(tree, async (files) => {
        await checkAllReaders(volumeOf(files));
      }),
      { numRuns: 5, seed: 20261202 },
    );
  });
});
