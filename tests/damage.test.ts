/**
 * End to end: damage on the NAS is found, contained, and never silently permanent. A
 * pack deleted or corrupted in the coordinator's store stops counting as stored (dedup,
 * status, commits), the next backup stores again what it held, and the snapshots that
 * needed it become restorable again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile, open } from 'node:fs/promises';
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
  files_changed: number;
  files_resent: number;
  bytes_uploaded: number;
}

interface Status {
  packs: number;
  availablePacks: number;
  storedBytes: number;
  damagedPacks: { pack: string; snapshots: number }[];
  missingPacks: { pack: string; snapshots: number }[];
}

/** The entries of a pack header the agent cached (u32 count, then type, id, offset, length). */
async function cachedHeader(
  stateDir: string,
  pack: string,
): Promise<{ type: number; offset: number; length: number }[]> {
  const b = await readFile(join(stateDir, 'cache', pack));
  const count = b.readUInt32LE(0);
  return Array.from({ length: count }, (_, i) => ({
    type: b[4 + i * 41]!,
    offset: b.readUInt32LE(4 + i * 41 + 33),
    length: b.readUInt32LE(4 + i * 41 + 37),
  }));
}

async function packsIn(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'packs');
  const out: string[] = [];
  for (const d of await readdir(root)) for (const f of await readdir(join(root, d))) out.push(f);
  return out.sort();
}

const packPath = (dataDir: string, name: string) => join(dataDir, 'packs', name.slice(0, 2), name);

