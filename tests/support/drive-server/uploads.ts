/**
 * Uploads at /upload/drive/v3/files: uploadType=media, multipart (multipart/related: JSON
 * metadata, then the media) and resumable (a session URI, then PUTs with Content-Range).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { addFile, checkQuota } from './api.js';
import { parseJsonObject, readBody, readJson, sendEmpty, sendJson, type Ctx } from './context.js';
import { DriveError, errors } from './errors.js';
import { newFile, render } from './files.js';
import { newId, type FileMeta, type Session } from './state.js';

/** Chunks other than the last must be multiples of this (Drive's resumable protocol). */
export const CHUNK_UNIT = 256 * 1024;

export async function mediaUpload(ctx: Ctx): Promise<void> {
  const body = await readBody(ctx);
  checkQuota(ctx, body.byteLength);
  const file = newFile(ctx.state, {}, ctx.req.headers['content-type']);
  sendJson(ctx.res, 200, render(addFile(ctx, file, body), ctx.url.searchParams.get('fields')));
}

export async function multipartUpload(ctx: Ctx): Promise<void> {
  const type = ctx.req.headers['content-type'] ?? '';
  const m = /^multipart\/related\s*;.*boundary=("?)([^";]+)\1/i.exec(type);
  if (!m)
    throw errors.badRequest(
      'Multipart uploads need Content-Type: multipart/related with a boundary.',
    );
  const parts = splitMultipart(await readBody(ctx), m[2]!);
  if (parts.length !== 2)
    throw errors.badRequest('Malformed multipart body: expected metadata and media parts.');
  const [meta, media] = parts as [Part, Part];
  if (!/^application\/json/i.test(meta.type))
    throw errors.badRequest('The first part must be application/json metadata.');
  checkQuota(ctx, media.body.byteLength);
  const file = newFile(
    ctx.state,
    parseJsonObject(meta.body.toString('utf8')),
    media.type || undefined,
  );
  sendJson(
    ctx.res,
    200,
    render(addFile(ctx, file, media.body), ctx.url.searchParams.get('fields')),
  );
}

interface Part {
  type: string;
  body: Buffer;
}

function splitMultipart(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw errors.badRequest('Malformed multipart body.');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return parts;
    const next = body.indexOf(delimiter, pos);
    if (next < 0) throw errors.badRequest('Malformed multipart body: no closing boundary.');
    const raw = body.subarray(pos, next);
    const headEnd = raw.indexOf('\r\n\r\n');
    if (headEnd < 0) throw errors.badRequest('Malformed multipart body: a part has no headers.');
    const head = raw.subarray(0, headEnd).toString('latin1');
    let content = raw.subarray(headEnd + 4);
    if (content.subarray(-2).toString() === '\r\n') content = content.subarray(0, -2);
    const typeLine = /(?:^|\r\n)content-type:\s*([^\r\n]*)/i.exec(head);
    parts.push({ type: typeLine?.[1]?.trim() ?? '', body: content });
    pos = next;
  }
}

function headerNumber(ctx: Ctx, name: string): number | undefined {
  const v = ctx.req.headers[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw errors.badRequest(`Invalid ${name} header.`);
  return Number(v);
}

/** Opens a resumable session: 200 with the session URI in Location. */
export async function startResumable(ctx: Ctx): Promise<void> {
  const total = headerNumber(ctx, 'x-upload-content-length');
  const uploadType = ctx.req.headers['x-upload-content-type'];
  const file = newFile(
    ctx.state,
    await readJson(ctx),
    typeof uploadType === 'string' ? uploadType : undefined,
  );
  if (total !== undefined) checkQuota(ctx, total);
  const session: Session = {
    id: newId(),
    file,
    total,
    createdAt: Date.now(),
    fields: ctx.url.searchParams.get('fields') ?? undefined,
  };
  ctx.state.saveSession(session);
  // Like Drive's, the session URI carries the initiating request's parameters.
  const query = new URLSearchParams(ctx.url.searchParams);
  query.set('upload_id', session.id);
  const location = `${ctx.rootUrl}upload/drive/v3/files?${query.toString()}`;
  sendEmpty(ctx.res, 200, { location });
}

type ContentRange =
  { start: number; end: number; total?: number } | { status: true; total?: number };

function parseContentRange(header: string | undefined): ContentRange {
  const m = header ? /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!m)
    throw errors.badRequest(
      'Invalid Content-Range header: expected bytes a-b/total or bytes */total.',
    );
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (m[1] === undefined) return { status: true, total };
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start || (total !== undefined && end >= total))
    throw errors.badRequest('Invalid Content-Range header.');
  return { start, end, total };
}

function liveSession(ctx: Ctx): Session {
  const id = ctx.url.searchParams.get('upload_id') ?? '';
  const session = ctx.state.sessions.get(id);
  if (!session) throw errors.notFound('Upload session not found.');
  if (Date.now() - session.createdAt > ctx.settings.sessionTtlMs) {
    ctx.state.deleteSession(id);
    throw errors.notFound('Upload session expired.');
  }
  return session;
}

