/**
 * A job queue in PostgreSQL, on the same postgres.js connection pool as everything else
 * (design §20). Our own, not a library: pg-boss and graphile-worker drive PostgreSQL
 * through `pg`, a second driver with its own pool, and enqueueing a job in the same
 * transaction as the change that causes it needs the caller's transaction.
 *
 * Contract:
 * - `enqueue(tx, …)` inside the caller's transaction: the job exists exactly when the
 *   change commits. At most one pending job per kind and key: a second enqueue while
 *   one waits is a no-op, so a job must do its work from the state it finds when it
 *   runs, never from its payload alone. A job enqueued while one with its key runs is
 *   a new pending job (the running one may have looked before the change).
 * - `claim` gives each due job to one worker (FOR UPDATE SKIP LOCKED) with a lease; a
 *   worker extends it while it works. A lease that ran out (kill -9) is reclaimed by
 *   `reclaimStale` and the job runs again: handlers are idempotent.
 * - A failure is retried with exponential backoff (5 s doubling, at most 1 h, ±20 %)
 *   until `max_attempts`, or at once marked failed when it is not retryable; the last
 *   error is kept. `retry(id)` puts a failed job back.
 */
import type { Sql, TransactionSql } from 'postgres';
import { KinvaultError } from '@kinvault/protocol';

export interface Job {
  id: string;
  kind: string;
  key: string;
  payload: Record<string, unknown>;
  state: 'pending' | 'running' | 'failed';
  attempts: number;
  maxAttempts: number;
  runAfter: Date;
  lastError: string | null;
  createdAt: Date;
}

interface JobRow {
  id: string;
  kind: string;
  key: string;
  payload: Record<string, unknown>;
  state: Job['state'];
  attempts: number;
  max_attempts: number;
  run_after: Date;
  last_error: string | null;
  created_at: Date;
}

const toJob = (r: JobRow): Job => ({
  id: String(r.id),
  kind: r.kind,
  key: r.key,
  payload: r.payload,
  state: r.state,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  runAfter: r.run_after,
  lastError: r.last_error,
  createdAt: r.created_at,
});

/** Seconds before retry `attempt` (1-based): 5 s doubling, at most an hour, ±20 %. */
export function backoffSeconds(attempt: number, random = Math.random): number {
  const base = Math.min(3600, 5 * 2 ** Math.max(0, attempt - 1));
  return base * (0.8 + 0.4 * random());
}

export type Db = Sql | TransactionSql;

export interface EnqueueOptions {
  /** Not before this many seconds from now. */
  delaySeconds?: number;
  maxAttempts?: number;
}

