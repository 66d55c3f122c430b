/**
 * The procedure builders every tRPC router uses. KinvaultErrors become tRPC errors here
 * and nowhere else (codes from the one table, packages/protocol/src/error-edges.ts), and
 * error bodies are built field by field. `deviceProcedure` refuses a request without a
 * valid device token before any service is called; only enrollment is public.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import { edgeOf, isKinvaultError } from '@kinvault/protocol';
import type { Device } from '../../services/packs.service.js';
import type { Services } from '../../services/services.js';
import { internalErrorMessage, referenceOf } from '../errors.js';

export interface TrpcContext {
  services: Services;
  /** The device whose token came with the request; null without a valid one. */
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

export const router = t.router;
export const mergeRouters = t.mergeRouters;

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

/** Anyone who can reach the coordinator: enrollment only. */
export const publicProcedure = t.procedure.use(mapErrors);

/** An enrolled, unrevoked device; `ctx.device` is that device. */
export const deviceProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.device) {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message:
        'This device is not enrolled or was revoked. Enroll it again with a code from "kinvaultd device add".',
    });
  }
  return next({ ctx: { ...ctx, device: ctx.device } });
});
