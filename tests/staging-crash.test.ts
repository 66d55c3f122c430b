/**
 * kill -9 of the coordinator while it stages packs to a file target (issue 10 §5):
 * after restarts, staging completes by itself; every pack is at the target once, whole,
 * and no temporary file is left there.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
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

describe('staging survives kill -9 (built commands)', () => {
  let c: Coordinator;
  let work: string;
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);
  const pending = async () => (JSON.parse((await kd('jobs', '--json')).stdout) as unknown[]).length;

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-staging-kill-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-staging-kill-work-');
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('completes staging after kills at random moments, with nothing partial or doubled', async () => {
    const anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    const usb = join(work, 'usb', 'kinvault');
    await mkdir(join(work, 'usb'));
    // The disk is unplugged during the backup, so a backlog waits when kills begin; each
    // restart retries it at once.
    expect(
      (await kd('target', 'add', 'usb', `file://${usb}`, '--role', 'staging', '--allow-same-disk'))
        .code,
    ).toBe(0);
    const marker = join(usb, '.kinvault-target');
    await rename(marker, `${marker}.away`);
    const src = join(work, 'videos');
    await mkdir(src);
    for (let i = 0; i < 24; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(6e6));
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    await expect.poll(pending, { timeout: 30_000 }).toBeGreaterThan(4);
    await rename(`${marker}.away`, marker);
    expect(await c.stop('SIGKILL')).toBe(null);
    c = await startCoordinator(c.dataDir, c.port);

    // A start that finds jobs a killed coordinator held says so: that kill hit a copy.
    let hits = 0;
    for (let k = 0; k < 4; k++) {
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 250)));
      const log = c.log();
      expect(await c.stop('SIGKILL'), log).toBe(null); // (not already ended on its own)
      c = await startCoordinator(c.dataDir, c.port);
      if (/jobs a stopped coordinator held run again/.test(c.log())) hits++;
    }
    await expect.poll(pending, { timeout: 90_000, interval: 500 }).toBe(0);

    const nas = (await filesUnder(join(c.dataDir, 'packs'))).map((p) => p.split('/')[1]!);
    const staged = await filesUnder(join(usb, 'packs'));
    expect(staged.map((p) => p.split('/')[1]!)).toEqual(nas);
    for (const p of staged)
      expect(
        createHash('sha256')
          .update(await readFile(join(usb, 'packs', p)))
          .digest('hex'),
      ).toBe(p.split('/')[1]);
    expect((await filesUnder(join(usb, '.tmp'))).length).toBe(0);
    const where = JSON.parse((await kd('status', '--json')).stdout) as {
      offsite: { unprotectedPacks: number };
    };
    expect(where.offsite.unprotectedPacks).toBe(0);
    console.log(`staging kill -9 test: ${hits} of 4 kills hit a copy in progress`);
  });
});