export function jobQueue(sql: Sql, opts: { workerId: string; leaseSeconds?: number }) {
  const lease = opts.leaseSeconds ?? 60;

  /**
   * Puts these running jobs back to pending, `error` recorded, due after `delay` seconds.
   * At most one job per kind and key may be pending: a job whose work is pending again
   * already, or that shares it with another of these, is deleted instead (the pending one
   * does it). The table is locked meanwhile, so that no enqueue slips in between.
   */
  async function backToPending(
    ids: string[],
    error: string | null,
    delay = 0,
    holder: string | null = null,
  ): Promise<number> {
    if (ids.length === 0) return 0;
    return sql.begin(async (tx) => {
      await tx`lock table jobs in share row exclusive mode`;
      await tx`
        delete from jobs j where j.id = any(${ids}::bigint[]) and j.state = 'running'
          and (${holder}::text is null or j.locked_by = ${holder}) and (
          exists (select 1 from jobs p where p.kind = j.kind and p.key = j.key and p.state = 'pending')
          or exists (select 1 from jobs o where o.id = any(${ids}::bigint[])
                     and o.kind = j.kind and o.key = j.key and o.id < j.id))`;
      const rows = await tx`
        update jobs set state = 'pending', locked_by = null, locked_until = null,
          run_after = now() + make_interval(secs => ${delay}),
          last_error = coalesce(${error}, last_error, 'its worker stopped while running it'),
          updated_at = now()
        where id = any(${ids}::bigint[]) and state = 'running'
          and (${holder}::text is null or locked_by = ${holder})
        returning id`;
      return rows.length;
    });
  }

  return {
    /** Adds a job in `tx` (the caller's transaction); false if a pending one has the key. */
    async enqueue(
      tx: Db,
      kind: string,
      key: string,
      payload: Record<string, unknown> = {},
      o: EnqueueOptions = {},
    ): Promise<boolean> {
      const rows = await tx`
        insert into jobs (kind, key, payload, run_after, max_attempts)
        values (${kind}, ${key}, ${tx.json(payload as never)},
                now() + make_interval(secs => ${o.delaySeconds ?? 0}), ${o.maxAttempts ?? 12})
        on conflict (kind, key) where state = 'pending' do nothing
        returning id`;
      return rows.length > 0;
    },

    /** Adds one job per key (skipping keys with a pending job); returns how many were added. */
    async enqueueMany(tx: Db, kind: string, keys: readonly string[], o: EnqueueOptions = {}) {
      if (keys.length === 0) return 0;
      const rows = await tx`
        insert into jobs (kind, key, max_attempts)
        select ${kind}, k, ${o.maxAttempts ?? 12} from unnest(${keys as string[]}::text[]) as t(k)
        on conflict (kind, key) where state = 'pending' do nothing
        returning id`;
      return rows.length;
    },

    /** The next due job of these kinds, leased to this worker; null if none is due. */
    async claim(kinds: readonly string[]): Promise<Job | null> {
      const [row] = await sql<JobRow[]>`
        with due as (
          select id from jobs
          where state = 'pending' and run_after <= now() and kind = any(${kinds as string[]})
            -- the same work running already: this one runs after it, never beside it
            and not exists (select 1 from jobs r where r.kind = jobs.kind and r.key = jobs.key
                            and r.state = 'running')
          order by run_after, id limit 1
          for update skip locked)
        update jobs j set state = 'running', attempts = j.attempts + 1,
          locked_by = ${opts.workerId}, locked_until = now() + make_interval(secs => ${lease}),
          updated_at = now()
        from due where j.id = due.id
        returning j.*`;
      return row ? toJob(row) : null;
    },

    /** Extends the lease; false if the job is no longer this worker's. */
    async extend(job: Job): Promise<boolean> {
      const rows = await sql`
        update jobs set locked_until = now() + make_interval(secs => ${lease})
        where id = ${job.id} and state = 'running' and locked_by = ${opts.workerId}
        returning id`;
      return rows.length > 0;
    },

    /** The job is done: it is deleted. */
    async complete(job: Job): Promise<void> {
      await sql`delete from jobs where id = ${job.id} and locked_by = ${opts.workerId}`;
    },

    /** Records a failure: a retry after backoff, or failed for good. */
    async fail(job: Job, error: unknown): Promise<void> {
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 2000);
      const retryable = !(error instanceof KinvaultError) || error.retryable;
      const final = !retryable || job.attempts >= job.maxAttempts;
      if (!final) {
        // (only while still this worker's: a job reclaimed meanwhile is left alone)
        await backToPending([job.id], message, backoffSeconds(job.attempts), opts.workerId);
        return;
      }
      await sql`
        update jobs set state = 'failed', run_after = now(), locked_by = null,
          locked_until = null, last_error = ${message}, updated_at = now()
        where id = ${job.id} and locked_by = ${opts.workerId}`;
    },

    /** Puts running jobs whose lease ran out back to pending; returns how many. */
    async reclaimStale(): Promise<number> {
      const rows = await sql<{ id: string }[]>`
        select id from jobs where state = 'running' and locked_until < now()`;
      return backToPending(
        rows.map((r) => r.id),
        null,
      );
    },

    /**
     * At start: jobs still running under a worker of this host whose process is gone
     * (kill -9) go back to pending now, without waiting for their leases to run out.
     * Worker ids are `host:pid`.
     */
    async reclaimOrphans(host: string, alive: (pid: number) => boolean): Promise<number> {
      const holders = await sql<{ locked_by: string }[]>`
        select distinct locked_by from jobs
        where state = 'running' and locked_by like ${`${host}:%`}`;
      const dead = holders
        .map((h) => h.locked_by)
        .filter((id) => id !== opts.workerId && !alive(Number(id.slice(host.length + 1))));
      if (dead.length === 0) return 0;
      const rows = await sql<{ id: string }[]>`
        select id from jobs where state = 'running' and locked_by = any(${dead})`;
      return backToPending(
        rows.map((r) => r.id),
        null,
      );
    },

    /** Makes the pending jobs of these kinds due now (a restart retries at once). */
    async dueNow(kinds: readonly string[]): Promise<number> {
      const rows = await sql`
        update jobs set run_after = now() where state = 'pending' and run_after > now()
          and kind = any(${kinds as string[]}) returning id`;
      return rows.length;
    },

    /** Pending, running and failed jobs, oldest first. */
    async list(): Promise<Job[]> {
      return (await sql<JobRow[]>`select * from jobs order by created_at, id`).map(toJob);
    },

    /** Puts a failed job back as pending with its attempts reset. */
    async retry(id: string): Promise<Job> {
      if (!/^[0-9]{1,18}$/.test(id))
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `"${id}" is not a job id ("kinvaultd jobs" lists them).`,
        );
      const [row] = await sql<JobRow[]>`
        update jobs set state = 'pending', attempts = 0, run_after = now(), updated_at = now()
        where id = ${id} and state = 'failed'
          and not exists (select 1 from jobs l where l.kind = jobs.kind and l.key = jobs.key
                          and l.state = 'pending')
        returning *`;
      if (row) return toJob(row);
      // A pending job for the same work exists: it does what this one would.
      const [dropped] = await sql<JobRow[]>`
        delete from jobs where id = ${id} and state = 'failed' returning *`;
      if (dropped) return { ...toJob(dropped), state: 'pending' };
      const [other] = await sql<{ state: string }[]>`select state from jobs where id = ${id}`;
      throw other
        ? new KinvaultError(
            'FAILED_PRECONDITION',
            `Job ${id} is ${other.state}, not failed: it needs no retry.`,
          )
        : new KinvaultError('NOT_FOUND', `There is no job ${id} ("kinvaultd jobs" lists them).`);
    },
  };
}

export type JobQueue = ReturnType<typeof jobQueue>;
