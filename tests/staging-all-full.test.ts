/**
 * Every staging target full (issue 10 §4 "When every target is full the NAS keeps
 * accepting backups and status says so plainly"), with the built commands: two folder
 * targets whose quotas hold one pack each but not the next; backups go on, status says
 * that every target is full and what to do, and doing it (a larger quota) drains the rest.
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

interface Offsite {
  unprotectedPacks: number;
  targets: {
    name: string;
    packs: number;
    usedBytes: number;
    full: boolean;
    failingSince: string | null;
  }[];
}

describe('every staging target full (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let anna: string;
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);
  const offsite = async () =>
    (JSON.parse((await kd('status', '--json')).stdout) as { offsite: Offsite }).offsite;

  async function backup(name: string, videos: number): Promise<number> {
    const src = join(work, name);
    await mkdir(src);
    for (let i = 0; i < videos; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(5e6));
    return (await runKinvault(anna, ['backup', src])).code;
  }

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-all-full-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-all-full-work-');
    anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    for (const usb of ['usb1', 'usb2']) {
      await mkdir(join(work, usb));
      const url = `file://${join(work, usb, 'kinvault')}`;
      const args = ['--role', 'staging', '--allow-same-disk', '--quota', '20MB'];
      expect((await kd('target', 'add', usb, url, ...args)).code).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('says plainly that every target is full and what to do, while backups go on', async () => {
    // 60 MB in packs of up to ~25 MB: each 20 MB quota takes one, not the next.
    expect(await backup('photos', 12)).toBe(0);
    await expect
      .poll(async () => (await offsite()).targets.map((t) => t.packs), {
        timeout: 60_000,
        interval: 500,
      })
      .toEqual([1, 1]);
    // The jobs of the packs left have each met two full targets by now.
    await expect
      .poll(
        async () =>
          (
            JSON.parse((await kd('jobs', '--json')).stdout) as {
              kind: string;
              lastError: string | null;
            }[]
          ).filter(
            (j) =>
              j.kind === 'stage.pack' && !/"usb1" is full.*"usb2" is full/.test(j.lastError ?? ''),
          ),
        { timeout: 60_000, interval: 500 },
      )
      .toEqual([]);
    const o = await offsite();
    expect(o.unprotectedPacks).toBeGreaterThan(0);
    for (const t of o.targets) {
      // Under 98 % of the quota: not full by the rule status had before.
      expect(t.usedBytes).toBeLessThan(0.98 * 20e6);
      expect(t).toMatchObject({ full: true, failingSince: null });
    }
    const status = (await kd('status')).stdout;
    expect(status).toMatch(
      /target usb1 \(staging\): .*FULL \(its 20\.0 MB quota cannot take the next pack/,
    );
    expect(status).toMatch(
      /target usb2 \(staging\): .*FULL \(its 20\.0 MB quota cannot take the next pack/,
    );
    expect(status).toMatch(
      /\d+ pack\(s\) do not yet have 1 off-site copy .*Every target is full: backups go on to the NAS alone\. Raise a quota \("kinvaultd target set NAME --quota SIZE"\), make room at a target or add one \("kinvaultd target add"\)\./,
    );
    // The NAS keeps taking backups.
    expect(await backup('more', 1)).toBe(0);
  });

  it('drains what waited once a quota is raised', async () => {
    expect((await kd('target', 'set', 'usb2', '--quota', 'none')).code).toBe(0);
    await expect
      .poll(async () => (await offsite()).unprotectedPacks, { timeout: 60_000, interval: 500 })
      .toBe(0);
    expect((await kd('status')).stdout).toMatch(/Every pack has 1 verified off-site copy/);
    expect((await offsite()).targets.find((t) => t.name === 'usb2')?.full).toBe(false);
  });
});
