/** The metadata endpoints under /drive/v3: about, files create/get/list/update/delete, media GET. */
import { createHash } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { sendEmpty, sendJson, readJson, type Ctx } from './context.js';
import { errors } from './errors.js';
import { checkNames, parseFields, pick } from './fields.js';
import { applyPatch, newFile, render, resource, FILE_FIELDS } from './files.js';
import { parseQuery } from './query.js';
import { FOLDER_MIME, newId, type FileMeta, type NewFile } from './state.js';

export function about(ctx: Ctx): void {
  const fields = ctx.url.searchParams.get('fields');
  if (!fields)
    throw errors.required('fields', "The 'fields' parameter is required for this method.");
  const sel = parseFields(fields);
  checkNames(sel, new Set(['kind', 'user', 'storageQuota']));
  const usage = ctx.state.usage();
  const body = {
    kind: 'drive#about',
    user: {
      kind: 'drive#user',
      displayName: 'Test User',
      emailAddress: 'test.user@example.com',
      permissionId: '00000000000000000000',
      me: true,
    },
    storageQuota: {
      limit: String(ctx.settings.quotaBytes),
      usage: String(usage.total),
      usageInDrive: String(usage.total),
      usageInDriveTrash: String(usage.trash),
    },
  };
  sendJson(ctx.res, 200, pick(body, sel));
}

/** Throws storageQuotaExceeded when `bytes` more would not fit. */
export function checkQuota(ctx: Ctx, bytes: number): void {
  if (ctx.state.usage().total + bytes > ctx.settings.quotaBytes)
    throw errors.storageQuotaExceeded();
}

/** Records a new file whose content (if any) is already at its content path. */
export function addFile(ctx: Ctx, file: NewFile, content?: Buffer): FileMeta {
  const now = new Date().toISOString();
  const meta: FileMeta = {
    ...file,
    id: newId(),
    trashed: false,
    createdTime: now,
    modifiedTime: now,
  };
  if (file.mimeType !== FOLDER_MIME) {
    const bytes = content ?? Buffer.alloc(0);
    writeFileSync(ctx.state.contentPath(meta.id), bytes);
    Object.assign(meta, contentFacts(bytes));
  }
  ctx.state.saveFile(meta);
  return meta;
}

export function contentFacts(
  bytes: Buffer,
): Pick<FileMeta, 'size' | 'md5Checksum' | 'sha1Checksum' | 'sha256Checksum'> {
  const hex = (alg: string) => createHash(alg).update(bytes).digest('hex');
  return {
    size: bytes.byteLength,
    md5Checksum: hex('md5'),
    sha1Checksum: hex('sha1'),
    sha256Checksum: hex('sha256'),
  };
}

export async function createMetadataOnly(ctx: Ctx): Promise<void> {
  const file = newFile(ctx.state, await readJson(ctx));
  const meta = addFile(ctx, file);
  sendJson(ctx.res, 200, render(meta, ctx.url.searchParams.get('fields')));
}

export function lookup(ctx: Ctx, id: string): FileMeta {
  const f = ctx.state.files.get(id === 'root' ? ctx.state.rootId : id);
  if (!f) throw errors.fileNotFound(id);
  return f;
}

export function getFile(ctx: Ctx, id: string): void {
  const f = lookup(ctx, id);
  if (ctx.url.searchParams.get('alt') === 'media') return download(ctx, f);
  sendJson(ctx.res, 200, render(f, ctx.url.searchParams.get('fields')));
}

