/**
 * Authenticated download of an available pack, whole or by one byte range (restore). The
 * packs service says where the pack is read from.
 */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../services/services.js';
import { authenticate } from './auth.js';

export function packDownloadRoute(services: Services) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.get<{ Params: { name: string } }>('/packs/:name', async (req, reply) => {
      const device = await authenticate(services.devices, req.headers.authorization);
      if (!device)
        return reply
          .code(401)
          .send({ error: 'Unauthorized: this device is not enrolled or was revoked.' });
      const { name } = req.params;
      if (!/^[0-9a-f]{64}$/.test(name))
        return reply.code(400).send({ error: 'A pack name is 64 lowercase hex digits.' });
      const source = await services.packs.source(name);
      if (source === null)
        return reply.code(404).send({
          error: `Pack ${name} is not on this coordinator (never stored, or its file is missing; "kinvaultd check" on the NAS lists such packs).`,
        });
      const size = source.size;
      const binary = () =>
        reply.header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream');
      const range = req.headers.range;
      if (range === undefined) return binary().header('content-length', size).send(source.read());
      // "bytes=a-b", "bytes=a-" or a suffix "bytes=-n" (the last n bytes: a pack's tail).
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      let start = NaN;
      let end = size - 1;
      if (m && m[1] !== '') {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
      } else if (m && m[2] !== '') {
        start = Math.max(0, size - Number(m[2]));
      }
      if (!m || !(start <= end) || start >= size) {
        return reply
          .code(416)
          .header('content-range', `bytes */${size}`)
          .send({ error: `Range "${range}" is not one satisfiable byte range of ${size} bytes.` });
      }
      return binary()
        .code(206)
        .header('content-range', `bytes ${start}-${end}/${size}`)
        .header('content-length', end - start + 1)
        .send(source.read(start, end));
    });
  };
}
