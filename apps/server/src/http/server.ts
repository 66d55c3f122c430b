/**
 * The coordinator's HTTPS edge: health, tRPC control plane, tus pack uploads, pack
 * downloads. Routes parse input, authorise, call one service and map errors; services
 * know nothing of fastify.
 */
import fastify, { LogController, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import { isKinvaultError } from '@kinvault/protocol';
import type { TlsMaterial } from '../tls.js';
import { authenticate } from './auth.js';
import { internalErrorMessage, referenceOf } from './errors.js';
import { packDownloadRoute } from './packs.route.js';
import type { Services } from '../services/services.js';
import { appRouter, type AppRouter } from './trpc/router.js';
import { tusPlugin } from './tus.js';
import { loggedError } from './log-errors.js';

export interface ServerDeps {
  tls: TlsMaterial;
  services: Services;
  uploadsDir: string;
  /** Incomplete uploads older than this are deleted. */
  uploadExpiryMs: number;
  version: string;
  logLevel?: string;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = fastify({
    https: { key: deps.tls.key, cert: deps.tls.cert },
    // Errors are logged without their properties (an SDK's can hold a bearer token).
    logger: {
      level: deps.logLevel ?? 'info',
      serializers: { err: loggedError, error: loggedError },
    },
    // One line per request is noise on a NAS (a backup makes hundreds): refusals and
    // failures are logged below; every request only at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    bodyLimit: 32 * 1024 * 1024,
    routerOptions: { maxParamLength: 5000 },
  });
  // A route that throws (a file-system error, a bug) answers a generic 500 with a
  // reference, never the error's message (it can name server paths); the log has it.
  app.setErrorHandler((error: Error & { statusCode?: number }, req, reply) => {
    const status = error.statusCode ?? 500;
    if (status < 500) return reply.send(error);
    const ref = referenceOf(error);
    req.log.error({ ref, err: error }, 'internal error');
    return reply.status(500).send({
      statusCode: 500,
      error: 'Internal Server Error',
      message: internalErrorMessage(ref),
    });
  });
  app.addHook('onResponse', async (req, reply) => {
    const fields = {
      method: req.method,
      url: req.url.split('?')[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    };
    if (reply.statusCode >= 500) req.log.error(fields, 'request failed');
    else if (reply.statusCode >= 400) req.log.warn(fields, 'request refused');
    else req.log.debug(fields, 'request completed');
  });
  app.get('/health', async () => ({ status: 'ok', service: 'kinvaultd', version: deps.version }));
  await app.register(websocket);
  await app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    useWSS: true,
    trpcOptions: {
      router: appRouter,
      keepAlive: { enabled: true, pingMs: 30_000, pongWaitMs: 5_000 },
      // Internal failures: the client gets a reference (trpc/procedures.ts), the log the details.
      onError({ error, path, type, req }) {
        if (error.code !== 'INTERNAL_SERVER_ERROR' || isKinvaultError(error.cause)) return;
        req.log.error(
          { ref: referenceOf(error), procedure: path, type, err: error.cause ?? error },
          'internal error',
        );
      },
      createContext: async ({ req }) => ({
        services: deps.services,
        device: await authenticate(deps.services.devices, req.headers.authorization),
      }),
    },
  } satisfies FastifyTRPCPluginOptions<AppRouter>);
  await app.register(tusPlugin(deps.services, deps.uploadsDir, deps.uploadExpiryMs));
  await app.register(packDownloadRoute(deps.services));
  logEvents(app, deps.services);
  return app;
}

/**
 * Damage found by a read, a report or a check, and key-file replacements, go to the log
 * as warnings.
 */
function logEvents(app: FastifyInstance, services: Services): void {
  const stop = new AbortController();
  app.addHook('onClose', async () => stop.abort());
  void (async () => {
    for await (const e of services.events.subscribe(stop.signal)) {
      if (e.type === 'pack.damaged' || e.type === 'pack.missing')
        app.log.warn(e, `pack ${e.pack} is ${e.type.slice(5)} on the NAS: ${e.detail}`);
      else if (e.type === 'pack.suspect') app.log.warn(e, `pack ${e.pack}: ${e.detail}`);
      else if (e.type === 'household.keyfile.replaced')
        app.log.warn(e, `the household's ${e.kind} key file was replaced by ${e.by}`);
    }
  })();
}
