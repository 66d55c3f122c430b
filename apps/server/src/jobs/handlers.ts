/**
 * The job kinds the coordinator runs, each a thin call into one service:
 * - `stage.pack` (key: pack name): place the pack's off-site copies;
 * - `recovery.catalog` (key `all`): seal a fresh catalog of the index into the NAS store
 *   (after commits; waiting ones coalesce), then enqueue `stage.recovery`;
 * - `stage.recovery` (key `all`): copy manifests, key files and catalogs to the targets;
 * - `stage.scan` (key `all`): enqueue `stage.pack` for every pack that lacks copies
 *   (after a target was added or removed, and at start), and `volume.fill`;
 * - `volume.fill` (key `all`; enqueued with every pack committed): seal the volumes the
 *   packs waiting at each archive target fill, then enqueue that target's `volume.upload`;
 * - `volume.upload` (key: archive target): take that target's volumes to verified, one
 *   after the other (one upload at a time per target).
 */
import type { JobHandler } from '../queue/workers.js';
import { STAGING_ATTEMPTS, type Context } from '../app/compose.js';

export function jobHandlers(ctx: Context): Record<string, JobHandler> {
  const enqueue = (kind: string, key: string) =>
    ctx.queue.enqueue(ctx.db.sql, kind, key, {}, { maxAttempts: STAGING_ATTEMPTS });
  return {
    'stage.pack': async (job) => {
      const size = await ctx.packStore.size(job.key);
      if (size === null) return; // not on the NAS any more: a check reports it
      await ctx.staging.stagePack(job.key, size);
    },
    'recovery.catalog': async () => {
      await ctx.recovery.writeCatalog();
      await enqueue('stage.recovery', 'all');
    },
    'stage.recovery': async () => void (await ctx.staging.stageRecovery()),
    'stage.scan': async () => {
      // Through every pack short of copies, a page at a time (by name).
      let after: Buffer | undefined;
      for (;;) {
        const packs = await ctx.staging.unprotected(1000, after);
        await ctx.queue.enqueueMany(
          ctx.db.sql,
          'stage.pack',
          packs.map((p) => p.toString('hex')),
          { maxAttempts: STAGING_ATTEMPTS },
        );
        if (packs.length < 1000) break;
        after = packs[packs.length - 1];
      }
      await enqueue('stage.recovery', 'all');
      await enqueue('volume.fill', 'all');
    },
    'volume.fill': async () => {
      for (const t of await ctx.targets.list()) {
        if (t.role !== 'archive') continue;
        await ctx.volumes.fill(t.name);
        if ((await ctx.volumes.list(t.name)).some((v) => v.state !== 'verified'))
          await enqueue('volume.upload', t.name);
      }
    },
    'volume.upload': async (job) => {
      for (const v of await ctx.volumes.list(job.key))
        if (v.state !== 'verified') await ctx.volumes.upload(v.id);
    },
  };
}
