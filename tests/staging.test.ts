/**
 * Staging to file targets, end to end with the built commands (issue 10 §2, §4, §5):
 * copies placed by the background jobs in target order with quotas spilling to the
 * next, verified and recorded; `where`; recovery objects on every target; a target
 * that is down does not stop backups and its backlog drains when it is back; removal
 * refused while a target holds the only copy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initCoordinator,
  removeTempDirs,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
} from './support/kinvaultd.js';
import { enrollDevice, runKinvault } from './support/kinvault.js';
import { filesUnder } from './support/files.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Target {
  name: string;
  usedBytes: number;
  quotaBytes: number | null;
  objects: number;
  lastError: string | null;
  failingSince: string | null;
}

describe('staging to file targets (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let anna: string;
  let usb1: string;
  let usb2: string;
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);
  const targets = async () => JSON.parse((await kd('target', 'list', '--json')).stdout) as Target[];
  const packsOnNas = async () =>
    (await filesUnder(join(c.dataDir, 'packs'))).map((p) => p.split('/')[1]!);
  const jobs = async () =>
    JSON.parse((await kd('jobs', '--json')).stdout) as { kind: string; state: string }[];

  async function library(dir: string, files: number): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < files; i++) await writeFile(join(dir, `VID_${i}.mp4`), randomBytes(5e6));
    for (let i = 0; i < 20; i++) await writeFile(join(dir, `IMG_${i}.jpg`), randomBytes(30_000));
  }

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-staging-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-staging-work-');
    anna = join(work, 'anna');
    usb1 = join(work, 'usb1', 'kinvault');
    usb2 = join(work, 'usb2', 'kinvault');
    await mkdir(join(work, 'usb1'));
    await mkdir(join(work, 'usb2'));
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('refuses targets it cannot use, with the reason', async () => {
    const missing = await kd(
      'target',
      'add',
      'usb',
      `file://${join(work, 'not-mounted', 'kv')}`,
      '--role',
      'staging',
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/does not exist: is the disk mounted\?/);
    // An empty mount point (the disk not mounted) is a folder on the NAS's own disk.
    await mkdir(join(work, 'empty-mount'));
    const unmounted = await kd(
      'target',
      'add',
      'usb',
      `file://${join(work, 'empty-mount')}`,
      '--role',
      'staging',
    );
    expect(unmounted.code).toBe(1);
    expect(unmounted.stderr).toMatch(
      /same disk as the coordinator's data directory.*Is the USB disk mounted\?/,
    );
    const badUrl = await kd(
      'target',
      'add',
      'usb',
      'not a url',
      '--role',
      'staging',
      '--allow-same-disk',
    );
    expect(badUrl.code).toBe(2);
    const badQuota = await kd(
      'target',
      'add',
      'usb',
      `file://${usb1}`,
      '--role',
      'staging',
      '--quota',
      'lots',
    );
    expect(badQuota.code).toBe(2);
    expect(badQuota.stderr).toMatch(/--quota lots: give a size such as 15GB/);
    expect(await targets()).toEqual([]);
  });

  it('places each pack once, in target order, spilling past a full quota; recovery objects go everywhere', async () => {
    const added1 = await kd(
      'target',
      'add',
      'usb1',
      `file://${usb1}`,
      '--role',
      'staging',
      '--allow-same-disk',
      '--quota',
      '20MB',
    );
    expect(added1).toMatchObject({ code: 0 });
    expect(
      (
        await kd(
          'target',
          'add',
          'usb2',
          `file://${usb2}`,
          '--role',
          'staging',
          '--allow-same-disk',
        )
      ).code,
    ).toBe(0);
    expect(
      (
        await kd(
          'target',
          'add',
          'usb2',
          `file://${usb2}`,
          '--role',
          'staging',
          '--allow-same-disk',
        )
      ).code,
    ).toBe(2);
    const src = join(work, 'photos');
    await library(src, 5);
    const backup = await runKinvault(anna, ['backup', src, '--json']);
    expect(backup.code).toBe(0);
    const snapshot = (JSON.parse(backup.stdout.trim().split('\n').at(-1)!) as { snapshot: string })
      .snapshot;

    const nas = await packsOnNas();
    expect(nas.length).toBeGreaterThan(1);
    await expect
      .poll(async () => (await jobs()).length, { timeout: 60_000, interval: 500 })
      .toBe(0);
    const at1 = (await filesUnder(join(usb1, 'packs'))).map((p) => p.split('/')[1]!);
    const at2 = (await filesUnder(join(usb2, 'packs'))).map((p) => p.split('/')[1]!);
    expect([...at1, ...at2].sort()).toEqual(nas.sort()); // each exactly once
    expect(at1.length).toBeGreaterThan(0);
    expect(at2.length).toBeGreaterThan(0); // usb1's quota made the rest spill
    for (const p of at1) {
      const bytes = await readFile(join(usb1, 'packs', p.slice(0, 2), p));
      expect(sha256(bytes)).toBe(p);
    }
    const [t1, t2] = await targets();
    expect(t1!.usedBytes).toBeLessThanOrEqual(20e6);
    expect(t1!.quotaBytes).toBe(20e6);
    expect(t2!.lastError).toBeNull();

    // Recovery objects are on both targets, identical to the NAS's.
    for (const dir of [usb1, usb2]) {
      for (const kind of ['snapshots', 'keys', 'catalog']) {
        const here = await filesUnder(join(c.dataDir, kind));
        expect(await filesUnder(join(dir, kind)), `${dir} ${kind}`).toEqual(here);
        for (const f of here)
          expect(
            (await readFile(join(dir, kind, f))).equals(await readFile(join(c.dataDir, kind, f))),
          ).toBe(true);
      }
    }

    // where: every pack of the snapshot is on the NAS and on exactly one target.
    const where = JSON.parse((await kd('where', snapshot, '--json')).stdout) as {
      packs: { pack: string; locations: { location: string; state: string }[] }[];
    };
    expect(where.packs.map((p) => p.pack).sort()).toEqual(nas.sort());
    for (const p of where.packs) {
      const places = p.locations.map((l) => l.location);
      expect(places).toContain('nas');
      expect(places.filter((l) => l.startsWith('staging:'))).toHaveLength(1);
      expect(places).toContain(at1.includes(p.pack) ? 'staging:usb1' : 'staging:usb2');
    }
    expect((await kd('where', 'ab'.repeat(32))).code).toBe(2);
  });

  it('keeps backing up while a target is down, says so, and drains the backlog when it is back', async () => {
    const marker = join(usb2, '.kinvault-target');
    await rename(marker, `${marker}.away`); // as if the disk were unmounted
    const src = join(work, 'more');
    // More than usb1's whole 20 MB quota, so some of it must wait for usb2, however
    // the first backup's packs were spread.
    await library(src, 5);
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    await expect
      .poll(async () => (await targets()).find((t) => t.name === 'usb2')?.failingSince ?? null, {
        timeout: 30_000,
        interval: 500,
      })
      .not.toBeNull();
    const down = (await targets()).find((t) => t.name === 'usb2')!;
    expect(down.lastError).toMatch(/is the disk mounted\?/);
    const status = await kd('status');
    expect(status.stdout).toMatch(
      /target usb2 \(staging\): .* FAILING since .*is the disk mounted\?/,
    );
    expect(status.stdout).toMatch(/\d+ pack\(s\) do not yet have 1 off-site copy/);
    expect((await jobs()).length).toBeGreaterThan(0);
    // Nothing was written into the empty mount point.
    expect((await filesUnder(usb2)).filter((f) => f.startsWith('.tmp'))).toEqual([]);

    await rename(`${marker}.away`, marker);
    await expect
      .poll(async () => (await jobs()).length, { timeout: 60_000, interval: 1000 })
      .toBe(0);
    const nas = await packsOnNas();
    const staged = [
      ...(await filesUnder(join(usb1, 'packs'))),
      ...(await filesUnder(join(usb2, 'packs'))),
    ].map((p) => p.split('/')[1]!);
    expect(staged.sort()).toEqual(nas.sort());
    expect((await targets()).find((t) => t.name === 'usb2')!.failingSince).toBeNull();
    const after = JSON.parse((await kd('status', '--json')).stdout) as {
      offsite: { unprotectedPacks: number; copiesRequired: number };
    };
    expect(after.offsite).toMatchObject({ unprotectedPacks: 0, copiesRequired: 1 });
    expect((await kd('target', 'test', 'usb2')).code).toBe(0);
  });

  it('check --tier staging finds a copy changed or deleted behind its back, and it is copied again', async () => {
    const [first, second] = await filesUnder(join(usb2, 'packs'));
    const changed = join(usb2, 'packs', first!);
    const bytes = await readFile(changed);
    bytes[100]! ^= 1;
    await writeFile(changed, bytes);
    await rm(join(usb2, 'packs', second!));
    const check = await kd('check', '--tier', 'staging', '--json');
    expect(check.code).toBe(1);
    const found = JSON.parse(check.stdout) as { bad: { pack: string; state: string }[] };
    expect(found.bad.map((b) => `${b.state} ${b.pack}`).sort()).toEqual(
      [`damaged ${first!.split('/')[1]}`, `missing ${second!.split('/')[1]}`].sort(),
    );
    await expect
      .poll(async () => (await kd('check', '--tier', 'staging')).code, { timeout: 60_000 })
      .toBe(0);
    // The changed copy is gone from the target, or was written again whole.
    const now = await readFile(changed).catch(() => null);
    if (now) expect(createHash('sha256').update(now).digest('hex')).toBe(first!.split('/')[1]);
    expect((await kd('check', '--tier', 'cold')).code).toBe(2);
  });

  it('a pack lost on the NAS is stored again by the next backup, though a target has a copy', async () => {
    const src = join(work, 'photos');
    const staged = (await filesUnder(join(usb1, 'packs')))[0]!;
    await rm(join(c.dataDir, 'packs', staged));
    expect((await kd('check', '--json')).code).toBe(1);
    const again = await runKinvault(anna, ['backup', src, '--json']);
    expect(again.code).toBe(0);
    const summary = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as {
      packs_uploaded: number;
    };
    expect(summary.packs_uploaded).toBeGreaterThan(0);
  });

  it('refuses to remove a target holding the only off-site copy, unless --force', async () => {
    const refused = await kd('target', 'remove', 'usb2');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/holds the only off-site copy of \d+ pack\(s\)/);
    const forced = await kd('target', 'remove', 'usb2', '--force', '--json');
    expect(forced.code).toBe(0);
    expect((JSON.parse(forced.stdout) as { unprotected: number }).unprotected).toBeGreaterThan(0);
    expect((await targets()).map((t) => t.name)).toEqual(['usb1']);
    expect((await filesUnder(join(usb2, 'packs'))).length).toBeGreaterThan(0); // left there
    expect((await kd('target', 'remove', 'usb2')).code).toBe(2);
  });

  it("changes a target's quota, and refuses what is not a size or not a target", async () => {
    const raised = await kd('target', 'set', 'usb1', '--quota', '25MB', '--json');
    expect(raised.code).toBe(0);
    expect(JSON.parse(raised.stdout)).toMatchObject({ name: 'usb1', quotaBytes: 25e6 });
    expect((await kd('target', 'set', 'usb1', '--quota', 'lots')).code).toBe(2);
    const missing = await kd('target', 'set', 'nope', '--quota', '1GB');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/There is no target "nope"/);
    expect((await kd('target', 'set', 'usb1', '--quota', 'none')).code).toBe(0);
    expect((await targets())[0]!.quotaBytes).toBeNull();
  });

  it('says so when a quota leaves no room for the snapshots, key files and catalogs', async () => {
    await mkdir(join(work, 'tiny'));
    const tiny = `file://${join(work, 'tiny', 'kinvault')}`;
    const args = ['--role', 'staging', '--allow-same-disk', '--quota', '1KB'];
    expect((await kd('target', 'add', 'tiny', tiny, ...args)).code).toBe(0);
    await expect
      .poll(async () => (await targets()).find((t) => t.name === 'tiny')?.lastError ?? null, {
        timeout: 30_000,
        interval: 500,
      })
      .toMatch(/"tiny" has no room under its quota for .* of snapshots, key files and catalogs/);
    expect((await kd('status')).stdout).toMatch(/target tiny \(staging\): .*FAILING since/);
    expect(await filesUnder(join(work, 'tiny', 'kinvault', 'keys')).catch(() => [])).toEqual([]);
    expect((await kd('target', 'remove', 'tiny')).code).toBe(0);
  });
});
