/** Snapshots: commit a sealed manifest once its packs are stored, list, fetch. */
import { z } from 'zod';
import { base64, bytes, hex64 } from './inputs.js';
import { deviceProcedure, router } from './procedures.js';

export const snapshotsRouter = router({
  commit: deviceProcedure
    .input(
      z
        .object({
          id: hex64,
          sealed: base64,
          packs: z.array(hex64).max(1_000_000),
          /** Aggregates the agent chooses to share, for status and the dedup ratio. */
          totals: z
            .object({
              files: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
              bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
            })
            .strict()
            .optional(),
        })
        .strict(),
    )
    .mutation(({ ctx, input }) =>
      ctx.services.snapshots.commit(ctx.device, {
        id: input.id,
        sealed: bytes(input.sealed),
        packs: input.packs,
        totals: input.totals,
      }),
    ),
  list: deviceProcedure.query(({ ctx }) => ctx.services.snapshots.list()),
  get: deviceProcedure.input(z.object({ id: hex64 }).strict()).query(async ({ ctx, input }) => ({
    sealed: Buffer.from(await ctx.services.snapshots.get(input.id)).toString('base64'),
  })),
});
