/** The household: its public keys and its two key files (design §4.6). */
import { z } from 'zod';
import { base64, bytes } from './inputs.js';
import { deviceProcedure, router } from './procedures.js';

export const householdRouter = router({
  get: deviceProcedure.query(({ ctx }) => ctx.services.household.get()),
  create: deviceProcedure
    .input(
      z
        .object({
          repositoryId: base64,
          boxPublicKey: base64,
          signPublicKey: base64,
          passphraseKeyFile: base64,
          recoveryKeyFile: base64,
        })
        .strict(),
    )
    .mutation(({ ctx, input }) =>
      ctx.services.household.create({
        repositoryId: bytes(input.repositoryId),
        boxPublicKey: bytes(input.boxPublicKey),
        signPublicKey: bytes(input.signPublicKey),
        passphraseKeyFile: bytes(input.passphraseKeyFile),
        recoveryKeyFile: bytes(input.recoveryKeyFile),
      }),
    ),
  /** Replaces a key file; refused unless signed with the household's key (§4.6). */
  replaceKeyFile: deviceProcedure
    .input(
      z
        .object({
          kind: z.union([z.literal(1), z.literal(2)]),
          keyFile: base64,
          signature: base64,
        })
        .strict(),
    )
    .mutation(({ ctx, input }) =>
      ctx.services.household.replaceKeyFile(ctx.device, {
        kind: input.kind,
        keyFile: bytes(input.keyFile),
        signature: bytes(input.signature),
      }),
    ),
});
