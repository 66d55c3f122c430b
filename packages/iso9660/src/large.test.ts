/**
 * One image above 4 GiB, read by all three readers: a file of 4 GiB + 3 MiB in two
 * extents and files whose data lies past the 4 GiB offset. The bytes come from a pattern
 * source (no disk); the image is one 4 GiB temporary file, deleted at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SECTOR } from './encoding.js';
import { MAX_EXTENT, planIso } from './plan.js';
import { readIso } from './read.js';
import { patternSource, type PatternFile } from './testing/pattern.js';
import {
  fileReader,
  hashStdout,
  requireTool,
  writeImage,
  xorrisoReportLba,
} from './testing/readers.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kinvault-iso-large-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

it('writes a file above 4 GiB in two extents and files past 4 GiB that 7-Zip, bsdtar and xorriso read', async () => {
  const big = 2 ** 32 + 3 * 2 ** 20 + 12345;
  const files: PatternFile[] = [
    { path: 'README.txt', size: 1000, seed: 1 },
    { path: 'packs/big.pack', size: big, seed: 2 },
    { path: 'packs/after.pack', size: 70_000, seed: 3 },
    { path: 'MANIFEST', size: 300, seed: 4 },
  ];
  const mtime = new Date('2026-11-30T12:00:00Z');
  const plan = planIso(
    files.map((f) => ({ path: f.path, size: f.size, mtime, mode: 0o640 })),
    { volumeId: 'KINVAULT_LARGE', created: new Date('2026-12-02T18:00:00Z') },
  );
  expect(plan.files[1]!.extents.map((e) => e.length)).toEqual([MAX_EXTENT, big - MAX_EXTENT]);
  expect(plan.files[2]!.offset).toBeGreaterThan(2 ** 32);

  const image = join(work, 'large.iso');
  const expected = new Map<string, string>();
  await writeImage(plan, patternSource(files, expected), image);
  expect(expected.size).toBe(files.length);

  // Extents: xorriso's report and our reader agree with the plan.
  const reported = await xorrisoReportLba(image);
  const { read, close } = await fileReader(image);
  const listed = (await readIso(read)).entries;
  await close();
  for (const f of plan.files) {
    expect(
      reported.get(f.path)!.map((x) => ({ lba: x.lba, length: x.length })),
      f.path,
    ).toEqual(f.extents);
    const entry = listed.find((e) => e.path === f.path)!;
    expect(entry.extents, f.path).toEqual(f.extents);
    expect(entry.mode).toBe(0o640);
    expect(f.extents[0]!.lba * SECTOR).toBe(f.offset);
  }

  // Bytes of every file through each reader's extraction to stdout, the readers side by
  // side (every name here is the same in Joliet, which 7-Zip reads).
  const sevenZip = requireTool('7zz', '7z');
  const bsdtar = requireTool('bsdtar');
  const xorriso = requireTool('xorriso');
  const extractors: [string, (path: string) => [string, string[]]][] = [
    ['7zz', (path) => [sevenZip, ['x', '-so', image, path]]],
    ['bsdtar', (path) => [bsdtar, ['-xOf', image, path]]],
    [
      'xorriso',
      (path) => [
        xorriso,
        ['-osirrox', 'on', '-indev', image, '-concat', 'append', '-', `/${path}`, '--'],
      ],
    ],
  ];
  await Promise.all(
    extractors.map(async ([reader, command]) => {
      for (const f of files) {
        const got = await hashStdout(...command(f.path));
        expect(got, `${reader} ${f.path}`).toEqual({ sha256: expected.get(f.path), bytes: f.size });
      }
    }),
  );
  await rm(image);
}, 240_000);
