/** PutObject, GetObject (ranges), HeadObject, DeleteObject(s), GetObjectAttributes. */
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { fileSink, memorySink, planBody, receiveBody } from './body.js';
import { headerName, xmlName } from './checksums.js';
import {
  type Ctx,
  type Handler,
  header,
  httpDate,
  intParam,
  objectHeaders,
  requireBucket,
  sendEmpty,
  sendXml,
  storageClass,
} from './context.js';
import { S3Error, errors, invalidArgument, invalidRequest } from './errors.js';
import { isReadable, restoreHeader } from './restore.js';
import type { Checksum, ObjectMeta } from './store.js';
import { type XmlNode, list, parseXml, text } from './xml.js';

export const checksumHeaders = (c: Checksum): Record<string, string> => ({
  [headerName(c.algorithm)]: c.value,
  'x-amz-checksum-type': c.type,
});

const preconditionFailed = (condition: string) =>
  new S3Error(
    412,
    'PreconditionFailed',
    'At least one of the pre-conditions you specified did not hold',
    {
      Condition: condition,
    },
  );

/** If-None-Match: * on writes: the key must not exist. */
export function checkCreateOnly(ctx: Ctx): void {
  const value = header(ctx, 'if-none-match');
  if (value === undefined) return;
  if (value !== '*') throw errors.notImplemented({ Header: 'If-None-Match' });
  if (ctx.store.getObject(ctx.bucket, ctx.key)) throw preconditionFailed('If-None-Match');
}

export const putObject: Handler = async (ctx) => {
  requireBucket(ctx);
  const headers = objectHeaders(ctx);
  const cls = storageClass(ctx);
  const plan = planBody(ctx.req);
  checkCreateOnly(ctx);
  const tmp = ctx.store.tmpPath();
  const got = await receiveBody(ctx.body, plan, {
    defaultAlgorithm: 'CRC64NVME',
    maxSize: ctx.options.maxObjectSize,
    sink: fileSink(tmp),
  });
  try {
    checkCreateOnly(ctx);
  } catch (error) {
    await unlink(tmp);
    throw error;
  }
  const meta = await ctx.store.putObject(
    ctx.bucket,
    {
      key: ctx.key,
      size: got.size,
      etag: `"${got.md5}"`,
      lastModified: ctx.options.now(),
      storageClass: cls,
      headers,
      checksum: {
        algorithm: got.checksum.algorithm,
        value: got.checksum.value,
        type: 'FULL_OBJECT',
      },
    },
    tmp,
  );
  sendEmpty(ctx, 200, { etag: meta.etag, ...checksumHeaders(meta.checksum) });
};

export function findObject(ctx: Ctx): ObjectMeta {
  requireBucket(ctx);
  const meta = ctx.store.getObject(ctx.bucket, ctx.key);
  if (!meta) throw errors.noSuchKey({ Key: ctx.key });
  return meta;
}

type Range = { start: number; end: number } | undefined;

/** A single byte range (RFC 9110); anything S3 ignores gives undefined, an unsatisfiable one 416. */
function parseRange(value: string | undefined, size: number): Range {
  const m = value === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const unsatisfiable = () =>
    errors.invalidRange({ RangeRequested: value!, ActualObjectSize: String(size) });
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) throw unsatisfiable();
  return { start, end };
}

const RESPONSE_OVERRIDES = [
  'content-type',
  'content-language',
  'expires',
  'cache-control',
  'content-disposition',
  'content-encoding',
];

function readHeaders(ctx: Ctx, meta: ObjectMeta): Record<string, string> {
  const out: Record<string, string> = {
    ...meta.headers,
    etag: meta.etag,
    'last-modified': httpDate(meta.lastModified),
    'accept-ranges': 'bytes',
  };
  for (const name of RESPONSE_OVERRIDES) {
    const v = ctx.query.get(`response-${name}`);
    if (v !== null) out[name] = v;
  }
  if (meta.storageClass !== 'STANDARD') out['x-amz-storage-class'] = meta.storageClass;
  const restore = restoreHeader(meta, ctx.options.now());
  if (restore) out['x-amz-restore'] = restore;
  return out;
}

function checkConditions(ctx: Ctx, meta: ObjectMeta): boolean {
  const ifMatch = header(ctx, 'if-match');
  if (
    ifMatch !== undefined &&
    ifMatch !== '*' &&
    !ifMatch.split(',').some((t) => t.trim() === meta.etag)
  )
    throw preconditionFailed('If-Match');
  const ifNoneMatch = header(ctx, 'if-none-match');
  return (
    ifNoneMatch !== undefined &&
    (ifNoneMatch === '*' || ifNoneMatch.split(',').some((t) => t.trim() === meta.etag))
  );
}

