/**
 * A target whose provider runs out of room (issue 10 §4, §5 "Quota"), with the built
 * commands: a Google Drive (the Drive test server) with a 40 MB storage quota fills, the
 * rest spills to the next target, and the Drive shows as FULL, not failing; after space
 * is freed, `target test` puts it back in use; a Drive that refuses an upload as full
 * while its usage still shows room is handled the same way.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
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
import { start, type DriveServer } from './support/drive-server/index.js';
import { driveTarget } from './support/targets.js';

const MB = 1e6;

interface Target {
  name: string;
  usedBytes: number;
  failingSince: string | null;
  fullSince: string | null;
}

describe('a target whose provider is full (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let drive: DriveServer;
  let anna: string;
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);
  const targets = async () => JSON.parse((await kd('target', 'list', '--json')).stdout) as Target[];
  const target = async (name: string) => (await targets()).find((t) => t.name === name)!;
  const jobs = async () => (JSON.parse((await kd('jobs', '--json')).stdout) as unknown[]).length;

  /** Where each pack of a snapshot has its off-site copy. */
  async function placed(snapshot: string): Promise<string[]> {
    const where = JSON.parse((await kd('where', snapshot, '--json')).stdout) as {
      packs: { locations: { location: string }[] }[];
    };
    return where.packs.map((p) => {
      const off = p.locations.map((l) => l.location).filter((l) => l.startsWith('staging:'));
      expect(off).toHaveLength(1); // the default policy: one copy, on one target
      return off[0]!;
    });
  }

  async function backup(name: string, videos: number): Promise<string> {
    const src = join(work, name);
    await mkdir(src);
    for (let i = 0; i < videos; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(5e6));
    const r = await runKinvault(anna, ['backup', src, '--json']);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { snapshot: string }).snapshot;
  }

  beforeAll(async () => {
    work = await traversableTempDir('kinvault-staging-full-');
    drive = await start({ dir: join(work, 'drive'), quotaBytes: 40 * MB });
    const { dataDir, port } = await initCoordinator('kinvault-staging-full-data-');
    c = await startCoordinator(dataDir, port);
    const { url } = await driveTarget({
      dir: work,
      rootUrl: drive.rootUrl,
      folder: 'Kinvault',
      refreshToken: 'kv-refresh',
      clientSecret: 'kv-secret',
    });
    expect(await kd('target', 'add', 'drive', url, '--role', 'staging')).toMatchObject({ code: 0 });
    await mkdir(join(work, 'usb'));
    const usb = `file://${join(work, 'usb', 'kinvault')}`;
    expect(
      (await kd('target', 'add', 'usb', usb, '--role', 'staging', '--allow-same-disk')).code,
    ).toBe(0);
    anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await drive?.stop();
    await removeTempDirs();
  });

  it('fills the Drive up to its storage quota, spills the rest, and shows it FULL, not failing', async () => {
    const snapshot = await backup('photos', 12); // 60 MB: more than the Drive's 40 MB
    await expect.poll(jobs, { timeout: 60_000, interval: 500 }).toBe(0);
    const places = await placed(snapshot);
    expect(places).toContain('staging:drive'); // a pack is at most ~25 MB: one fits
    expect(places).toContain('staging:usb');
    const d = await target('drive');
    expect(d.usedBytes).toBeLessThanOrEqual(40 * MB);
    expect(d.fullSince).not.toBeNull();
    expect(d.failingSince).toBeNull();
    const status = (await kd('status')).stdout;
    expect(status).toMatch(
      /target drive \(staging\): .*FULL since .*the provider says: it reports/,
    );
    expect(status).toMatch(/Every pack has 1 verified off-site copy/);
    // The recovery objects fitted too: room was kept for them.
    expect(drive.requests['upload.multipart']).toBeGreaterThan(0);
  });

  it('is used again once space was freed and the target tested', async () => {
    drive.setQuota(1000 * MB);
    const tested = await kd('target', 'test', 'drive');
    expect(tested.code).toBe(0);
    expect((await target('drive')).fullSince).toBeNull();
    const snapshot = await backup('more', 2);
    await expect.poll(jobs, { timeout: 60_000, interval: 500 }).toBe(0);
    expect(new Set(await placed(snapshot))).toEqual(new Set(['staging:drive']));
  });

  it('treats a Drive refusing an upload as full, though it reports room, the same way', async () => {
    // Whichever upload comes first (a pack's, resumable or multipart, or a manifest's).
    drive.fail('upload.resumable.start', 1, 'storageQuotaExceeded');
    drive.fail('upload.multipart', 1, 'storageQuotaExceeded');
    const snapshot = await backup('later', 2);
    await expect.poll(jobs, { timeout: 60_000, interval: 500 }).toBe(0);
    const places = await placed(snapshot);
    expect(places).toContain('staging:usb');
    const d = await target('drive');
    expect(d.fullSince).not.toBeNull();
    expect(d.failingSince).toBeNull();
    expect((await kd('status')).stdout).toMatch(/target drive \(staging\): .*FULL since .*is full/);
    expect(c.log()).not.toMatch(/kv-secret|kv-refresh/);
  });
});
