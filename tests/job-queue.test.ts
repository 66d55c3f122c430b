/**
 * The job queue against real PostgreSQL (the embedded server of a coordinator's data
 * directory): transactional enqueue, de-duplication, one claim per job across workers,
 * backoff, failure, retry, and leases of dead workers reclaimed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KinvaultError } from '@kinvault/protocol';
import { loadConfig } from '../apps/server/src/config.js';
import { openDatabase, type Database } from '../apps/server/src/db/database.js';
import { migrate } from '../apps/server/src/db/migrate.js';
import { jobQueue, type Job } from '../apps/server/src/queue/queue.js';
import { repositoriesOf } from '../apps/server/src/repositories/index.js';
import { startWorkers } from '../apps/server/src/queue/workers.js';
import { initCoordinator, removeTempDirs, runKinvaultd } from './support/kinvaultd.js';

describe('job queue (real PostgreSQL)', () => {
  let db: Database;
  let dataDir: string;
  const quiet = { info: () => {}, warn: () => {} };

  beforeAll(async () => {
    ({ dataDir } = await initCoordinator('kinvault-jobs-'));
    db = await openDatabase(dataDir, await loadConfig(dataDir), { role: 'command' });
    await migrate(db.sql);
  }, 120_000);

  afterAll(async () => {
    await db?.close();
    await removeTempDirs();
  });

  const clear = () => db.sql`delete from jobs`;

  it("runs repositories in the caller's transaction: their changes and its jobs commit or roll back together", async () => {
    await clear();
    const q = jobQueue(db.sql, { workerId: 'w1' });
    const target = { name: 'usb', url: 'file:///mnt/usb', role: 'staging', quotaBytes: null };
    await db.sql
      .begin(async (tx) => {
        const repos = repositoriesOf(tx);
        expect(await repos.targets.add(target)).toBe(true);
        await repos.targets.remove('usb'); // its own transaction: a savepoint here
        expect(await repos.targets.add(target)).toBe(true);
        await q.enqueue(tx, 'stage.scan', 'all');
        expect((await repos.targets.list()).map((t) => t.name)).toEqual(['usb']);
        throw new Error('the change fails');
      })
      .then(
        () => expect.unreachable(),
        (e: unknown) => expect((e as Error).message).toBe('the change fails'), // not an assertion's
      );
    const pool = repositoriesOf(db.sql);
    expect(await pool.targets.list()).toEqual([]);
    expect(await q.list()).toEqual([]);
    await db.sql.begin(async (tx) => {
      await repositoriesOf(tx).targets.add(target);
      await q.enqueue(tx, 'stage.scan', 'all');
    });
    expect((await pool.targets.list()).map((t) => t.name)).toEqual(['usb']);
    expect((await q.list()).map((j) => j.kind)).toEqual(['stage.scan']);
    await pool.targets.remove('usb');
  });

  it('forgets the uploads of packs that need no copy at that target any more', async () => {
    const repos = repositoriesOf(db.sql);
    const target = (name: string) => ({
      name,
      url: `file:///mnt/${name}`,
      role: 'staging',
      quotaBytes: null,
    });
    await repos.targets.add(target('usb'));
    await repos.targets.add(target('cloud'));
    const [placed, waiting, gone] = ['aa', 'bb', 'cc'].map((b) => b.repeat(32));
    for (const name of [placed, waiting])
      await db.sql`insert into packs (name, size) values (${Buffer.from(name!, 'hex')}, 10)`;
    await db.sql`insert into pack_locations (pack, location, state)
                 values (${Buffer.from(placed!, 'hex')}, 'nas', 'ok'),
                        (${Buffer.from(placed!, 'hex')}, 'staging:usb', 'ok'),
                        (${Buffer.from(waiting!, 'hex')}, 'nas', 'ok')`;
    for (const name of [placed, waiting, gone])
      await repos.uploads.save('cloud', `packs/${name!.slice(0, 2)}/${name}`, `state-${name}`);
    // One copy wanted: the pack at usb needs none at cloud, the one no longer on the NAS
    // neither; the waiting one keeps its upload.
    expect(await repos.uploads.dropSettled('cloud', 1)).toBe(2);
    expect(await repos.uploads.statesAt('cloud')).toEqual([`state-${waiting}`]);
    await repos.targets.remove('usb');
    await repos.targets.remove('cloud');
    await db.sql`delete from pack_locations`;
    await db.sql`delete from packs`;
  });

  it("enqueues in the caller's transaction, one live job per kind and key", async () => {
    await clear();
    const q = jobQueue(db.sql, { workerId: 'w1' });
    await db.sql
      .begin(async (tx) => {
        expect(await q.enqueue(tx, 'stage', 'pack-a')).toBe(true);
        throw new Error('the change fails');
      })
      .catch(() => {});
    expect(await q.list()).toEqual([]);
    await db.sql.begin(async (tx) => {
      expect(await q.enqueue(tx, 'stage', 'pack-a', { n: 1 })).toBe(true);
      expect(await q.enqueue(tx, 'stage', 'pack-a', { n: 2 })).toBe(false);
      expect(await q.enqueue(tx, 'check', 'pack-a')).toBe(true);
    });
    const jobs = await q.list();
    expect(jobs.map((j) => [j.kind, j.key, j.payload, j.state])).toEqual([
      ['stage', 'pack-a', { n: 1 }, 'pending'],
      ['check', 'pack-a', {}, 'pending'],
    ]);
  });

  it('gives each job to one worker, even when workers claim at once', async () => {
    await clear();
    const a = jobQueue(db.sql, { workerId: 'a' });
    const b = jobQueue(db.sql, { workerId: 'b' });
    for (let i = 0; i < 40; i++) await a.enqueue(db.sql, 'stage', `p${i}`);
    const claimed: Job[] = [];
    const drain = async (q: typeof a) => {
      for (let job = await q.claim(['stage']); job; job = await q.claim(['stage'])) {
        claimed.push(job);
        await q.complete(job);
      }
    };
    await Promise.all([drain(a), drain(b), drain(a), drain(b)]);
    expect(claimed.map((j) => j.key).sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => `p${i}`).sort(),
    );
    expect(await a.list()).toEqual([]);
    expect(await a.claim(['other'])).toBeNull();
  });

  it('retries a retryable failure after a backoff, fails a final one, and retry puts it back', async () => {
    await clear();
    const q = jobQueue(db.sql, { workerId: 'w' });
    await q.enqueue(db.sql, 'stage', 'flaky', {}, { maxAttempts: 2 });
    await q.enqueue(db.sql, 'stage', 'refused');
    const flaky = (await q.claim(['stage']))!;
    await q.fail(flaky, new KinvaultError('UNAVAILABLE', 'target down', { retryable: true }));
    const [again] = await q.list();
    expect(again).toMatchObject({
      key: 'flaky',
      state: 'pending',
      attempts: 1,
      lastError: 'target down',
    });
    expect(again!.runAfter.getTime()).toBeGreaterThan(Date.now() + 3000); // 5 s ± 20 %
    const refused = (await q.claim(['stage']))!;
    expect(refused.key).toBe('refused'); // the flaky one is not due yet
    await q.fail(refused, new KinvaultError('INVALID_ARGUMENT', 'bad target URL'));
    await db.sql`update jobs set run_after = now() where key = 'flaky'`;
    const second = (await q.claim(['stage']))!;
    await q.fail(second, new Error('ECONNRESET'));
    const failed = await q.list();
    expect(failed.map((j) => [j.key, j.state, j.attempts, j.lastError])).toEqual([
      ['flaky', 'failed', 2, 'ECONNRESET'],
      ['refused', 'failed', 1, 'bad target URL'],
    ]);
    // The CLI lists them and retries one.
    const listed = await runKinvaultd(['jobs', '--data-dir', dataDir, '--json']);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { state: string }[]).map((j) => j.state)).toEqual([
      'failed',
      'failed',
    ]);
    const id = failed[0]!.id;
    const retried = await runKinvaultd(['jobs', 'retry', id, '--data-dir', dataDir]);
    expect(retried).toMatchObject({ code: 0 });
    expect((await q.list())[0]).toMatchObject({ id, state: 'pending', attempts: 0 });
    const twice = await runKinvaultd(['jobs', 'retry', id, '--data-dir', dataDir]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/is pending, not failed/);
    expect((await runKinvaultd(['jobs', 'retry', '999999', '--data-dir', dataDir])).code).toBe(2);
  });

  it('reclaims the lease of a worker that died, and the dead worker can no longer finish it', async () => {
    await clear();
    const dead = jobQueue(db.sql, { workerId: 'dead', leaseSeconds: 1 });
    const alive = jobQueue(db.sql, { workerId: 'alive', leaseSeconds: 30 });
    await dead.enqueue(db.sql, 'stage', 'x');
    const job = (await dead.claim(['stage']))!;
    expect(await alive.reclaimStale()).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await alive.reclaimStale()).toBe(1);
    await dead.complete(job); // too late: not its job any more
    expect(await dead.extend(job)).toBe(false);
    const taken = (await alive.claim(['stage']))!;
    expect(taken).toMatchObject({ key: 'x', attempts: 2 });
    await alive.complete(taken);
    expect(await alive.list()).toEqual([]);
  });

  it('never runs the same work twice at once; failing or reclaiming it leaves one pending job', async () => {
    await clear();
    const q = jobQueue(db.sql, { workerId: 'w1' });
    await q.enqueue(db.sql, 'stage.recovery', 'all');
    const first = (await q.claim(['stage.recovery']))!;
    // Enqueued again while it runs (a new commit): pending, but not claimed beside it.
    expect(await q.enqueue(db.sql, 'stage.recovery', 'all')).toBe(true);
    expect(await q.claim(['stage.recovery'])).toBeNull();
    // It fails: the pending job does its work, so it is not put back beside that one.
    await q.fail(first, new KinvaultError('UNAVAILABLE', 'later', { retryable: true }));
    expect((await q.list()).map((j) => j.state)).toEqual(['pending']);

    // Two running jobs of one work left by a dead coordinator (as older versions could
    // leave them) go back as one pending job, not a unique-index failure.
    await clear();
    await db.sql`
      insert into jobs (kind, key, state, locked_by, locked_until)
      values ('stage.recovery', 'all', 'running', 'nas:999999', now() + interval '1 minute'),
             ('stage.recovery', 'all', 'running', 'nas:999999', now() + interval '1 minute'),
             ('stage.pack', 'p', 'running', 'nas:999999', now() + interval '1 minute'),
             ('stage.pack', 'p', 'pending', null, null)`;
    expect(await q.reclaimOrphans('nas', () => false)).toBe(1);
    const left = (await q.list()).map((j) => `${j.kind} ${j.state}`).sort();
    expect(left).toEqual(['stage.pack pending', 'stage.recovery pending']);
  });

  it('runs jobs with workers: a failing handler is retried, a good one completes', async () => {
    await clear();
    const q = jobQueue(db.sql, { workerId: 'runner' });
    let calls = 0;
    const workers = startWorkers({
      queue: q,
      idleMs: 50,
      log: quiet,
      handlers: {
        stage: async (job) => {
          calls++;
          if (job.attempts === 1) throw new Error('first try fails');
        },
      },
    });
    try {
      await q.enqueue(db.sql, 'stage', 'once');
      workers.poke();
      await expect.poll(async () => (await q.list())[0]?.attempts, { timeout: 10_000 }).toBe(1);
      await db.sql`update jobs set run_after = now()`;
      await expect.poll(async () => (await q.list()).length, { timeout: 10_000 }).toBe(0);
      expect(calls).toBe(2);
    } finally {
      await workers.stop();
    }
  });
});
