/**
 * Packs: declarations (before the tus upload, http/tus.ts), damage reports, and which
 * packs the coordinator lacks. Downloads are a plain route (http/packs.route.ts).
 */
import { z } from 'zod';
import { MAX_PACK_ENTRIES } from '@kinvault/format';
import { hex64 } from './inputs.js';
import { deviceProcedure, router } from './procedures.js';

export const packsRouter = router({
  declare: deviceProcedure
    .input(
      z
        .object({
          name: hex64,
          size: z.number().int().positive(),
          blobs: z.array(
            z.object({ type: z.union([z.literal(1), z.literal(2)]), id: hex64 }).strict(),
          ),
        })
        .strict(),
    )
    .mutation(({ ctx, input }) => ctx.services.packs.declare(ctx.device, input)),
  /** A pack this device could not read, or whose blobs failed their checks. */
  reportDamage: deviceProcedure
    .input(
      z
        .object({
          pack: hex64,
          blobs: z.array(hex64).max(MAX_PACK_ENTRIES),
          reason: z.enum(['missing', 'unreadable', 'corrupt']),
        })
        .strict(),
    )
    .mutation(({ ctx, input }) => ctx.services.packs.reportDamage(ctx.device, input)),
  missing: deviceProcedure
    .input(z.object({ names: z.array(hex64).max(100_000) }).strict())
    .mutation(async ({ ctx, input }) => ({
      names: await ctx.services.packs.missing(input.names),
    })),
});
