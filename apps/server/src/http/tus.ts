/**
 * Pack uploads over tus (resumable), in their own encapsulated fastify plugin.
 * Every request is authenticated; an upload can be continued only by the device that
 * created it; a finished upload is verified and registered by the packs service.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { coalesce } from './coalesce.js';
import { isKinvaultError, TUS_PATH } from '@kinvault/protocol';
import type { Services } from './trpc.js';
import { authenticate } from './auth.js';

const MAX_UPLOAD = 512 * 1024 * 1024;

function refuse(status_code: number, body: string): { status_code: number; body: string } {
  return { status_code, body: body + '\n' };
}

export function tusPlugin(services: Services, uploadsDir: string) {
  return async function register(app: FastifyInstance): Promise<void> {
    const store = new FileStore({ directory: uploadsDir });
    /** What each PATCH request that started at offset 0 has passed on so far. */
    const received = new WeakMap<Request, { hash: Hash; bytes: number }>();
    const deviceOf = async (req: Request) => {
      const device = await authenticate(services.devices, req.headers.get('authorization'));
      if (!device) throw refuse(401, 'Unauthorized: this device is not enrolled or was revoked.');
      return device;
    };
    const tus = new Server({
      path: TUS_PATH,
      datastore: store,
      maxSize: MAX_UPLOAD,
      // Relative Location headers: clients resolve them against their https:// endpoint.
      relativeLocation: true,
      namingFunction: () => randomBytes(16).toString('hex'),
      async onIncomingRequest(req, uploadId) {
        const device = await deviceOf(req);
        if (uploadId) {
          const upload = await store.getUpload(uploadId).catch(() => null);
          if (upload && upload.metadata?.device !== device.id)
            throw refuse(403, 'Forbidden: this upload belongs to another device.');
        }
      },
      async onUploadCreate(req, upload) {
        const device = await deviceOf(req);
        const pack = upload.metadata?.pack ?? '';
        if (!/^[0-9a-f]{64}$/.test(pack))
          throw refuse(
            400,
            'Bad request: Upload-Metadata must name the pack ("pack" = its SHA-256 in lowercase hex).',
          );
        if (upload.size === undefined)
          throw refuse(400, 'Bad request: the upload length must be given up front.');
        return { metadata: { ...upload.metadata, device: device.id } };
      },
      async onUploadFinish(req, upload) {
        const device = await deviceOf(req);
        try {
          const hashed = received.get(req);
          const r = await services.packs.finishUpload(
            device,
            join(uploadsDir, upload.id),
            upload.metadata?.pack ?? '',
            hashed ? { sha256: hashed.hash.digest('hex'), bytes: hashed.bytes } : undefined,
          );
          await store.remove(upload.id).catch(() => {}); // the .json sidecar; the data file was moved
          return { status_code: 204, headers: { 'Kinvault-Blobs': r.blobs } };
        } catch (error) {
          if (isKinvaultError(error)) {
            await store.remove(upload.id).catch(() => {});
            throw refuse(error.code === 'PACK_HASH_MISMATCH' ? 422 : 400, error.message);
          }
          throw error;
        }
      },
    });
    app.addContentTypeParser('application/offset+octet-stream', (_req, _payload, done) =>
      done(null),
    );
    // What tus.handle(req, res) does, except that a PATCH body reaches tus in pieces of
    // up to 1 MiB: it passes through two stream conversions (Node → web → Node), whose
    // cost is per piece, and arrives in TLS records of 16 KiB.
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const request = new NodeRequest({ req, res });
      if (req.method === 'PATCH') {
        // A PATCH from offset 0 is hashed as it passes, so a pack sent in one request is
        // not read back for its SHA-256 (a resumed upload still is).
        let onPiece: ((piece: Buffer) => void) | undefined;
        if (req.headers['upload-offset'] === '0') {
          const hash = createHash('sha256');
          const state = { hash, bytes: 0 };
          received.set(request, state);
          onPiece = (piece) => {
            hash.update(piece);
            state.bytes += piece.byteLength;
          };
        }
        const joined = coalesce(onPiece);
        req.on('error', (e) => joined.destroy(e));
        // ReadableStream.from passes the pieces on as they are; Readable.toWeb copies each.
        const body = ReadableStream.from<Uint8Array>(req.pipe(joined));
        Object.defineProperty(request, 'body', { value: body });
      }
      tus
        .handleWeb(request)
        .then((response) => sendNodeResponse(res, response))
        .catch(() => res.destroy());
    };
    app.all(TUS_PATH, (req, reply) => handle(req.raw, reply.raw));
    app.all(`${TUS_PATH}/*`, (req, reply) => handle(req.raw, reply.raw));
  };
}
