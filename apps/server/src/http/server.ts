/**
 * The coordinator's HTTPS edge. Routes parse input, authorise, call one service and
 * map errors; services know nothing of fastify.
 */
import fastify, { type FastifyInstance } from 'fastify';
import type { TlsMaterial } from '../tls.js';
import type { DevicesService } from '../services/devices.service.js';

export interface ServerDeps {
  tls: TlsMaterial;
  devices: DevicesService;
  version: string;
  logLevel?: string;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = fastify({
    https: { key: deps.tls.key, cert: deps.tls.cert },
    logger: { level: deps.logLevel ?? 'info' },
    forceCloseConnections: 'idle',
  });
  app.get('/health', async () => ({ status: 'ok', service: 'kinvaultd', version: deps.version }));
  return app;
}
