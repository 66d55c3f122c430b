/**
 * Verify before record (issue 10 §4 "After each copy the coordinator verifies it"), with
 * real PostgreSQL, the real staging service and job workers: a target that keeps other
 * bytes than it was sent (the faulty twin around a folder target) gets no recorded
 * copy; the job fails retryably with what went wrong, and its retry copies the pack
 * again, verified and recorded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore, metered, objectKeys } from '@kinvault/stores';
import { FaultyStore } from '@kinvault/stores/testing';
import { openContext, type Context } from '../apps/server/src/app/compose.js';
import { jobHandlers } from '../apps/server/src/jobs/handlers.js';
import { startWorkers, type Workers } from '../apps/server/src/queue/workers.js';
import { repositoriesOf } from '../apps/server/src/repositories/index.js';
import { stagingService } from '../apps/server/src/services/staging.service.js';
import {
  initCoordinator,
  removeTempDirs,
  startCoordinator,
  traversableTempDir,
} from './support/kinvaultd.js';
import { enrollDevice, runKinvault } from './support/kinvault.js';
import { filesUnder } from './support/files.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('a target that stores other bytes (real PostgreSQL, staging service, job workers)', () => {
  let ctx: Context;
  let workers: Workers | undefined;
  let pack: string;
  let folder: string;
  let faulty: FaultyStore;

  beforeAll(async () => {
    // A real pack, from a real backup, on a coordinator that then stops.
    const { dataDir, port } = await initCoordinator('kinvault-verify-');
    const c = await startCoordinator(dataDir, port);
    const work = await traversableTempDir('kinvault-verify-work-');
    await enrollDevice(dataDir, 'anna-laptop', join(work, 'anna'));
    const src = join(work, 'photos');
    await mkdir(src);
    await writeFile(join(src, 'IMG_1.jpg'), randomBytes(3e6));
    expect((await runKinvault(join(work, 'anna'), ['backup', src])).code).toBe(0);
    await c.stop();
    pack = (await filesUnder(join(dataDir, 'packs')))[0]!.split('/')[1]!;

    ctx = await openContext(dataDir, { notice: () => {} });
    folder = join(work, 'usb', 'kinvault');
    await mkdir(join(work, 'usb'));
    const disk = new FileStore(folder);
    await disk.initialise();
    faulty = new FaultyStore(disk);
    const url = `file://${folder}`;
    const repos = repositoriesOf(ctx.db.sql);
    await repos.targets.add({
      name: 'usb',
      url,
      role: 'staging',
      quotaBytes: null,
    });
    const staging = stagingService({
      targets: repos.targets,
      uploads: repos.uploads,
      packs: ctx.packStore,
      nas: new FileStore(dataDir),
      open: () => metered(faulty),
      raw: () => disk,
      copies: 1,
    });
    await ctx.db.sql`delete from jobs`; // the backup's own, done with no target then
    const handlers = jobHandlers({ ...ctx, staging });
    workers = startWorkers({
      queue: ctx.queue,
      handlers: { 'stage.pack': handlers['stage.pack']! },
      concurrency: 1,
      idleMs: 50,
      log: { info: () => {}, warn: () => {} },
    });
  }, 120_000);

  afterAll(async () => {
    await workers?.stop();
    await ctx?.db.close();
    await removeTempDirs();
  });

  it('records no copy that does not read back as written; the job retries and then records it', async () => {
    const targets = repositoriesOf(ctx.db.sql).targets;
    const name = Buffer.from(pack, 'hex');
    faulty.corruptNextPut('flip');
    await ctx.queue.enqueue(ctx.db.sql, 'stage.pack', pack, {}, { maxAttempts: 5 });
    workers!.poke();
    await expect
      .poll(async () => (await ctx.queue.list()).find((j) => j.key === pack)?.lastError ?? null, {
        timeout: 30_000,
        interval: 100,
      })
      .toMatch(/does not read back as written/);
    const [job] = await ctx.queue.list();
    expect(job).toMatchObject({ kind: 'stage.pack', state: 'pending', attempts: 1 });
    expect(job!.runAfter.getTime()).toBeGreaterThan(Date.now()); // after a backoff
    // Nothing recorded; the target is named as failing, with the reason.
    expect(await targets.packCopies(name)).toEqual({ staging: [], volumes: 0 });
    const [t] = await targets.list();
    expect(t!.failingSince).not.toBeNull();
    expect(t!.lastError).toMatch(/pack [0-9a-f]{12} at target "usb" does not read back as written/);
    const there = join(folder, objectKeys.pack(pack));
    expect(sha256(await readFile(there))).not.toBe(pack); // the bad bytes are what it kept

    // The retry (made due now) finds the bad copy, sends the pack again and records it.
    await ctx.queue.dueNow(['stage.pack']);
    workers!.poke();
    await expect
      .poll(async () => (await ctx.queue.list()).length, { timeout: 30_000, interval: 100 })
      .toBe(0);
    expect(await targets.packCopies(name)).toEqual({ staging: ['usb'], volumes: 0 });
    expect(sha256(await readFile(there))).toBe(pack);
    expect((await targets.list())[0]!.failingSince).toBeNull();
    expect(faulty.calls.put).toBe(2);
  });
});