/** GetObject and HeadObject; `cutAfter` (fault injection) destroys the socket after that many body bytes. */
export function readObject(head: boolean): Handler {
  return async (ctx) => {
    const meta = findObject(ctx);
    if (ctx.query.has('partNumber')) throw errors.notImplemented();
    if (!head && !isReadable(meta, ctx.options.now()))
      throw errors.invalidObjectState({ StorageClass: meta.storageClass });
    const headers = readHeaders(ctx, meta);
    if (checkConditions(ctx, meta)) return sendEmpty(ctx, 304, { etag: meta.etag });
    const range = parseRange(header(ctx, 'range'), meta.size);
    if (!range && header(ctx, 'x-amz-checksum-mode') === 'ENABLED')
      Object.assign(headers, checksumHeaders(meta.checksum));
    const { start, end } = range ?? { start: 0, end: meta.size - 1 };
    headers['content-length'] = String(end - start + 1);
    if (range) headers['content-range'] = `bytes ${start}-${end}/${meta.size}`;
    ctx.res.writeHead(range ? 206 : 200, headers);
    if (head || end < start) return void ctx.res.end();
    const path = ctx.store.dataPath(ctx.bucket, meta);
    if (ctx.cutResponseAfter === undefined)
      return pipeline(createReadStream(path, { start, end }), ctx.res);
    await sendThenCut(ctx, path, start, Math.min(end, start + ctx.cutResponseAfter - 1));
  };
}

async function sendThenCut(ctx: Ctx, path: string, start: number, end: number): Promise<void> {
  if (end >= start)
    for await (const chunk of createReadStream(path, { start, end }))
      if (!ctx.res.write(chunk)) await once(ctx.res, 'drain');
  await new Promise<void>((resolve) => ctx.res.write('', () => resolve()));
  ctx.res.destroy();
}

export const deleteObject: Handler = async (ctx) => {
  requireBucket(ctx);
  await ctx.store.deleteObject(ctx.bucket, ctx.key);
  sendEmpty(ctx, 204);
};

/** POST /bucket?delete: up to 1000 keys; needs Content-MD5 or an additional checksum, as S3 does. */
export const deleteObjects: Handler = async (ctx) => {
  requireBucket(ctx);
  const plan = planBody(ctx.req);
  if (!plan.contentMd5 && !plan.checksum)
    throw invalidRequest(
      'Missing required header for this request: Content-MD5 or x-amz-checksum-*',
    );
  const sink = memorySink();
  await receiveBody(ctx.body, plan, { defaultAlgorithm: 'CRC32', maxSize: 2 * 1024 * 1024, sink });
  const xml = parseXml(sink.data().toString('utf8'), 'Delete');
  const objects = list(xml.Object);
  if (objects.length === 0 || objects.length > 1000) throw errors.malformedXML();
  const quiet = text(xml.Quiet) === 'true';
  const deleted: XmlNode[] = [];
  for (const o of objects) {
    const key = typeof o === 'object' && !Array.isArray(o) ? text(o.Key) : undefined;
    if (key === undefined) throw errors.malformedXML();
    await ctx.store.deleteObject(ctx.bucket, key);
    deleted.push({ Key: key });
  }
  sendXml(ctx, 200, 'DeleteResult', { Deleted: quiet ? undefined : deleted });
};

const ATTRIBUTES = ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'];

/** GET /bucket/key?attributes: works on archived objects too (no data is read). */
export const getObjectAttributes: Handler = async (ctx) => {
  const meta = findObject(ctx);
  const wanted = (header(ctx, 'x-amz-object-attributes') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (wanted.length === 0 || wanted.some((a) => !ATTRIBUTES.includes(a)))
    throw invalidArgument('Invalid attribute name specified.');
  const out: XmlNode = {};
  if (wanted.includes('ETag')) out.ETag = meta.etag.replaceAll('"', '');
  if (wanted.includes('Checksum'))
    out.Checksum = {
      [xmlName(meta.checksum.algorithm)]: meta.checksum.value,
      ChecksumType: meta.checksum.type,
    };
  if (wanted.includes('ObjectParts') && meta.parts) out.ObjectParts = objectParts(ctx, meta);
  if (wanted.includes('StorageClass')) out.StorageClass = meta.storageClass;
  if (wanted.includes('ObjectSize')) out.ObjectSize = meta.size;
  sendXml(ctx, 200, 'GetObjectAttributesResponse', out, {
    'last-modified': httpDate(meta.lastModified),
  });
};

function objectParts(ctx: Ctx, meta: ObjectMeta): XmlNode {
  const parts = meta.parts!;
  const maxParts = intParam(ctx, 'x-amz-max-parts', 1000, 0, 1000);
  const marker = intParam(ctx, 'x-amz-part-number-marker', 0, 0, 10_000);
  const withChecksums = parts.every((p) => p.checksum !== undefined);
  const after = parts.filter((p) => p.partNumber > marker);
  const page = after.slice(0, maxParts);
  const truncated = after.length > page.length;
  return {
    PartsCount: parts.length,
    PartNumberMarker: marker,
    NextPartNumberMarker: page.at(-1)?.partNumber ?? marker,
    MaxParts: maxParts,
    IsTruncated: truncated,
    Part: withChecksums
      ? page.map((p) => ({
          PartNumber: p.partNumber,
          Size: p.size,
          [xmlName(meta.checksum.algorithm)]: p.checksum,
        }))
      : undefined,
  };
}
