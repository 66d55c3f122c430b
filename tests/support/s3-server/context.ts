/** What every handler gets, and the helpers they share to answer. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, invalidArgument, S3Error } from './errors.js';
import type { Store } from './store.js';
import { type XmlNode, xmlDocument } from './xml.js';

export type Tier = 'Expedited' | 'Standard' | 'Bulk';

export interface ServerOptions {
  /** Smallest size of every part but the last (AWS: 5 MiB). */
  minPartSize: number;
  /** Largest PutObject body and part (AWS: 5 GiB). */
  maxObjectSize: number;
  /** The server's clock (ms since the epoch), for restores, expiry and x-amz-date skew. */
  now: () => number;
  /** How long a restore takes by itself, per tier; undefined: until completeRestores(). */
  restoreDelay?: (tier: Tier) => number | undefined;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  store: Store;
  options: ServerOptions;
  bucket: string;
  key: string;
  query: URLSearchParams;
  requestId: string;
  /** The request body (the socket may be cut by fault injection). */
  body: AsyncIterable<Buffer>;
  /** Fault injection: destroy the connection after this many response body bytes. */
  cutResponseAfter?: number;
}

export type Handler = (ctx: Ctx) => Promise<void>;

export function header(ctx: Ctx, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function sendXml(
  ctx: Ctx,
  status: number,
  root: string,
  body: XmlNode,
  headers: Record<string, string> = {},
) {
  const text = xmlDocument(root, body);
  ctx.res.writeHead(status, {
    ...headers,
    'content-type': 'application/xml',
    'content-length': String(Buffer.byteLength(text)),
  });
  ctx.res.end(text);
}

export function sendEmpty(ctx: Ctx, status: number, headers: Record<string, string> = {}) {
  ctx.res.writeHead(status, { ...headers, 'content-length': '0' });
  ctx.res.end();
}

export function requireBucket(ctx: Ctx): void {
  if (!ctx.store.hasBucket(ctx.bucket)) throw errors.noSuchBucket({ BucketName: ctx.bucket });
}

export const STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'GLACIER_IR',
];
/** Classes whose objects must be restored before they can be read. */
export const ARCHIVED = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export function storageClass(ctx: Ctx): string {
  const value = header(ctx, 'x-amz-storage-class') ?? 'STANDARD';
  if (!STORAGE_CLASSES.includes(value))
    throw new S3Error(400, 'InvalidStorageClass', 'The storage class you specified is not valid', {
      StorageClassRequested: value,
    });
  return value;
}

const STORED_HEADERS = [
  'content-type',
  'cache-control',
  'content-disposition',
  'content-language',
  'expires',
];
const UNSUPPORTED_HEADERS = [
  'x-amz-copy-source',
  'x-amz-tagging',
  'x-amz-object-lock-mode',
  'x-amz-object-lock-retain-until-date',
  'x-amz-object-lock-legal-hold',
  'x-amz-website-redirect-location',
  'x-amz-server-side-encryption-customer-algorithm',
  'x-amz-server-side-encryption-aws-kms-key-id',
  'x-amz-grant-full-control',
  'x-amz-grant-read',
  'x-amz-grant-read-acp',
  'x-amz-grant-write-acp',
];

/** The headers an object keeps: Content-Type and friends, x-amz-meta-*. Unsupported features are 501. */
export function objectHeaders(ctx: Ctx): Record<string, string> {
  for (const name of UNSUPPORTED_HEADERS)
    if (ctx.req.headers[name] !== undefined) throw errors.notImplemented({ Header: name });
  const sse = header(ctx, 'x-amz-server-side-encryption');
  if (sse !== undefined && sse !== 'AES256')
    throw errors.notImplemented({ Header: 'x-amz-server-side-encryption' });
  const acl = header(ctx, 'x-amz-acl');
  if (acl !== undefined && acl !== 'private') throw errors.notImplemented({ Header: 'x-amz-acl' });
  const kept: Record<string, string> = { 'content-type': 'binary/octet-stream' };
  for (const [name, value] of Object.entries(ctx.req.headers)) {
    if (typeof value !== 'string') continue;
    if (STORED_HEADERS.includes(name) || name.startsWith('x-amz-meta-')) kept[name] = value;
  }
  const encoding = header(ctx, 'content-encoding')
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'aws-chunked');
  if (encoding?.length) kept['content-encoding'] = encoding.join(',');
  const metaSize = Object.entries(kept)
    .filter(([n]) => n.startsWith('x-amz-meta-'))
    .reduce((n, [k, v]) => n + k.length - 11 + v.length, 0);
  if (metaSize > 2048)
    throw new S3Error(
      400,
      'MetadataTooLarge',
      'Your metadata headers exceed the maximum allowed metadata size.',
    );
  return kept;
}

/** An integer query parameter within [min, max], or `fallback` when absent. */
export function intParam(
  ctx: Ctx,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = ctx.query.get(name) ?? header(ctx, name);
  if (text === undefined || text === null) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min)
    throw invalidArgument(`Provided ${name} not an integer or within integer range`, name, text);
  return Math.min(n, max);
}

export const httpDate = (ms: number) => new Date(ms).toUTCString();
export const isoDate = (ms: number) => new Date(ms).toISOString();
