/**
 * Runs jobs: a few loops that claim due jobs of the kinds they have handlers for, keep
 * their leases while a handler runs, and record each outcome. Handlers call one service
 * each (jobs/); this file knows nothing of what the jobs do.
 */
import type { Job, JobQueue } from './queue.js';

export type JobHandler = (job: Job, signal: AbortSignal) => Promise<void>;

export interface WorkerOptions {
  queue: JobQueue;
  handlers: Readonly<Record<string, JobHandler>>;
  /** Jobs run at once. */
  concurrency?: number;
  /** How long an idle loop waits before it looks again. */
  idleMs?: number;
  leaseSeconds?: number;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export interface Workers {
  /** Wakes idle loops (a job was just enqueued). */
  poke(): void;
  /** Stops claiming, aborts running handlers' signals and waits for them. */
  stop(): Promise<void>;
}

export function startWorkers(o: WorkerOptions): Workers {
  const kinds = Object.keys(o.handlers);
  const stop = new AbortController();
  const idleMs = o.idleMs ?? 1000;
  let wake: (() => void)[] = [];
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = wake.filter((w) => w !== done);
        resolve();
      }
      wake.push(done);
      stop.signal.addEventListener('abort', done, { once: true });
    });

  async function runOne(job: Job): Promise<void> {
    const every = Math.max(1, (o.leaseSeconds ?? 60) / 3) * 1000;
    const heartbeat = setInterval(() => void o.queue.extend(job).catch(() => {}), every);
    try {
      await o.handlers[job.kind]!(job, stop.signal);
      await o.queue.complete(job);
    } catch (error) {
      o.log.warn(
        { job: job.id, kind: job.kind, key: job.key, attempt: job.attempts, err: error },
        'job failed',
      );
      await o.queue.fail(job, error);
    } finally {
      clearInterval(heartbeat);
    }
  }

  let reclaimedAt = 0;
  async function loop(): Promise<void> {
    while (!stop.signal.aborted) {
      try {
        // Leases that ran out (a worker killed) are looked for every lease period.
        if (Date.now() - reclaimedAt > (o.leaseSeconds ?? 60) * 1000) {
          reclaimedAt = Date.now();
          const n = await o.queue.reclaimStale();
          if (n > 0) o.log.info({ reclaimed: n }, 'jobs whose worker stopped run again');
        }
        const job = kinds.length ? await o.queue.claim(kinds) : null;
        if (job) await runOne(job);
        else await sleep(idleMs);
      } catch (error) {
        if (stop.signal.aborted) return;
        o.log.warn({ err: error }, 'the job queue cannot be read; trying again');
        await sleep(idleMs * 5);
      }
    }
  }

  const loops = Array.from({ length: o.concurrency ?? 2 }, () => loop());
  return {
    poke: () => wake.forEach((w) => w()),
    async stop() {
      stop.abort();
      await Promise.all(loops);
    },
  };
}
