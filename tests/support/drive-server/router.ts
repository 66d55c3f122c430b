/** Maps requests to operations, checks the bearer token, counts requests, injects faults. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as api from './api.js';
import * as oauth from './oauth.js';
import { readBody, type Ctx, type Settings } from './context.js';
import { DriveError, errors, sendError } from './errors.js';
import type { DiskState } from './state.js';
import * as uploads from './uploads.js';
import { clientGone } from '../client-gone.js';

/**
 * What an injected fault answers. storageQuotaExceeded: Drive refusing a write as full
 * though about.get still shows room (its quota counts Gmail and Photos too, and lags).
 */
export type FaultKind =
  'userRateLimitExceeded' | 'rateLimitExceeded' | 'storageQuotaExceeded' | 429 | 500 | 503;

/** One request, as the log keeps it; session PUTs with their session and file name. */
export interface LoggedRequest {
  op: string;
  uploadId?: string;
  name?: string;
  contentRange?: string;
}

export interface Counters {
  requests: Record<string, number>;
  bytesReceived: Record<string, number>;
  faults: Map<string, FaultKind[]>;
  log: LoggedRequest[];
  /** Planned stalls: after `skip` more requests of `op`, `left` are never answered. */
  stalls: { op: string; skip: number; left: number }[];
  /** The logged entries of the requests stalled now, their clients still connected. */
  held: LoggedRequest[];
}

/** Whether this request of `op` is to stall (see Counters.stalls). */
function takeStall(counters: Counters, op: string): boolean {
  const i = counters.stalls.findIndex((p) => p.op === op);
  if (i < 0) return false;
  const planned = counters.stalls[i]!;
  if (planned.skip > 0) {
    planned.skip--;
    return false;
  }
  if (--planned.left === 0) counters.stalls.splice(i, 1);
  return true;
}

function logged(req: IncomingMessage, url: URL, op: string, state: DiskState): LoggedRequest {
  const uploadId = url.searchParams.get('upload_id');
  if (uploadId === null) return { op };
  const range = req.headers['content-range'];
  return {
    op,
    uploadId,
    ...(state.sessions.has(uploadId) ? { name: state.sessions.get(uploadId)!.file.name } : {}),
    ...(range ? { contentRange: range } : {}),
  };
}

type Handler = (ctx: Ctx, id: string) => void | Promise<void>;

interface Route {
  op: string;
  handler: Handler;
}

function route(req: IncomingMessage, url: URL): Route | null {
  const method = req.method ?? 'GET';
  const path = url.pathname;
  const p = url.searchParams;
  if (path === '/token' && method === 'POST') return { op: 'oauth.token', handler: oauth.token };
  if (path === '/auth' && method === 'GET') return { op: 'oauth.consent', handler: oauth.consent };
  if (path === '/drive/v3/about' && method === 'GET')
    return { op: 'about.get', handler: api.about };
  if (path === '/drive/v3/files') {
    if (method === 'GET') return { op: 'files.list', handler: api.listFiles };
    if (method === 'POST') return { op: 'files.create', handler: api.createMetadataOnly };
  }
  if (/^\/drive\/v3\/files\/[^/]+$/.test(path)) {
    if (method === 'GET') {
      return {
        op: p.get('alt') === 'media' ? 'files.download' : 'files.get',
        handler: api.getFile,
      };
    }
    if (method === 'PATCH') return { op: 'files.update', handler: api.updateFile };
    if (method === 'DELETE') return { op: 'files.delete', handler: api.deleteFile };
  }
  if (path === '/upload/drive/v3/files') {
    const type = p.get('uploadType');
    if (method === 'POST' && type === 'multipart')
      return { op: 'upload.multipart', handler: uploads.multipartUpload };
    if (method === 'POST' && type === 'media')
      return { op: 'upload.media', handler: uploads.mediaUpload };
    if (method === 'POST' && type === 'resumable')
      return { op: 'upload.resumable.start', handler: uploads.startResumable };
    if (method === 'PUT' && type === 'resumable' && p.has('upload_id')) {
      const status = /^bytes \*\//.test(req.headers['content-range'] ?? '');
      return {
        op: status ? 'upload.resumable.status' : 'upload.resumable.chunk',
        handler: uploads.putResumable,
      };
    }
    if (method === 'POST')
      return { op: 'upload.invalid', handler: () => Promise.reject(errors.invalid('uploadType')) };
  }
  return null;
}

function faultError(kind: FaultKind): DriveError {
  if (kind === 'userRateLimitExceeded') return errors.userRateLimitExceeded();
  if (kind === 'rateLimitExceeded') return errors.rateLimitExceeded(403);
  if (kind === 429) return errors.rateLimitExceeded(429);
  if (kind === 'storageQuotaExceeded') return errors.storageQuotaExceeded();
  return errors.backendError(kind);
}

function checkAuth(req: IncomingMessage, settings: Settings): void {
  const header = req.headers.authorization;
  if (!header) throw errors.loginRequired();
  const m = /^Bearer (\S+)$/.exec(header);
  if (!m || (settings.validTokens && !settings.validTokens.has(m[1]!)))
    throw errors.invalidCredentials();
}

export function makeHandler(
  state: DiskState,
  settings: Settings,
  counters: Counters,
  rootUrl: () => string,
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const r = route(req, url);
    const op = r?.op ?? 'unknown';
    counters.requests[op] = (counters.requests[op] ?? 0) + 1;
    const entry = logged(req, url, op, state);
    counters.log.push(entry);
    const ctx: Ctx = {
      req,
      res,
      url,
      state,
      settings,
      rootUrl: rootUrl(),
      countBytes: (n) => (counters.bytesReceived[op] = (counters.bytesReceived[op] ?? 0) + n),
    };
    try {
      if (!r) throw errors.notFound();
      if (op.startsWith('oauth.')) return await r.handler(ctx, '');
      checkAuth(req, settings);
      const fault = counters.faults.get(op)?.shift();
      if (fault !== undefined) {
        await readBody(ctx);
        throw faultError(fault);
      }
      if (takeStall(counters, op)) {
        // Never answered: dropped, storing nothing, once its client goes away.
        counters.held.push(entry);
        // Its bytes are read and dropped: a paused socket would not see its client go.
        req.resume();
        await clientGone(req.socket);
        counters.held.splice(counters.held.indexOf(entry), 1);
        return void res.destroy();
      }
      const id = decodeURIComponent(url.pathname.split('/')[4] ?? '');
      await r.handler(ctx, id);
    } catch (err) {
      if (res.headersSent || res.destroyed) return void res.destroy();
      if (!req.complete) req.resume();
      sendError(res, err instanceof DriveError ? err : errors.backendError(500));
    }
  };
}
