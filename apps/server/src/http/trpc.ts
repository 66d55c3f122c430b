/**
 * The control plane (tRPC). Each procedure parses input with zod, authorises and calls
 * one service; KinvaultErrors become tRPC errors here and nowhere else.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { edgeOf, isKinvaultError } from '@kinvault/protocol';
import { MAX_PACK_ENTRIES } from '@kinvault/format';
import type { DevicesService } from '../services/devices.service.js';
import type { HouseholdService } from '../services/household.service.js';
import type { PacksService, Device } from '../services/packs.service.js';
import type { SnapshotsService } from '../services/snapshots.service.js';
import type { EventBus } from '../services/events.js';
import { internalErrorMessage, referenceOf } from './errors.js';

export interface Services {
  events: EventBus;
  devices: DevicesService;
  household: HouseholdService;
  packs: PacksService;
  snapshots: SnapshotsService;
}

export interface TrpcContext {
  services: Services;
  device: Device | null;
}

const t = initTRPC.context<TrpcContext>().create({
  // Never put stacks in responses, whatever NODE_ENV says.
  isDev: false,
  /**
   * The shape is built field by field, so nothing else (a stack, a cause) can slip in.
   * An internal failure (anything that is not a KinvaultError: a database error, a bug)
   * gets a generic message with a reference; server.ts logs the details under it.
   */
  errorFormatter({ shape, error }) {
    const kinvault = isKinvaultError(error.cause) ? error.cause : null;
    const internal = error.code === 'INTERNAL_SERVER_ERROR' && !kinvault;
    return {
      code: shape.code,
      message: internal ? internalErrorMessage(referenceOf(error)) : shape.message,
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        path: shape.data.path,
        kinvaultCode: kinvault?.code ?? null,
      },
    };
  },
});

/** Maps service errors to tRPC errors with the same message. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && isKinvaultError(result.error.cause)) {
    const e = result.error.cause;
    const code = edgeOf(e.code).trpc; // (never 503: see error-edges.ts)
    throw new TRPCError({ code, message: e.message, cause: e });
  }
  return result;
});

const publicProcedure = t.procedure.use(mapErrors);
const deviceProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.device) {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message:
        'This device is not enrolled or was revoked. Enroll it again with a code from "kinvaultd device add".',
    });
  }
  return next({ ctx: { ...ctx, device: ctx.device } });
});

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const base64 = z
  .string()
  .max(24 * 1024 * 1024)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

export const appRouter = t.router({
  /** Live events (websocket): packs stored, snapshots committed. */
  events: deviceProcedure.subscription(async function* ({ ctx, signal }) {
    yield* ctx.services.events.subscribe(signal);
  }),

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

  household: t.router({
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
  }),

  blobs: t.router({
    /** Dedup and lookup: which of these blob ids are in available packs, and where. */
    have: deviceProcedure
      .input(z.object({ ids: z.array(hex64).max(20_000) }).strict())
      .mutation(async ({ ctx, input }) => ({ found: await ctx.services.packs.have(input.ids) })),
    /** The available packs that hold these blob ids (each once), and the ids stored in none. */
    packsOf: deviceProcedure
      .input(z.object({ ids: z.array(hex64).max(20_000) }).strict())
      .mutation(({ ctx, input }) => ctx.services.packs.packsOf(input.ids)),
    /** For ids in no available pack: which pack held each and whether it is damaged or missing. */
    lost: deviceProcedure
      .input(z.object({ ids: z.array(hex64).max(20_000) }).strict())
      .mutation(async ({ ctx, input }) => ({ lost: await ctx.services.packs.lost(input.ids) })),
  }),

  packs: t.router({
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
  }),

  snapshots: t.router({
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
  }),
});

export type AppRouter = typeof appRouter;
