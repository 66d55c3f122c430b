/**
 * End to end: damage on the NAS is found, contained, and never silently permanent. A
 * pack deleted or corrupted in the coordinator's store stops counting as stored (dedup,
 * status, commits), the next backup stores again what it held, and the snapshots that
 * needed it become restorable again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile, open } from 'node:fs/promises';
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
import { decodeEnrollmentCode } from '@kinvault/protocol';
import { apiClient } from '../apps/agent/src/transport/api.js';
import { fetchPinnedCertificate } from '../apps/agent/src/transport/pinning.js';
import { uploadPack } from '../apps/agent/src/transport/upload.js';

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
): Promise<{ type: number; id: string; offset: number; length: number }[]> {
  const b = await readFile(join(stateDir, 'cache', pack));
  const count = b.readUInt32LE(0);
  return Array.from({ length: count }, (_, i) => ({
    type: b[4 + i * 41]!,
    id: b.subarray(4 + i * 41 + 1, 4 + i * 41 + 33).toString('hex'),
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
    // A pack of file data (of file data only, if there is one): its loss touches some files.
    let victim: string | undefined;
    for (const p of packs) {
      const types = (await cachedHeader(anna, p)).map((e) => e.type);
      if (types.includes(1) && (victim === undefined || types.every((t) => t === 1))) victim = p;
    }
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
    // A pack of this backup holding trees and file data (both must be stored again).
    let victim: string | undefined;
    for (const p of await packsIn(c.dataDir)) {
      const types = (await cachedHeader(anna, p)).map((e) => e.type);
      if (!earlier.has(p) && types.includes(1) && types.includes(2)) victim = p;
    }
    expect(victim).toBeDefined();
    // A byte inside a blob of file data (a restore reads trees from its own cache).
    const entry = (await cachedHeader(anna, victim!)).find((e) => e.type === 1)!;
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
    expect(textCheck.stdout).toMatch(/Run a backup on every\s+device/);

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

    // Nothing is at risk any more: the check passes, and the damaged pack stays (its
    // other blobs can still be read) until the NAS owner sets it aside.
    const clean = await runKinvaultd(['check', '--data-dir', c.dataDir, '--json']);
    expect(JSON.parse(clean.stdout)).toMatchObject({
      damaged: [{ pack: victim, replaced: true }],
      quarantined: [],
    });
    expect(clean.code).toBe(0);
    expect(await packsIn(c.dataDir)).toContain(victim);
    expect((await runKinvaultd(['status', '--data-dir', c.dataDir])).stdout).toMatch(
      /1 damaged pack was stored again by later backups \(nothing is at risk\)/,
    );
    const dropped = await runKinvaultd([
      'check',
      '--data-dir',
      c.dataDir,
      '--drop-replaced',
      '--json',
    ]);
    expect(dropped.code).toBe(0);
    expect(JSON.parse(dropped.stdout)).toMatchObject({ damaged: [], quarantined: [victim] });
    expect(await packsIn(c.dataDir)).not.toContain(victim);
    expect(await readdir(join(c.dataDir, 'quarantine'))).toEqual([victim]);
    expect((await status()).damagedPacks).toEqual([]);
    const target = join(work, 'flipped-restored');
    const r = await runKinvault(anna, ['restore', made.snapshot, '--target', target]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await compareTrees(src, join(target, src))).toEqual([]);
  });

  it('a device that declares blobs its pack does not hold cannot shadow stored data, and a check deletes nothing', async () => {
    const src = join(work, 'poisoned');
    await library(src);
    const earlier = new Set(await packsIn(c.dataDir));
    const first = await runKinvault(anna, ['backup', src, '--json']);
    expect(first.code).toBe(0);
    const made = lastJson<Summary>(first.stdout);
    const victim = (await packsIn(c.dataDir)).find((p) => !earlier.has(p))!;
    const ids = (await cachedHeader(anna, victim)).map((e) => ({
      type: e.type as 1 | 2,
      id: e.id,
    }));
    // Another device, with nothing but its token, declares junk packs that "hold" them.
    const added = await runKinvaultd([
      'device',
      'add',
      'mallory',
      '--data-dir',
      c.dataDir,
      '--json',
    ]);
    const e = decodeEnrollmentCode((JSON.parse(added.stdout) as { code: string }).code);
    const pin = await fetchPinnedCertificate(e.url, e.fingerprint);
    const { deviceToken } = await apiClient({ url: e.url, pin }).enroll.mutate({ token: e.token });
    const mallory = apiClient({ url: e.url, pin, token: deviceToken });
    for (let k = 0; k < 4; k++) {
      const junk = randomBytes(4096);
      const name = createHash('sha256').update(junk).digest('hex');
      await mallory.packs.declare.mutate({ name, size: junk.length, blobs: ids });
      await uploadPack({
        conn: { url: e.url, pin, token: deviceToken },
        name,
        data: junk,
        size: junk.length,
      });
    }
    const target = join(work, 'poisoned-restored');
    const r = await runKinvault(anna, ['restore', made.snapshot, '--target', target]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await compareTrees(src, join(target, src))).toEqual([]);
    const packsBefore = await packsIn(c.dataDir);
    const check = await runKinvaultd([
      'check',
      '--data-dir',
      c.dataDir,
      '--drop-replaced',
      '--json',
    ]);
    expect(JSON.parse(check.stdout)).toMatchObject({ retired: [], quarantined: [] });
    expect(await packsIn(c.dataDir)).toEqual(packsBefore);
  });

  it('a pack that cannot be read is recorded as damaged, and the check goes on with the others', async () => {
    // The victim holds the only copy of its data (a pack stored again elsewhere may be
    // damaged without failing the check): one written by a backup of new data.
    const src = join(work, 'unreadable');
    await mkdir(src);
    await writeFile(join(src, 'only-here.bin'), randomBytes(300_000));
    const earlier = new Set(await packsIn(c.dataDir));
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    const packs = await packsIn(c.dataDir);
    const victim = packs.find((p) => !earlier.has(p))!;
    const saved = join(work, 'saved-pack');
    await rename(packPath(c.dataDir, victim), saved);
    await mkdir(packPath(c.dataDir, victim)); // reads fail (EISDIR), as EIO would on a bad sector
    try {
      const check = await runKinvaultd(['check', '--data-dir', c.dataDir, '--json']);
      expect(check.code).toBe(1);
      const out = JSON.parse(check.stdout) as {
        packs: number;
        damaged: { pack: string; detail: string }[];
      };
      expect(out.packs).toBe(packs.length);
      expect(out.damaged).toContainEqual(
        expect.objectContaining({ pack: victim, detail: 'the file cannot be read (EISDIR)' }),
      );
    } finally {
      await rm(packPath(c.dataDir, victim), { recursive: true });
      await rename(saved, packPath(c.dataDir, victim));
    }
    const after = await runKinvaultd(['check', '--data-dir', c.dataDir, '--json']);
    expect(
      (JSON.parse(after.stdout) as { damaged: { pack: string }[] }).damaged,
    ).not.toContainEqual(expect.objectContaining({ pack: victim }));
  });
});
