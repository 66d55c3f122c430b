/**
 * End to end: restores with the built commands, where things go wrong: times below the
 * second, paths that are not in the snapshot, a full disk, sparse files, hard links,
 * and packs that are damaged or gone on the coordinator.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobType,
  blobId,
  chunkSource,
  deriveKeys,
  gearTable,
  prepareChunker,
  readPackHeader,
  toHex,
  type PackEntry,
  type RepositoryKeys,
} from '@kinvault/format';
import { compareTrees } from '../packages/format/demo/verify.js';
import { openSession } from '../apps/agent/src/session.js';
import { restore, type PackDamage } from '../apps/agent/src/restore.service.js';
import {
  initCoordinator,
  removeTempDirs,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
} from './support/kinvaultd.js';
import { enrollDevice, lastJson, runKinvault } from './support/kinvault.js';

interface Restored {
  snapshot: string;
  files_restored: number;
  files_skipped: number;
  files_failed: number;
  bytes_written: number;
  dirs: number;
  symlinks: number;
  hard_links: number;
  failed: { path: string; pack: string | null; reason: string }[];
}

const MiB = 1024 * 1024;

/** Every file under `dir` (relative paths), recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  return out.sort();
}

/** The data blob ids (hex) of a file, as a backup with these keys chunks it. */
async function chunkIds(keys: RepositoryKeys, path: string): Promise<string[]> {
  const fh = await open(path, 'r');
  try {
    const source = {
      read: async (into: Uint8Array) => (await fh.read(into, 0, into.byteLength, null)).bytesRead,
    };
    const ids: string[] = [];
    for await (const c of chunkSource(source, prepareChunker(gearTable(keys.cdcSeed))))
      ids.push(toHex(blobId(keys, BlobType.data, c.data)));
    return ids;
  } finally {
    await fh.close();
  }
}

