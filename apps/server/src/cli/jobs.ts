/** kinvaultd jobs [retry ID]: the background work waiting, running or given up. */
import { withContext } from './context.js';
import type { Job } from '../queue/queue.js';

const shown = (j: Job) => ({
  id: j.id,
  kind: j.kind,
  key: j.key,
  state: j.state,
  attempts: j.attempts,
  maxAttempts: j.maxAttempts,
  runAfter: j.runAfter.toISOString(),
  lastError: j.lastError,
  createdAt: j.createdAt.toISOString(),
});

export async function runJobsList(opts: { dataDir: string; json?: boolean }): Promise<void> {
  const jobs = await withContext(opts.dataDir, (ctx) => ctx.queue.list());
  if (opts.json) {
    console.log(JSON.stringify(jobs.map(shown)));
    return;
  }
  if (jobs.length === 0) {
    console.log('No background work is waiting, running or failed.');
    return;
  }
  console.log('ID       STATE     KIND              TRIES  NEXT TRY                  WHAT');
  for (const j of jobs) {
    console.log(
      `${j.id.padStart(7)}  ${j.state.padEnd(8)}  ${j.kind.padEnd(16)}  ${`${j.attempts}/${j.maxAttempts}`.padStart(5)}  ${j.runAfter.toISOString().padEnd(24)}  ${j.key}`,
    );
    if (j.lastError) console.log(`         last error: ${j.lastError}`);
  }
  if (jobs.some((j) => j.state === 'failed'))
    console.log('"kinvaultd jobs retry ID" runs a failed job again once its cause is fixed.');
}

export async function runJobsRetry(
  id: string,
  opts: { dataDir: string; json?: boolean },
): Promise<void> {
  const job = await withContext(opts.dataDir, (ctx) => ctx.queue.retry(id));
  if (opts.json) {
    console.log(JSON.stringify(shown(job)));
    return;
  }
  console.log(`Job ${id} (${job.kind} ${job.key}) will run again shortly.`);
}