/** Parses a single `bytes=` range; null when the header is absent or not one we read. */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | null | 'unsatisfiable' {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

function download(ctx: Ctx, f: FileMeta): void {
  if (f.size === undefined) throw errors.notDownloadable();
  const size = f.size;
  const range = parseRange(ctx.req.headers.range, size);
  if (range === 'unsatisfiable') throw errors.rangeNotSatisfiable(size);
  const headers: Record<string, string> = { 'content-type': f.mimeType, 'accept-ranges': 'bytes' };
  const { start, end } = range ?? { start: 0, end: size - 1 };
  if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
  headers['content-length'] = String(size === 0 ? 0 : end - start + 1);
  ctx.res.writeHead(range ? 206 : 200, headers);
  if (size === 0) return void ctx.res.end();
  createReadStream(ctx.state.contentPath(f.id), { start, end }).pipe(ctx.res);
}

export async function updateFile(ctx: Ctx, id: string): Promise<void> {
  const f = lookup(ctx, id);
  const next = applyPatch(ctx.state, f, await readJson(ctx), ctx.url);
  ctx.state.saveFile(next);
  sendJson(ctx.res, 200, render(next, ctx.url.searchParams.get('fields')));
}

/** Deletes a file for good; a folder takes its descendants with it, as in Drive. */
export function deleteFile(ctx: Ctx, id: string): void {
  const f = lookup(ctx, id);
  if (f.id === ctx.state.rootId) {
    throw errors.badRequest('The root folder cannot be deleted.');
  }
  const doomed = [f.id];
  for (let i = 0; i < doomed.length; i++) {
    for (const child of ctx.state.files.values())
      if (child.parents.includes(doomed[i]!)) doomed.push(child.id);
  }
  for (const d of doomed) ctx.state.deleteFile(d);
  sendEmpty(ctx.res, 204);
}

const ORDER_KEYS = new Set(['name', 'createdTime', 'modifiedTime', 'folder']);

function orderBy(spec: string | null): (a: FileMeta, b: FileMeta) => number {
  const keys = (spec ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => {
      const [key = '', dir, ...rest] = part.split(/\s+/);
      if (!ORDER_KEYS.has(key) || rest.length > 0 || (dir !== undefined && dir !== 'desc')) {
        throw errors.invalid('orderBy', `Invalid Value`);
      }
      return { key, sign: dir === 'desc' ? -1 : 1 };
    });
  const value = (f: FileMeta, key: string) =>
    key === 'folder' ? String(f.mimeType !== FOLDER_MIME) : String(f[key as 'name']);
  return (a, b) => {
    for (const { key, sign } of keys) {
      const c = value(a, key) < value(b, key) ? -1 : value(a, key) > value(b, key) ? 1 : 0;
      if (c !== 0) return c * sign;
    }
    return a.createdTime < b.createdTime
      ? -1
      : a.createdTime > b.createdTime
        ? 1
        : a.id < b.id
          ? -1
          : 1;
  };
}

const DEFAULT_LIST_FIELDS = 'kind,incompleteSearch,nextPageToken,files(kind,id,name,mimeType)';

/** files.list; a page token is the offset into the same query's ordered results. */
export function listFiles(ctx: Ctx): void {
  const p = ctx.url.searchParams;
  const spaces = p.get('spaces');
  if (spaces !== null && spaces !== 'drive') throw errors.invalid('spaces', 'Invalid Value');
  const pageSizeText = p.get('pageSize') ?? '100';
  const pageSize = Number(pageSizeText);
  if (!/^\d+$/.test(pageSizeText) || pageSize < 1 || pageSize > 1000) {
    throw errors.invalid(
      'pageSize',
      `Invalid value '${pageSizeText}'. Values must be within the range: [1, 1000]`,
    );
  }
  const q = p.get('q');
  const predicate = q ? parseQuery(q) : () => true;
  const sort = orderBy(p.get('orderBy'));
  const key = `${q ?? ''}\u0000${p.get('orderBy') ?? ''}`;
  let offset = 0;
  const token = p.get('pageToken');
  if (token) {
    const decoded = decodeToken(token);
    if (!decoded || decoded.key !== key) throw errors.invalid('pageToken', 'Invalid Value');
    offset = decoded.offset;
  }
  const matches = [...ctx.state.files.values()]
    .filter((f) => f.id !== ctx.state.rootId && predicate(f))
    .sort(sort);
  const page = matches.slice(offset, offset + pageSize);
  const next = offset + pageSize < matches.length ? encodeToken(key, offset + pageSize) : undefined;
  const body = {
    kind: 'drive#fileList',
    incompleteSearch: false,
    nextPageToken: next,
    files: page.map(resource),
  };
  const sel = parseFields(p.get('fields') || DEFAULT_LIST_FIELDS);
  checkNames(sel, new Set(['kind', 'incompleteSearch', 'nextPageToken', 'files']));
  const filesSel = sel.get('files');
  if (filesSel && filesSel !== true) checkNames(filesSel, FILE_FIELDS);
  sendJson(ctx.res, 200, pick(body, sel));
}

function encodeToken(key: string, offset: number): string {
  return Buffer.from(JSON.stringify({ key, offset })).toString('base64url');
}

function decodeToken(token: string): { key: string; offset: number } | null {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
      key: unknown;
      offset: unknown;
    };
    return typeof v.key === 'string' && Number.isSafeInteger(v.offset)
      ? (v as { key: string; offset: number })
      : null;
  } catch {
    return null;
  }
}