function answerIncomplete(ctx: Ctx, received: number): void {
  sendEmpty(ctx.res, 308, received > 0 ? { range: `bytes=0-${received - 1}` } : {});
}

function answerComplete(ctx: Ctx, session: Session): void {
  const f = ctx.state.files.get(session.fileId ?? '');
  if (!f) throw errors.notFound('Upload session not found.');
  sendJson(ctx.res, 200, render(f, session.fields));
}

/** A PUT to a session URI: a status query (empty body, bytes *\/total) or a chunk. */
export async function putResumable(ctx: Ctx): Promise<void> {
  const session = liveSession(ctx);
  const range = parseContentRange(ctx.req.headers['content-range']);
  if (session.total !== undefined && range.total !== undefined && range.total !== session.total) {
    throw errors.badRequest(
      `Content-Range total ${range.total} differs from the declared ${session.total} bytes.`,
    );
  }
  if (session.fileId) {
    await readBody(ctx);
    return answerComplete(ctx, session);
  }
  const received = ctx.state.received(session.id);
  if ('status' in range) {
    await readBody(ctx);
    // An empty file is uploaded with a single `bytes */0`.
    if (range.total !== undefined && received === range.total) return completeSession(ctx, session);
    return answerIncomplete(ctx, received);
  }
  await receiveChunk(ctx, session, range, received);
}

async function receiveChunk(
  ctx: Ctx,
  session: Session,
  range: { start: number; end: number; total?: number },
  received: number,
): Promise<void> {
  const length = range.end - range.start + 1;
  const declared = headerNumber(ctx, 'content-length');
  if (declared !== undefined && declared !== length) {
    throw errors.badRequest(
      `Content-Length ${declared} does not match Content-Range (${length} bytes).`,
    );
  }
  if (range.start > received) {
    throw errors.badRequest(
      `Invalid request. According to the Content-Range header, the upload offset is ${range.start} byte(s), which exceeds already uploaded size of ${received} byte(s).`,
    );
  }
  const isLast = range.total !== undefined && range.end + 1 === range.total;
  if (!isLast && length % CHUNK_UNIT !== 0) {
    throw errors.badRequest(
      `Invalid request. Chunks other than the last must be a multiple of ${CHUNK_UNIT} bytes; this one has ${length}.`,
    );
  }
  if (range.total !== undefined) checkQuota(ctx, range.total - received);
  if (session.total === undefined && range.total !== undefined) {
    session.total = range.total;
    ctx.state.saveSession(session);
  }
  const total = session.total;
  const got = await appendBody(ctx, session.id, range.start, received, length);
  if (got < length)
    throw errors.badRequest(`The request body has ${got} bytes; Content-Range says ${length}.`);
  const now = ctx.state.received(session.id);
  if (total !== undefined && now === total) return completeSession(ctx, session);
  answerIncomplete(ctx, now);
}

/** Appends the body to the session's bytes (skipping what it already has); returns body bytes read. */
async function appendBody(
  ctx: Ctx,
  id: string,
  start: number,
  received: number,
  length: number,
): Promise<number> {
  const handle = await open(ctx.state.partPath(id), 'a');
  let offset = start;
  let cut = ctx.settings.cutNextChunkAfter;
  ctx.settings.cutNextChunkAfter = undefined;
  try {
    for await (const data of ctx.req) {
      let chunk = data as Buffer;
      ctx.countBytes(chunk.byteLength);
      if (offset - start + chunk.byteLength > length)
        throw errors.badRequest('The request body is longer than Content-Range says.');
      if (cut !== undefined && chunk.byteLength >= cut) {
        chunk = chunk.subarray(0, cut);
      }
      const skip = Math.max(0, received - offset);
      if (skip < chunk.byteLength) await handle.write(chunk.subarray(skip));
      offset += chunk.byteLength;
      if (cut !== undefined) {
        cut -= chunk.byteLength;
        if (cut <= 0) {
          ctx.req.socket.destroy();
          break;
        }
      }
    }
  } catch (err) {
    // A broken connection keeps what was written; the client finds out with a status query.
    if (err instanceof DriveError) throw err;
  } finally {
    await handle.close();
  }
  return offset - start;
}

async function completeSession(ctx: Ctx, session: Session): Promise<void> {
  const part = ctx.state.partPath(session.id);
  await (await open(part, 'a')).close(); // an empty upload has no bytes file yet
  const hashes = ['md5', 'sha1', 'sha256'].map((a) => createHash(a));
  for await (const data of createReadStream(part)) for (const h of hashes) h.update(data as Buffer);
  const size = ctx.state.received(session.id);
  const meta = addFile(ctx, session.file);
  const [md5, sha1, sha256] = hashes.map((h) => h.digest('hex'));
  await rename(part, ctx.state.contentPath(meta.id));
  const done: FileMeta = {
    ...meta,
    size,
    md5Checksum: md5,
    sha1Checksum: sha1,
    sha256Checksum: sha256,
  };
  ctx.state.saveFile(done);
  session.fileId = meta.id;
  ctx.state.saveSession(session);
  answerComplete(ctx, session);
}
