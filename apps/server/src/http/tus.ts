/**
 * Pack uploads over tus (resumable), in their own encapsulated fastify plugin.
 * Every request is authenticated; an upload can be seen, continued or deleted only by
 * the device that created it; a finished upload is handed to the packs service as an
 * incoming pack (built by upload-store.ts, which alone knows where tus keeps its bytes),
 * to be verified and registered. Responses never name a server path (unexpected errors
 * get a reference).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Server } from '@tus/server';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { coalesce } from './coalesce.js';
import { edgeOf, isKinvaultError, TUS_PATH } from '@kinvault/protocol';
import type { Services } from '../services/services.js';
import { authenticate } from './auth.js';
import { internalErrorMessage, referenceOf } from './errors.js';
import { diskFullAnswer, freeBytes, isNoSpace, UploadStore, UPLOAD_ID } from './upload-store.js';

const MAX_UPLOAD = 512 * 1024 * 1024;

function refuse(status_code: number, body: string): { status_code: number; body: string } {
  return { status_code, body: body + '\n' };
}

/** How often expired uploads are looked for while the coordinator runs. */
function sweepInterval(expiryMs: number): number {
  return Math.max(1000, Math.min(60 * 60 * 1000, expiryMs / 2));
}

export function tusPlugin(services: Services, uploadsDir: string, expiryMs: number) {
  return async function register(app: FastifyInstance): Promise<void> {
    const store = new UploadStore(uploadsDir, expiryMs, (d) =>
      app.log.error(
        d,
        `disk full (ENOSPC) in ${d.path}: an upload needs ${d.neededBytes ?? '?'} bytes, ` +
          `${d.freeBytes} bytes are free on that file system; the upload was discarded`,
      ),
    );
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
      // Only ids we hand out reach the store (anything else, such as "<id>.json", is 404).
      getFileIdFromRequest: (_req, last) => (last && UPLOAD_ID.test(last) ? last : undefined),
      // Every method with an upload id (HEAD, PATCH, DELETE, GET) is checked against the
      // owner recorded in the upload's sidecar; POST creates one.
      async onIncomingRequest(req, uploadId) {
        const device = await deviceOf(req);
        if (req.method === 'POST') {
          if (req.headers.get('content-type') === 'application/offset+octet-stream')
            throw refuse(
              400,
              'Bad request: create the upload first, then send its bytes with PATCH.',
            );
          return;
        }
        const owner = await store.ownerOf(uploadId);
        if (owner === undefined)
          throw refuse(
            404,
            'Not found: there is no such upload (it finished, expired or was refused).',
          );
        if (owner !== device.id)
          throw refuse(403, 'Forbidden: this upload belongs to another device.');
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
      // A finished upload is registered or refused; either way nothing of it stays here
      // (a registered pack's data file was moved into the pack store).
      async onUploadFinish(req, upload) {
        try {
          const device = await deviceOf(req);
          const hashed = received.get(req);
          const pack = store.incomingPack(
            upload.id,
            upload.metadata?.pack ?? '',
            hashed ? { sha256: hashed.hash.digest('hex'), bytes: hashed.bytes } : undefined,
          );
          const r = await services.packs.receive(device, pack);
          return { status_code: 204, headers: { 'Kinvault-Blobs': r.blobs } };
        } catch (error) {
          if (isKinvaultError(error)) {
            // (409 means a lock conflict to tus clients, which retry it: a refusal is 400)
            const status = edgeOf(error.code).http;
            throw refuse(status === 409 ? 400 : status, error.message);
          }
          throw error;
        } finally {
          await store.discard(upload.id);
        }
      },
      // tus answers an unexpected error with its message, which can name server paths:
      // log it under a reference and tell the client only the reference.
      async onResponseError(req, error) {
        if (!(error instanceof Error)) return undefined; // our own or tus's fixed answers
        if (isNoSpace(error)) {
          // The file system that is full: the uploads folder's, or the pack store's when
          // a finished upload was being copied there from another disk.
          const at =
            (error as { dest?: string; path?: string }).dest ?? (error as { path?: string }).path;
          const where = at ? dirname(at) : uploadsDir;
          const d = { path: where, freeBytes: await freeBytes(where) };
          app.log.error({ err: error, ...d }, `disk full (ENOSPC) while handling an upload`);
          return diskFullAnswer(d);
        }
        const ref = referenceOf(error);
        app.log.error(
          { ref, err: error, method: req.method, url: new URL(req.url).pathname },
          'upload failed: internal error',
        );
        return { status_code: 500, body: internalErrorMessage(ref) + '\n' };
      },
    });
    // At start, nothing is in flight: remove what a crash or an abandoned upload left.
    const swept = await store.sweep();
    if (swept.orphans + swept.expired > 0)
      app.log.info(swept, 'removed abandoned uploads (left by a crash, or expired)');
    const timer = setInterval(() => {
      tus.cleanUpExpiredUploads().then(
        (n) => n > 0 && app.log.info({ expired: n }, 'removed expired uploads'),
        (error: unknown) => app.log.error({ err: error }, 'removing expired uploads failed'),
      );
    }, sweepInterval(expiryMs));
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
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
