/**
 * End to end: the built kinvault agent against the built kinvaultd (embedded
 * PostgreSQL, HTTPS), as a user runs them.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, symlink, utimes, writeFile, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareTrees } from '../packages/format/demo/verify.js';
import {
  initCoordinator,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
  removeTempDirs,
} from './support/kinvaultd.js';
import { enrollDevice, lastJson, runKinvault } from './support/kinvault.js';

interface Summary {
  snapshot: string;
  files_seen: number;
  files_changed: number;
  bytes_read: number;
  bytes_uploaded: number;
  partial: boolean;
  errors: { path: string; message: string }[];
}

async function photoTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'Photos', '2024', 'Summer'), { recursive: true });
  await mkdir(join(dir, 'Photos', 'Empty album'), { recursive: true });
  await mkdir(join(dir, 'Docs'), { recursive: true });
  for (let i = 0; i < 6; i++)
    await writeFile(
      join(dir, 'Photos', '2024', 'Summer', `IMG_${i}.jpg`),
      randomBytes(1_500_000 + i * 300_000),
    );
  await writeFile(join(dir, 'Photos', 'video.mp4'), randomBytes(9_000_000));
  for (let i = 0; i < 50; i++)
    await writeFile(join(dir, 'Docs', `note ${i}.txt`), `note ${i}\n`.repeat(i));
  await writeFile(join(dir, 'Docs', 'empty.txt'), '');
  await writeFile(join(dir, 'Docs', 'run.sh'), '#!/bin/sh\n', { mode: 0o750 });
  await chmod(join(dir, 'Docs', 'run.sh'), 0o750);
  await writeFile(join(dir, '.DS_Store'), 'junk');
  await symlink('Photos/video.mp4', join(dir, 'latest video'));
  await utimes(
    join(dir, 'Docs', 'note 1.txt'),
    new Date('2003-04-05T06:07:08.123Z'),
    new Date('2003-04-05T06:07:08.123Z'),
  );
}

describe('kinvault agent (built commands)', () => {
  /** The names `kinvault ls latest` shows in SRC/Photos. */
  const photosListing = async (src: string) =>
    (
      JSON.parse(
        (await runKinvault(anna, ['ls', 'latest', `${src.slice(1)}/Photos`, '--json'])).stdout,
      ) as { name: string }[]
    ).map((e) => e.name);

  let c: Coordinator;
  let work: string;
  let anna: string;

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator();
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-agent-e2e-');
    anna = join(work, 'anna-state');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('backs up a tree and restores it identical: bytes, modes, mtimes, links, empty folders', async () => {
    const src = join(work, 'src');
    await photoTree(src);
    const first = await runKinvault(anna, ['backup', src, '--json']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const a = lastJson<Summary>(first.stdout);
    expect(a).toMatchObject({ files_seen: 59, files_changed: 59, partial: false });
    expect(a.bytes_uploaded).toBeGreaterThan(a.bytes_read);

    // No file data is sent again. Directory metadata may be: a snapshot records the
    // backed-up folder's ancestors too (/tmp, the test's folder), and other tests add and
    // remove entries in /tmp meanwhile, which gives the root a new tree (about 220 bytes).
    const METADATA_ONLY = 4096;
    const again = lastJson<Summary>((await runKinvault(anna, ['backup', src, '--json'])).stdout);
    expect(again).toMatchObject({ files_seen: 59, files_changed: 0, bytes_read: 0 });
    expect(again.bytes_uploaded).toBeLessThan(METADATA_ONLY);
    // --full reads every file again; everything is already stored, so no data is sent.
    const full = lastJson<Summary>(
      (await runKinvault(anna, ['backup', src, '--full', '--json'])).stdout,
    );
    expect(full).toMatchObject({ files_seen: 59, files_changed: 59 });
    expect(full.bytes_uploaded).toBeLessThan(METADATA_ONLY);
    expect(full.bytes_read).toBe(a.bytes_read);

    const target = join(work, 'restored');
    const r = await runKinvault(anna, [
      'restore',
      again.snapshot.slice(0, 10),
      '--target',
      target,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(lastJson(r.stdout)).toMatchObject({ files_restored: 58 + 1 });
    const restoredSrc = join(target, src);
    // .DS_Store is excluded by default; everything else must be identical.
    const problems = await compareTrees(src, restoredSrc);
    expect(problems).toEqual(['.DS_Store: missing from the restore']);

    // Re-running skips what is already there and correct, and repairs what is not.
    await writeFile(join(restoredSrc, 'Docs', 'note 3.txt'), 'tampered');
    const re = lastJson(
      (await runKinvault(anna, ['restore', 'latest', '--target', target, '--json'])).stdout,
    );
    expect(re).toMatchObject({ files_restored: 1, files_skipped: 58 });
    expect(await readFile(join(restoredSrc, 'Docs', 'note 3.txt'), 'utf8')).toBe(
      'note 3\n'.repeat(3),
    );

    // Part of a snapshot, and listing.
    const part = join(work, 'part');
    await runKinvault(anna, [
      'restore',
      'latest',
      '--target',
      part,
      '--include',
      `${src.slice(1)}/Docs`,
    ]);
    expect(await compareTrees(join(src, 'Docs'), join(part, src, 'Docs'))).toEqual([]);
    expect(await photosListing(src)).toEqual(['2024', 'Empty album', 'video.mp4']);
  });

  it('a second device with the same photos uploads almost nothing', async () => {
    const src = join(work, 'src');
    const bob = join(work, 'bob-state');
    await enrollDevice(c.dataDir, 'bob-laptop', bob);
    const copy = join(work, 'bobs-copy');
    execFileSync('cp', ['-a', src, copy]);
    const b = lastJson<Summary>((await runKinvault(bob, ['backup', copy, '--json'])).stdout);
    expect(b.files_changed).toBe(59);
    // Only trees and a pack header or two are new: the file contents dedupe.
    expect(b.bytes_uploaded).toBeLessThan(100_000);
    const snaps = JSON.parse((await runKinvault(bob, ['snapshots', '--json'])).stdout) as {
      id: string;
      device: string;
    }[];
    expect(new Set(snaps.map((s) => s.device))).toEqual(new Set(['anna-laptop', 'bob-laptop']));
    // Bob restores Anna's snapshot: none of its trees or pack headers are cached on his
    // side, so they all come from the coordinator.
    const annas = snaps.filter((s) => s.device === 'anna-laptop').at(-1)!;
    const target = join(work, 'bob-restores-anna');
    const r = await runKinvault(bob, ['restore', annas.id, '--target', target]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await compareTrees(src, join(target, src))).toEqual([
      '.DS_Store: missing from the restore',
    ]);
    const status = JSON.parse(
      (await runKinvaultd(['status', '--data-dir', c.dataDir, '--json'])).stdout,
    ) as {
      devices: { name: string; lastBackupAt: string | null }[];
      dedupRatio: number;
    };
    expect(status.devices.map((d) => d.name)).toEqual(['anna-laptop', 'bob-laptop']);
    expect(status.devices.every((d) => d.lastBackupAt !== null)).toBe(true);
    expect(status.dedupRatio).toBeGreaterThan(1.9);
  });

  // After the two-device test: its 60 MiB of unique data would lower the household's
  // deduplication ratio that test checks.
  it('restores files spread over several packs, and replaces a changed copy whole', async () => {
    const src = join(work, 'spread');
    await mkdir(src, { recursive: true });
    // Files read at the same time interleave their chunks in packs of about 16 MiB.
    const big = ['a.mov', 'b.mov', 'c.mov'];
    for (const name of big) await writeFile(join(src, name), randomBytes(20 * 1024 * 1024));
    await writeFile(join(src, 'small.txt'), 'small\n');
    const b = await runKinvault(anna, ['backup', src, '--json']);
    expect(b.code).toBe(0);
    const made = lastJson<Summary & { packs_uploaded: number }>(b.stdout);
    expect(made.packs_uploaded).toBeGreaterThanOrEqual(4);
    const target = join(work, 'spread-restore');
    const r = await runKinvault(anna, ['restore', made.snapshot, '--target', target, '--json']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    // Packs are written side by side: every byte counted once.
    expect(lastJson(r.stdout)).toMatchObject({
      files_restored: 4,
      bytes_written: 3 * 20 * 1024 * 1024 + 6,
    });
    expect(await compareTrees(src, join(target, src))).toEqual([]);

    await writeFile(join(target, src, 'b.mov'), 'changed');
    const again = await runKinvault(anna, ['restore', made.snapshot, '--target', target, '--json']);
    expect(lastJson(again.stdout)).toMatchObject({
      files_restored: 1,
      files_skipped: 3,
      bytes_written: 20 * 1024 * 1024,
    });
    expect(await compareTrees(src, join(target, src))).toEqual([]);
    // No temporary file is left behind.
    expect((await readdir(join(target, src))).sort()).toEqual([...big, 'small.txt']);
  });

  it('names what it could not back up, commits a partial snapshot and exits non-zero', async () => {
    const src = join(work, 'partial');
    await mkdir(src);
    await writeFile(join(src, 'fine.txt'), 'fine');
    execFileSync('mkfifo', [join(src, 'a pipe')]);
    const r = await runKinvault(anna, ['backup', src, '--json']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/could not back up .*a pipe: not a file/);
    const s = lastJson<Summary>(r.stdout);
    expect(s.partial).toBe(true);
    const snaps = JSON.parse((await runKinvault(anna, ['snapshots', '--json'])).stdout) as {
      id: string;
      partial: boolean;
    }[];
    expect(snaps.find((x) => x.id === s.snapshot)?.partial).toBe(true);
  });

  it('honours --exclude, .kinvaultignore files and the default junk list', async () => {
    const src = join(work, 'excludes');
    await mkdir(join(src, 'keep', 'cache'), { recursive: true });
    await mkdir(join(src, 'build'), { recursive: true });
    await writeFile(join(src, 'keep', 'photo.jpg'), 'photo');
    await writeFile(join(src, 'keep', 'cache', 'thumb.db'), 'cache');
    await writeFile(join(src, 'keep', 'draft.tmp'), 'tmp');
    await writeFile(join(src, 'keep', 'Thumbs.db'), 'junk');
    await writeFile(join(src, 'build', 'out.o'), 'obj');
    await writeFile(join(src, 'keep', '.kinvaultignore'), '# local rules\ncache\n');
    const r = await runKinvault(anna, [
      'backup',
      src,
      '--exclude',
      '*.tmp',
      '--exclude',
      `${src}/build`,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const ls = JSON.parse(
      (await runKinvault(anna, ['ls', 'latest', `${src.slice(1)}/keep`, '--json'])).stdout,
    ) as { name: string }[];
    expect(ls.map((e) => e.name)).toEqual(['.kinvaultignore', 'photo.jpg']);
    const top = JSON.parse(
      (await runKinvault(anna, ['ls', 'latest', src.slice(1), '--json'])).stdout,
    ) as { name: string }[];
    expect(top.map((e) => e.name)).toEqual(['keep']);
  });

  it('ignores a damaged local tree cache (trees are checked against their ids)', async () => {
    const src = join(work, 'src');
    const cache = join(anna, 'cache', 'trees');
    for (const f of await readdir(cache)) await writeFile(join(cache, f), 'not a tree');
    const again = await runKinvault(anna, ['backup', src, '--json']);
    expect(again.code).toBe(0);
    expect(lastJson<Summary>(again.stdout)).toMatchObject({ files_changed: 0, bytes_read: 0 });
    expect(await photosListing(src)).toEqual(['2024', 'Empty album', 'video.mp4']);
  });

  it('drops damaged spooled packs (a machine crash can leave them short) and packs their blobs again', async () => {
    const src = join(work, 'src');
    await writeFile(join(src, 'new-after-crash.txt'), 'written just before the crash\n');
    const spool = join(anna, 'spool');
    await mkdir(spool, { recursive: true });
    // A declaration whose pack lost its bytes, a pack without a declaration, a torn temp.
    const name = 'ab'.repeat(32);
    await writeFile(
      join(spool, `${name}.json`),
      JSON.stringify({ name, size: 4096, blobs: [{ type: 1, id: 'cd'.repeat(32) }] }),
    );
    await writeFile(join(spool, `${name}.pack`), '');
    await writeFile(join(spool, `${'ef'.repeat(32)}.pack`), 'orphan');
    await writeFile(join(spool, '.tmp-0123456789abcdef'), 'torn');
    const r = await runKinvault(anna, ['backup', src, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lastJson<Summary>(r.stdout)).toMatchObject({ files_changed: 1, resumed_packs: 0 });
    expect(await readdir(spool)).toEqual([]);
  });

  it('explains bad input', async () => {
    expect(
      (await runKinvault(anna, ['restore', 'zzz', '--target', join(work, 'x')])).stderr,
    ).toMatch(/not a snapshot id/);
    expect((await runKinvault(anna, ['restore', 'latest'])).code).toBe(2);
    const notSetUp = await runKinvault(join(work, 'nobody'), ['snapshots']);
    expect(notSetUp.code).toBe(2);
    expect(notSetUp.stderr).toMatch(/not set up/);
    expect((await runKinvault(anna, ['setup', 'KV1-garbage'])).stderr).toMatch(
      /already set up|enrollment code/,
    );
    expect((await runKinvault(anna, ['--help'])).stdout).toMatch(/backup/);
  });
});
