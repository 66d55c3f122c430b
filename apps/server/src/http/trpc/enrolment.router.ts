/** Enrollment: a device trades a single-use code's token for its device token. */
import { z } from 'zod';
import { publicProcedure, router } from './procedures.js';

export const enrolmentRouter = router({
  enroll: publicProcedure
    .input(z.object({ token: z.string().min(20).max(200) }).strict())
    .mutation(async ({ ctx, input }) => {
      const r = await ctx.services.devices.enroll(input.token);
      return {
        deviceToken: r.deviceToken,
        device: r.device.name,
        household: await ctx.services.household.get(),
      };
    }),
});