describe('kinvault restore (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let anna: string;
  let keys: RepositoryKeys;
  const mounted: string[] = [];

  const packFiles = async () => {
    const root = join(c.dataDir, 'packs');
    const out = new Map<string, string>();
    for (const sub of await readdir(root).catch(() => []))
      for (const name of await readdir(join(root, sub))) out.set(name, join(root, sub, name));
    return out;
  };
  const headerOf = async (path: string): Promise<PackEntry[]> => {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      return await readPackHeader(
        {
          size,
          read: async (offset, length) => {
            const b = Buffer.alloc(length);
            await fh.read(b, 0, length, offset);
            return b;
          },
        },
        keys,
      );
    } finally {
      await fh.close();
    }
  };
  const flipByte = async (path: string, at: number) => {
    const fh = await open(path, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0]! ^= 0x40;
    await fh.write(b, 0, 1, at);
    await fh.close();
  };
  const backup = async (state: string, ...paths: string[]) => {
    const r = await runKinvault(state, ['backup', ...paths, '--json']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    return lastJson<{ snapshot: string; packs_uploaded: number }>(r.stdout);
  };
  const restoreJson = async (state: string, args: string[], env: Record<string, string> = {}) => {
    const r = await runKinvault(state, ['restore', ...args, '--json'], env);
    return { ...r, summary: r.stdout.trim() ? lastJson<Restored>(r.stdout) : null };
  };

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator();
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-restore-e2e-');
    anna = join(work, 'anna-state');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    keys = deriveKeys(new Uint8Array(await readFile(join(anna, 'master.key'))));
  }, 120_000);

  afterAll(async () => {
    for (const m of mounted) execFileSync('umount', [m]);
    await c?.stop();
    await removeTempDirs();
  });

  it('restores modification times exactly to the microsecond (files, folders, links); a re-restore writes nothing', async () => {
    const src = join(work, 'times');
    // 2,000 files in 20 folders, with links, all with random sub-microsecond times
    // from 1902 to 2200, set in one process (Node cannot set nanoseconds).
    execFileSync('python3', [
      '-c',
      `
import os, random, sys
root = sys.argv[1]
rnd = lambda: random.randrange(-2145916800 * 10**9, 7258118400 * 10**9)
os.makedirs(root)
for d in range(20):
    folder = os.path.join(root, 'folder %d' % d)
    os.mkdir(folder)
    for i in range(100):
        p = os.path.join(folder, 'file %d.txt' % i)
        with open(p, 'w') as f:
            f.write('times %d/%d\\n' % (d, i))
        t = rnd()
        os.utime(p, ns=(t, t))
    for i in range(5):
        p = os.path.join(folder, 'link %d' % i)
        os.symlink('file %d.txt' % i, p)
        t = rnd()
        os.utime(p, ns=(t, t), follow_symlinks=False)
    t = rnd()
    os.utime(folder, ns=(t, t))
`,
      src,
    ]);
    const made = await backup(anna, src);
    const target = join(work, 'times-restored');
    const first = await restoreJson(anna, [made.snapshot, '--target', target]);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    expect(first.summary).toMatchObject({ files_restored: 2000, symlinks: 100, files_failed: 0 });
    // compareTrees compares mtimes to the microsecond: files, folders and links.
    expect(await compareTrees(src, join(target, src))).toEqual([]);

    const stamp = async () => {
      const out = new Map<string, string>();
      for (const e of await readdir(join(target, src), { recursive: true })) {
        const st = lstatSync(join(target, src, e), { bigint: true });
        out.set(e, `${st.ino} ${st.ctimeNs} ${st.mtimeNs}`);
      }
      return out;
    };
    const before = await stamp();
    const again = await restoreJson(anna, [made.snapshot, '--target', target]);
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({
      files_restored: 0,
      files_skipped: 2000,
      bytes_written: 0,
      symlinks: 0,
    });
    // Nothing was replaced or even touched (a rewrite or a new time changes the ctime).
    expect(await stamp()).toEqual(before);
  }, 180_000);

  it('refuses --include paths that are not in the snapshot, before writing anything', async () => {
    const src = join(work, 'includes');
    await mkdir(join(src, 'Photos'), { recursive: true });
    await writeFile(join(src, 'Photos', 'a.jpg'), randomBytes(1000));
    const made = await backup(anna, src);
    const rel = src.slice(1);

    const target = join(work, 'includes-restored');
    const one = await runKinvault(anna, [
      'restore',
      made.snapshot,
      '--target',
      target,
      '--include',
      `${rel}/Fotos`,
    ]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain(`${rel}/Fotos is not in snapshot ${made.snapshot.slice(0, 12)}`);
    expect(existsSync(target)).toBe(false);

    // Among good ones; and a path that goes on below a file.
    const some = await runKinvault(anna, [
      'restore',
      made.snapshot,
      '--target',
      target,
      '--include',
      `${rel}/Photos`,
      '--include',
      `${rel}/missing`,
      '--include',
      `${rel}/Photos/a.jpg/deeper`,
    ]);
    expect(some.code).toBe(2);
    expect(some.stderr).toContain(`${rel}/missing, ${rel}/Photos/a.jpg/deeper are not in snapshot`);
    expect(existsSync(target)).toBe(false);

    const good = await restoreJson(anna, [made.snapshot, '--target', target, '--include', rel]);
    expect(good.code).toBe(0);
    expect(good.summary).toMatchObject({ files_restored: 1 });
  });

  it('stops on a full disk: removes partial files, keeps complete ones, says how much is needed; a re-run finishes', async () => {
    const src = join(work, 'big');
    await mkdir(src);
    for (let i = 0; i < 10; i++) await writeFile(join(src, `video ${i}.mp4`), randomBytes(4 * MiB));
    for (let i = 0; i < 20; i++) await writeFile(join(src, `note ${i}.txt`), randomBytes(3000));
    const made = await backup(anna, src);

    const target = join(work, 'small-disk');
    await mkdir(target);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', target]);
    mounted.push(target);
    const full = await restoreJson(anna, [made.snapshot, '--target', target]);
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(
      new RegExp(
        `The disk holding ${target} is full: this restore needs [0-9.]+ [kM]B more \\([0-9,]+ bytes not yet written\\), [0-9.]+ (B|kB|MB) free\\. Free space or restore elsewhere \\(--target\\); files already restored are kept and a re-run skips them\\.`,
      ),
    );
    const needed = Number(
      /\(([0-9,]+) bytes not yet written/.exec(full.stderr)![1]!.replace(/,/g, ''),
    );
    // Nothing partial is left: every file there is complete and correct.
    const left = await filesUnder(target);
    expect(left.filter((f) => f.includes('.kinvault-restore-'))).toEqual([]);
    expect(left.length).toBeGreaterThan(0);
    let kept = 0;
    for (const f of left) {
      const original = await readFile(join('/', f));
      expect((await readFile(join(target, f))).equals(original), f).toBe(true);
      kept += original.byteLength;
    }
    expect(needed).toBe(10 * 4 * MiB + 20 * 3000 - kept);

    execFileSync('mount', ['-o', 'remount,size=64m', target]);
    const rerun = await restoreJson(anna, [made.snapshot, '--target', target]);
    expect({ code: rerun.code, stderr: rerun.stderr }).toEqual({ code: 0, stderr: '' });
    expect(rerun.summary).toMatchObject({
      files_skipped: left.length,
      files_restored: 30 - left.length,
    });
    expect(await compareTrees(src, join(target, src))).toEqual([]);
  }, 180_000);

  it('restores holes in sparse files as holes', async () => {
    const src = join(work, 'sparse');
    await mkdir(src);
    // 200 MB with a little data at a few offsets (and zeros at the end).
    const disk = await open(join(src, 'disk.img'), 'w');
    await disk.truncate(200 * 1000 * 1000);
    for (const at of [0, 1234567, 50 * MiB, 150 * MiB + 3])
      await disk.write(randomBytes(20_000), 0, 20_000, at);
    await disk.close();
    // Spread over more than one pack (24 MiB of data), then 24 MiB of zeros.
    const tail = await open(join(src, 'tail.bin'), 'w');
    await tail.write(randomBytes(24 * MiB), 0, 24 * MiB, 0);
    await tail.truncate(48 * MiB);
    await tail.close();
    const made = await backup(anna, src);

    const target = join(work, 'sparse-restored');
    const r = await restoreJson(anna, [made.snapshot, '--target', target]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await compareTrees(src, join(target, src))).toEqual([]);
    const disk2 = await stat(join(target, src, 'disk.img'));
    expect(disk2.size).toBe(200 * 1000 * 1000);
    expect(disk2.blocks * 512).toBeLessThan(10 * MiB);
    const tail2 = await stat(join(target, src, 'tail.bin'));
    expect(tail2.size).toBe(48 * MiB);
    expect(tail2.blocks * 512).toBeLessThan(30 * MiB);
  }, 180_000);

  it('restores hard links as hard links with --hard-links (separate files without); --include of one gives a plain file', async () => {
    const src = join(work, 'links');
    await mkdir(join(src, 'sub'), { recursive: true });
    const content = randomBytes(700_000);
    await writeFile(join(src, 'a.jpg'), content);
    await link(join(src, 'a.jpg'), join(src, 'b.jpg'));
    await link(join(src, 'a.jpg'), join(src, 'sub', 'c.jpg'));
    await writeFile(join(src, 'copy.jpg'), content); // same bytes, another file
    const made = await backup(anna, src);
    // The backup keeps each link as a file entry of its own (same inode).
    const ls = JSON.parse(
      (await runKinvault(anna, ['ls', made.snapshot, src.slice(1), '--json'])).stdout,
    ) as { name: string; kind: string }[];
    expect(ls.map((e) => `${e.name}:${e.kind}`)).toEqual([
      'a.jpg:file',
      'b.jpg:file',
      'copy.jpg:file',
      'sub:dir',
    ]);

    // By default each path comes back as a file of its own (v1 trees cannot tell a hard
    // link from a copy on another file system, such as a file-system snapshot).
    const separate = join(work, 'links-separate');
    const plain = await restoreJson(anna, [made.snapshot, '--target', separate]);
    expect(plain.summary).toMatchObject({ files_restored: 4, hard_links: 0 });
    expect((await stat(join(separate, src, 'b.jpg'))).nlink).toBe(1);
    expect(await compareTrees(src, join(separate, src))).toEqual([]);

    const target = join(work, 'links-restored');
    const r = await restoreJson(anna, [made.snapshot, '--target', target, '--hard-links']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.summary).toMatchObject({ files_restored: 4, hard_links: 2 });
    expect(await compareTrees(src, join(target, src))).toEqual([]);
    const [a, b, cc, copy] = await Promise.all(
      ['a.jpg', 'b.jpg', 'sub/c.jpg', 'copy.jpg'].map((p) => stat(join(target, src, p))),
    );
    expect([b!.ino, cc!.ino]).toEqual([a!.ino, a!.ino]);
    expect(a!.nlink).toBe(3);
    expect(copy!.ino).not.toBe(a!.ino);
    expect(copy!.nlink).toBe(1);

    const again = await restoreJson(anna, [made.snapshot, '--target', target], {
      KINVAULT_HARD_LINKS: '1',
    });
    expect(again.summary).toMatchObject({ files_restored: 0, files_skipped: 4, hard_links: 0 });
    expect((await stat(join(target, src, 'b.jpg'))).ino).toBe(a!.ino);

    const one = join(work, 'links-one');
    const only = await restoreJson(anna, [
      made.snapshot,
      '--target',
      one,
      '--include',
      `${src.slice(1)}/sub/c.jpg`,
      '--hard-links',
    ]);
    expect(only.summary).toMatchObject({ files_restored: 1, hard_links: 0 });
    const c1 = await stat(join(one, src, 'sub', 'c.jpg'));
    expect(c1.nlink).toBe(1);
    expect((await readFile(join(one, src, 'sub', 'c.jpg'))).equals(content)).toBe(true);
  }, 180_000);

  describe('around damaged and missing packs', () => {
    let src: string;
    let snapshot: string;
    /** Each source file (relative to src) and its chunk ids. */
    const chunks = new Map<string, string[]>();
    /** Which pack holds each data blob. */
    const packOf = new Map<string, string>();
    let damaged: { pack: string; blobs: string[] };
    let bob: string;

    /** The files (relative to src) that need any of these blobs. */
    const needing = (blobs: Set<string>) =>
      [...chunks].filter(([, ids]) => ids.some((id) => blobs.has(id))).map(([f]) => f);

    beforeAll(async () => {
      src = join(work, 'damage');
      await mkdir(join(src, 'small'), { recursive: true });
      // Many small files and a few large ones, read side by side: packs differ.
      for (let i = 0; i < 300; i++)
        await writeFile(join(src, 'small', `doc ${i}.txt`), randomBytes(1000 + i * 50));
      for (const name of ['a.mov', 'b.mov', 'c.mov'])
        await writeFile(join(src, name), randomBytes(20 * MiB));
      const before = new Set((await packFiles()).keys());
      snapshot = (await backup(anna, src)).snapshot;
      for (const [name, path] of await packFiles()) {
        if (before.has(name)) continue;
        for (const e of await headerOf(path))
          if (e.type === BlobType.data) packOf.set(toHex(e.id), name);
      }
      for (const f of await filesUnder(src)) chunks.set(f, await chunkIds(keys, join(src, f)));
      bob = join(work, 'bob-state');
      await enrollDevice(c.dataDir, 'bob-laptop', bob);
    }, 180_000);

    it('restores every file it can around a damaged blob, lists the others with the pack, exits 3', async () => {
      // In a pack with data of a large file, damage one of its blobs and one blob of a
      // small file if it holds one.
      const big = chunks.get('b.mov')!;
      const pack = packOf.get(big[1]!)!;
      const inPack = (f: string) => chunks.get(f)!.filter((id) => packOf.get(id) === pack);
      const smallOne = [...chunks.keys()].find((f) => f.startsWith('small/') && inPack(f).length);
      const blobs = [big[1]!, ...(smallOne ? [inPack(smallOne)[0]!] : [])];
      const path = (await packFiles()).get(pack)!;
      const entries = await headerOf(path);
      for (const id of blobs) {
        const e = entries.find((x) => toHex(x.id) === id)!;
        await flipByte(path, e.offset + Math.floor(e.length / 2));
      }
      damaged = { pack, blobs };
      const failing = needing(new Set(blobs));
      expect(failing.length).toBeLessThan(chunks.size);

      // An older copy of the large file is already at the target: it stays as it was.
      const target = join(work, 'damage-restored');
      await mkdir(join(target, src), { recursive: true });
      await writeFile(join(target, src, 'b.mov'), 'an older copy');

      const r = await restoreJson(anna, [snapshot, '--target', target]);
      expect(r.code).toBe(3);
      expect(r.summary!.failed).toEqual(
        failing.map((f) => ({
          path: join(target, src, f),
          pack,
          reason: expect.stringMatching(
            new RegExp(
              `^pack ${pack.slice(0, 12)} is damaged: blob [0-9a-f]{12} failed its integrity check$`,
            ),
          ) as string,
        })),
      );
      expect(r.summary).toMatchObject({
        files_failed: failing.length,
        files_restored: chunks.size - failing.length,
      });
      expect(r.stderr).toContain(`${failing.length} files could not be restored`);
      expect(r.stderr).toContain(
        `${join(target, src, 'b.mov')}: pack ${pack.slice(0, 12)} is damaged`,
      );
      expect(r.stderr).toContain('kinvaultd check');
      expect(r.stderr).not.toMatch(/run a check/i);
      // Everything else is identical; nothing partial is left behind.
      const problems = await compareTrees(src, join(target, src));
      expect(problems).toEqual(
        failing.flatMap((f) =>
          f === 'b.mov'
            ? ['b.mov: mtime differs', 'b.mov: contents differ']
            : [`${f}: missing from the restore`],
        ),
      );
      expect(await readFile(join(target, src, 'b.mov'), 'utf8')).toBe('an older copy');
    }, 180_000);

    it('tells the coordinator once per damaged pack (onDamage), and a failing callback fails nothing', async () => {
      const session = await openSession(anna);
      try {
        const reports: PackDamage[] = [];
        const summary = await restore(
          session.repo,
          session.keys,
          snapshot,
          join(work, 'damage-in-process'),
          {
            onDamage: async (d) => {
              reports.push(d);
              throw new Error('the coordinator did not take the report');
            },
          },
        );
        expect(reports).toEqual([
          {
            pack: damaged.pack,
            reason: 'corrupt',
            blobs: expect.arrayContaining(damaged.blobs) as string[],
          },
        ]);
        expect(reports[0]!.blobs.length).toBe(damaged.blobs.length);
        expect(summary.files_failed).toBe(needing(new Set(damaged.blobs)).length);
      } finally {
        session.close();
      }
    }, 180_000);

    it('restores every file it can when a pack is missing on the coordinator, for a device without caches too', async () => {
      const packs = await packFiles();
      const candidates = [...new Set(packOf.values())].filter((p) => p !== damaged.pack);
      // A pack that holds data of some files but not of all, and no trees.
      let gone: string | undefined;
      for (const p of candidates) {
        const entries = await headerOf(packs.get(p)!);
        if (entries.every((e) => e.type === BlobType.data)) gone = p;
      }
      expect(gone).toBeDefined();
      await rm(packs.get(gone!)!);
      const goneBlobs = new Set([...packOf].filter(([, p]) => p === gone).map(([id]) => id));
      const expected = new Map<string, string[]>(); // file → packs that fail it
      for (const f of needing(goneBlobs)) expected.set(f, [gone!]);
      for (const f of needing(new Set(damaged.blobs)))
        expected.set(f, [...(expected.get(f) ?? []), damaged.pack]);
      expect(expected.size).toBeLessThan(chunks.size);

      for (const [who, state] of [
        ['anna', anna],
        ['bob', bob],
      ] as const) {
        const target = join(work, `missing-restored-${who}`);
        const r = await restoreJson(state, [snapshot, '--target', target]);
        expect(r.code).toBe(3);
        const failed = r.summary!.failed;
        expect(failed.map((f) => f.path)).toEqual(
          [...expected.keys()].sort().map((f) => join(target, src, f)),
        );
        for (const f of failed) {
          const packsOfFile = expected.get(relative(join(target, src), f.path))!;
          expect(packsOfFile).toContain(f.pack);
          if (f.pack === gone)
            expect(f.reason).toBe(`pack ${gone!.slice(0, 12)} is missing on the coordinator`);
        }
        const problems = await compareTrees(src, join(target, src));
        expect(problems).toEqual(
          [...expected.keys()].sort().map((f) => `${f}: missing from the restore`),
        );
      }
    }, 300_000);

    it('reports a folder whose listing cannot be read, with its pack, and restores the rest', async () => {
      // The folder "old" is backed up alone first; its tree is then reused, unchanged, by
      // a snapshot of its parent, while the parent's trees are stored anew.
      const root = join(work, 'trees');
      await mkdir(join(root, 'old'), { recursive: true });
      await mkdir(join(root, 'new'), { recursive: true });
      for (let i = 0; i < 5; i++) await writeFile(join(root, 'old', `${i}.txt`), randomBytes(500));
      for (let i = 0; i < 5; i++) await writeFile(join(root, 'new', `${i}.txt`), randomBytes(500));
      const before = new Set((await packFiles()).keys());
      await backup(anna, join(root, 'old'));
      const firstPacks = [...(await packFiles())].filter(([name]) => !before.has(name));
      const made = await backup(anna, root);
      // Damage every tree blob of the first backup: only old's is still used.
      const treePacks = new Set<string>();
      for (const [name, path] of firstPacks)
        for (const e of await headerOf(path))
          if (e.type === BlobType.tree) {
            await flipByte(path, e.offset + Math.floor(e.length / 2));
            treePacks.add(name);
          }
      expect(treePacks.size).toBeGreaterThan(0);

      // Bob has no trees cached: he reads them from the coordinator.
      const target = join(work, 'trees-restored');
      const r = await restoreJson(bob, [made.snapshot, '--target', target]);
      expect(r.code).toBe(3);
      const [failed, ...more] = r.summary!.failed;
      expect(more).toEqual([]);
      expect(treePacks).toContain(failed!.pack);
      expect(failed).toEqual({
        path: join(target, root, 'old'),
        pack: failed!.pack,
        reason: expect.stringMatching(
          new RegExp(
            `^pack ${failed!.pack!.slice(0, 12)} is damaged: blob [0-9a-f]{12} failed its integrity check; the folder's contents could not be listed$`,
          ),
        ) as string,
      });
      expect(r.summary).toMatchObject({ files_restored: 5, files_failed: 1 });
      expect(await compareTrees(join(root, 'new'), join(target, root, 'new'))).toEqual([]);
      expect(await readdir(join(target, root, 'old'))).toEqual([]);
    }, 180_000);
  });
});
