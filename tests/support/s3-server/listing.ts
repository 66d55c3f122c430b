/** ListObjectsV2 (prefix, delimiter, max-keys, continuation-token, start-after), ListBuckets, buckets. */
import {
  type Ctx,
  type Handler,
  intParam,
  isoDate,
  requireBucket,
  sendEmpty,
  sendXml,
} from './context.js';
import { S3Error, errors, invalidArgument } from './errors.js';
import { type XmlNode } from './xml.js';

const OWNER = { ID: 'kinvault-test-owner', DisplayName: 'kinvault' };

/** Where a page starts: after this key, or after every key under this common prefix. */
interface Position {
  last: string;
  isPrefix: boolean;
}

/** Continuation tokens are opaque to clients: the last key or common prefix returned. */
const encodeToken = (p: Position) => Buffer.from(JSON.stringify(p)).toString('base64url');

function decodeToken(token: string): Position {
  try {
    const p = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Position;
    if (typeof p.last === 'string' && typeof p.isPrefix === 'boolean') return p;
  } catch {
    // fall through
  }
  throw invalidArgument(
    'The continuation token provided is incorrect',
    'continuation-token',
    token,
  );
}

const utf8Greater = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b)) > 0;

interface Page {
  contents: string[];
  prefixes: string[];
  next?: Position;
}

/** Walks the sorted keys after `after`, grouping by delimiter, up to `max` entries. */
function listPage(
  keys: string[],
  prefix: string,
  delimiter: string,
  after: Position,
  max: number,
): Page {
  const page: Page = { contents: [], prefixes: [] };
  let previous: Position | undefined;
  for (const key of keys) {
    if (!key.startsWith(prefix) || !utf8Greater(key, after.last)) continue;
    if (after.isPrefix && key.startsWith(after.last)) continue;
    const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
    const entry: Position =
      cut < 0
        ? { last: key, isPrefix: false }
        : { last: key.slice(0, cut + delimiter.length), isPrefix: true };
    if (entry.isPrefix && previous?.isPrefix && previous.last === entry.last) continue;
    if (page.contents.length + page.prefixes.length === max) {
      if (previous) page.next = previous;
      break;
    }
    (entry.isPrefix ? page.prefixes : page.contents).push(entry.last);
    previous = entry;
  }
  return page;
}

export const listObjectsV2: Handler = async (ctx) => {
  requireBucket(ctx);
  const q = ctx.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const maxKeys = intParam(ctx, 'max-keys', 1000, 0, 1000);
  const encoding = q.get('encoding-type');
  if (encoding !== null && encoding !== 'url')
    throw invalidArgument(
      'Invalid Encoding Method specified in Request',
      'encoding-type',
      encoding,
    );
  const token = q.get('continuation-token');
  const startAfter = q.get('start-after') ?? '';
  let after: Position = token !== null ? decodeToken(token) : { last: '', isPrefix: false };
  if (utf8Greater(startAfter, after.last)) after = { last: startAfter, isPrefix: false };
  const page = listPage(ctx.store.keys(ctx.bucket), prefix, delimiter, after, maxKeys);
  const enc = (s: string) => (encoding === 'url' ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
  const contents = page.contents.map((key) =>
    contentEntry(ctx, key, enc, q.get('fetch-owner') === 'true'),
  );
  sendXml(ctx, 200, 'ListBucketResult', {
    Name: ctx.bucket,
    Prefix: enc(prefix),
    Delimiter: delimiter ? enc(delimiter) : undefined,
    MaxKeys: maxKeys,
    EncodingType: encoding ?? undefined,
    KeyCount: page.contents.length + page.prefixes.length,
    IsTruncated: page.next !== undefined,
    ContinuationToken: token ?? undefined,
    NextContinuationToken: page.next !== undefined ? encodeToken(page.next) : undefined,
    StartAfter: q.has('start-after') ? enc(startAfter) : undefined,
    Contents: contents,
    CommonPrefixes: page.prefixes.map((p) => ({ Prefix: enc(p) })),
  });
};

function contentEntry(ctx: Ctx, key: string, enc: (s: string) => string, owner: boolean): XmlNode {
  const meta = ctx.store.getObject(ctx.bucket, key)!;
  return {
    Key: enc(key),
    LastModified: isoDate(meta.lastModified),
    ETag: meta.etag,
    ChecksumAlgorithm: meta.checksum.algorithm,
    ChecksumType: meta.checksum.type,
    Size: meta.size,
    Owner: owner ? OWNER : undefined,
    StorageClass: meta.storageClass,
  };
}

export const listBuckets: Handler = async (ctx) => {
  sendXml(ctx, 200, 'ListAllMyBucketsResult', {
    Owner: OWNER,
    Buckets: {
      Bucket: ctx.store.bucketNames().map((Name) => ({ Name, CreationDate: isoDate(0) })),
    },
  });
};

const BUCKET_NAME = /^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export const createBucket: Handler = async (ctx) => {
  if (
    !BUCKET_NAME.test(ctx.bucket) ||
    ctx.bucket.includes('..') ||
    /^\d+\.\d+\.\d+\.\d+$/.test(ctx.bucket)
  )
    throw errors.invalidBucketName({ BucketName: ctx.bucket });
  if (ctx.store.hasBucket(ctx.bucket))
    throw errors.bucketAlreadyOwnedByYou({ BucketName: ctx.bucket });
  for await (const _ of ctx.body); // the optional CreateBucketConfiguration is ignored
  await ctx.store.createBucket(ctx.bucket);
  sendEmpty(ctx, 200, { location: `/${ctx.bucket}` });
};

export const headBucket: Handler = async (ctx) => {
  requireBucket(ctx);
  sendEmpty(ctx, 200, { 'x-amz-bucket-region': 'us-east-1' });
};

export const deleteBucket: Handler = async (ctx) => {
  requireBucket(ctx);
  if (ctx.store.objectCount(ctx.bucket) > 0 || ctx.store.listUploads(ctx.bucket).length > 0)
    throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', {
      BucketName: ctx.bucket,
    });
  await ctx.store.deleteBucket(ctx.bucket);
  sendEmpty(ctx, 204);
};
