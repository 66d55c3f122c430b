/** Blob lookups: dedup, where each blob is stored, and what became of lost ones. */
import { z } from 'zod';
import { hex64 } from './inputs.js';
import { deviceProcedure, router } from './procedures.js';

const ids = z.object({ ids: z.array(hex64).max(20_000) }).strict();

export const blobsRouter = router({
  /** Dedup and lookup: which of these blob ids are in available packs, and where. */
  have: deviceProcedure
    .input(ids)
    .mutation(async ({ ctx, input }) => ({ found: await ctx.services.packs.have(input.ids) })),
  /** The available packs that hold these blob ids (each once), and the ids stored in none. */
  packsOf: deviceProcedure
    .input(ids)
    .mutation(({ ctx, input }) => ctx.services.packs.packsOf(input.ids)),
  /** For ids in no available pack: which pack held each and whether it is damaged or missing. */
  lost: deviceProcedure
    .input(ids)
    .mutation(async ({ ctx, input }) => ({ lost: await ctx.services.packs.lost(input.ids) })),
});