describe('damage on the NAS (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let anna: string;
  const status = async () =>
    JSON.parse(
      (await runKinvaultd(['status', '--data-dir', c.dataDir, '--json'])).stdout,
    ) as Status;

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-damage-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-damage-work-');
    anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  /** A tree whose backup makes several packs: big files, and small files in folders. */
  async function library(dir: string): Promise<void> {
    for (let i = 0; i < 4; i++) {
      await mkdir(join(dir, `album ${i}`), { recursive: true });
      await writeFile(join(dir, `album ${i}`, 'movie.mp4'), randomBytes(9 * 1024 * 1024));
      for (let j = 0; j < 20; j++)
        await writeFile(join(dir, `album ${i}`, `IMG_${j}.jpg`), randomBytes(20_000 + j * 100));
    }
  }

  it('a deleted pack: restore names it, status shows it, the next backup stores its data again and the old snapshot restores', async () => {
    const src = join(work, 'deleted');
    await library(src);
    const first = await runKinvault(anna, ['backup', src, '--json']);
    expect(first.code).toBe(0);
    const made = lastJson<Summary>(first.stdout);
    const packs = await packsIn(c.dataDir);
    expect(packs.length).toBeGreaterThanOrEqual(3);
    // A pack of file data only (trees are elsewhere): its loss touches some files.
    let victim: string | undefined;
    for (const p of packs) if ((await cachedHeader(anna, p)).every((e) => e.type === 1)) victim = p;
    expect(victim).toBeDefined();
    await rm(packPath(c.dataDir, victim!));

    const before = await status();
    const broken = await runKinvault(anna, [
      'restore',
      made.snapshot,
      '--target',
      join(work, 'broken'),
    ]);
    // Everything else is restored; the files that needed the pack are named, with it.
    expect(broken.code).toBe(3);
    expect(broken.stderr).toMatch(
      new RegExp(
        `(IMG_\\d+\\.jpg|movie\\.mp4): pack ${victim!.slice(0, 12)} is missing on the coordinator`,
      ),
    );
    expect(broken.stderr).toMatch(/kinvaultd check/);
    // The coordinator noticed when asked for the pack: no longer counted as stored.
    const after = await status();
    expect(after.missingPacks.map((p) => p.pack)).toEqual([victim]);
    expect(after.missingPacks[0]!.snapshots).toBe(1);
    expect(after.availablePacks).toBe(before.availablePacks - 1);
    expect(after.storedBytes).toBeLessThan(before.storedBytes);
    const text = await runKinvaultd(['status', '--data-dir', c.dataDir]);
    expect(text.stdout).toMatch(/WARNING: 1 pack is damaged or missing/);

    // A plain backup (no --full): unchanged files whose data was lost are read again.
    const again = await runKinvault(anna, ['backup', src, '--json']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    const second = lastJson<Summary>(again.stdout);
    expect(second.files_resent).toBeGreaterThan(0);
    expect(second.bytes_uploaded).toBeGreaterThan(0);

    for (const snapshot of [made.snapshot, second.snapshot]) {
      const target = join(work, `restored-${snapshot.slice(0, 8)}`);
      const r = await runKinvault(anna, ['restore', snapshot, '--target', target]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(await compareTrees(src, join(target, src))).toEqual([]);
    }
  });

  it('a flipped byte: check finds it, status shows it, dedup stops counting it, the next backup repairs', async () => {
    const src = join(work, 'flipped');
    await library(src);
    const earlier = new Set(await packsIn(c.dataDir));
    const first = await runKinvault(anna, ['backup', src, '--json']);
    expect(first.code).toBe(0);
    const made = lastJson<Summary>(first.stdout);
    // A pack of this backup holding trees (so that trees must be stored again too).
    let victim: string | undefined;
    for (const p of await packsIn(c.dataDir))
      if (!earlier.has(p) && (await cachedHeader(anna, p)).some((e) => e.type === 2)) victim = p;
    expect(victim).toBeDefined();
    const entry = (await cachedHeader(anna, victim!))[0]!;
    const fh = await open(packPath(c.dataDir, victim!), 'r+');
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, entry.offset + 30);
    one[0]! ^= 0x01;
    await fh.write(one, 0, 1, entry.offset + 30);
    await fh.close();

    // A restore finds the bad blob, reports it, and the coordinator (having hashed the
    // pack again) no longer counts the pack as stored.
    const broken = await runKinvault(anna, ['restore', made.snapshot, '--target', join(work, 'x')]);
    expect(broken.code).toBe(3);
    expect(broken.stderr).toMatch(/failed its integrity check/);
    expect((await status()).damagedPacks.map((p) => p.pack)).toEqual([victim]);
    expect(c.log()).toMatch(new RegExp(`pack ${victim} is damaged on the NAS`));

    const check = await runKinvaultd(['check', '--data-dir', c.dataDir, '--json']);
    expect(check.code).toBe(1);
    const found = JSON.parse(check.stdout) as { damaged: { pack: string }[]; ok: number };
    expect(found.damaged.map((d) => d.pack)).toEqual([victim]);
    expect((await status()).damagedPacks.map((p) => p.pack)).toEqual([victim]);
    const textCheck = await runKinvaultd(['check', '--data-dir', c.dataDir]);
    expect(textCheck.stdout).toMatch(new RegExp(`damaged  ${victim}`));
    expect(textCheck.stdout).toMatch(/Run a backup on every device/);

    const again = await runKinvault(anna, ['backup', src, '--json']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    const repaired = lastJson<Summary>(again.stdout);
    expect(repaired.bytes_uploaded).toBeGreaterThan(0);
    // Every blob of the damaged pack is stored again: nothing of this backup uses it.
    const headers = await Promise.all(
      (await packsIn(c.dataDir))
        .filter((p) => !earlier.has(p) && p !== victim)
        .map((p) => cachedHeader(anna, p).then((h) => h.length)),
    );
    expect(headers.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect((await status()).damagedPacks).toEqual([
      expect.objectContaining({ pack: victim, replaced: true }),
    ]);

    // A check now drops the damaged pack: every blob of it has a good copy elsewhere.
    const clean = await runKinvaultd(['check', '--data-dir', c.dataDir, '--json']);
    expect(JSON.parse(clean.stdout)).toMatchObject({ damaged: [], retired: [victim] });
    expect(clean.code).toBe(0);
    expect(await packsIn(c.dataDir)).not.toContain(victim);
    expect((await status()).damagedPacks).toEqual([]);
    const target = join(work, 'flipped-restored');
    const r = await runKinvault(anna, ['restore', made.snapshot, '--target', target]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await compareTrees(src, join(target, src))).toEqual([]);
  });
});
