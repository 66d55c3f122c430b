/**
 * Multipart uploads: Create, UploadPart, ListParts, ListMultipartUploads, Abort, Complete.
 * Completion checks order, ETags, part sizes and part checksums as S3 does, then writes the
 * object: ETag md5(concatenated part MD5s)-N, checksum composite (-N) or full-object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { fileSink, memorySink, planBody, receiveBody } from './body.js';
import {
  type Algorithm,
  type ChecksumType,
  allowedTypes,
  compositeChecksum,
  createHasher,
  headerName,
  parseAlgorithm,
  xmlName,
} from './checksums.js';
import {
  type Ctx,
  type Handler,
  header,
  intParam,
  isoDate,
  objectHeaders,
  requireBucket,
  sendEmpty,
  sendXml,
  storageClass,
} from './context.js';
import { checksumMismatch, errors, invalidArgument, invalidRequest } from './errors.js';
import { checkCreateOnly, checksumHeaders } from './objects.js';
import type { Checksum, PartMeta, UploadMeta } from './store.js';
import { type XmlNode, list, parseXml, text } from './xml.js';

const OWNER = { ID: 'kinvault-test-owner', DisplayName: 'kinvault' };

function uploadChecksum(ctx: Ctx): { algorithm?: Algorithm; type?: ChecksumType } {
  const algText = header(ctx, 'x-amz-checksum-algorithm');
  const typeText = header(ctx, 'x-amz-checksum-type');
  const algorithm = parseAlgorithm(algText);
  if (algText !== undefined && !algorithm)
    throw invalidRequest(
      `Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]`,
    );
  if (typeText !== undefined && typeText !== 'COMPOSITE' && typeText !== 'FULL_OBJECT')
    throw invalidRequest('Value for x-amz-checksum-type header is invalid.');
  if (!algorithm) {
    if (typeText !== undefined)
      throw invalidRequest(
        'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.',
      );
    return {};
  }
  const type = (typeText ?? allowedTypes(algorithm)[0]) as ChecksumType;
  if (!allowedTypes(algorithm).includes(type))
    throw invalidRequest(
      `The ${type} checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`,
    );
  return { algorithm, type };
}

export const createMultipartUpload: Handler = async (ctx) => {
  requireBucket(ctx);
  const headers = objectHeaders(ctx);
  const cls = storageClass(ctx);
  const { algorithm, type } = uploadChecksum(ctx);
  for await (const _ of ctx.body);
  const meta: UploadMeta = {
    uploadId: randomBytes(24).toString('base64url'),
    bucket: ctx.bucket,
    key: ctx.key,
    initiated: ctx.options.now(),
    storageClass: cls,
    headers,
    checksumAlgorithm: algorithm,
    checksumType: type,
  };
  await ctx.store.createUpload(meta);
  const extra: Record<string, string> = {};
  if (algorithm) extra['x-amz-checksum-algorithm'] = algorithm;
  if (type) extra['x-amz-checksum-type'] = type;
  sendXml(
    ctx,
    200,
    'InitiateMultipartUploadResult',
    { Bucket: ctx.bucket, Key: ctx.key, UploadId: meta.uploadId },
    extra,
  );
};

function findUpload(ctx: Ctx): UploadMeta {
  requireBucket(ctx);
  const id = ctx.query.get('uploadId') ?? '';
  const upload = ctx.store.getUpload(id);
  if (!upload || upload.bucket !== ctx.bucket || upload.key !== ctx.key)
    throw errors.noSuchUpload({ UploadId: id });
  return upload;
}

function partNumber(ctx: Ctx): number {
  const text = ctx.query.get('partNumber') ?? '';
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 10_000)
    throw invalidArgument(
      'Part number must be an integer between 1 and 10000, inclusive',
      'partNumber',
      text,
    );
  return n;
}

const typeName = (a: Algorithm | undefined) => (a ? a.toLowerCase() : 'null');

export const uploadPart: Handler = async (ctx) => {
  const upload = findUpload(ctx);
  const number = partNumber(ctx);
  const plan = planBody(ctx.req);
  const sent = plan.checksum?.algorithm;
  const required = upload.checksumType === 'COMPOSITE';
  if (
    (sent && upload.checksumAlgorithm && sent !== upload.checksumAlgorithm) ||
    (required && !sent)
  )
    throw invalidRequest(
      `Checksum Type mismatch occurred, expected checksum Type: ${typeName(upload.checksumAlgorithm)}, actual checksum Type: ${typeName(sent)}`,
    );
  const tmp = ctx.store.tmpPath();
  const got = await receiveBody(ctx.body, plan, {
    defaultAlgorithm: upload.checksumAlgorithm ?? 'CRC64NVME',
    maxSize: ctx.options.maxObjectSize,
    sink: fileSink(tmp),
  });
  const part: PartMeta = {
    partNumber: number,
    size: got.size,
    etag: `"${got.md5}"`,
    lastModified: ctx.options.now(),
  };
  if (got.checksum.supplied || upload.checksumAlgorithm)
    part.checksum = { algorithm: got.checksum.algorithm, value: got.checksum.value };
  await ctx.store.putPart(upload.uploadId, part, tmp);
  const extra = part.checksum ? { [headerName(part.checksum.algorithm)]: part.checksum.value } : {};
  sendEmpty(ctx, 200, { etag: part.etag, ...extra });
};

const partEntry = (p: PartMeta): XmlNode => ({
  PartNumber: p.partNumber,
  LastModified: isoDate(p.lastModified),
  ETag: p.etag,
  Size: p.size,
  ...(p.checksum ? { [xmlName(p.checksum.algorithm)]: p.checksum.value } : {}),
});

export const listParts: Handler = async (ctx) => {
  const upload = findUpload(ctx);
  const maxParts = intParam(ctx, 'max-parts', 1000, 0, 1000);
  const marker = intParam(ctx, 'part-number-marker', 0, 0, 10_000);
  const after = ctx.store.parts(upload.uploadId).filter((p) => p.partNumber > marker);
  const page = after.slice(0, maxParts);
  const truncated = after.length > page.length;
  sendXml(ctx, 200, 'ListPartsResult', {
    Bucket: ctx.bucket,
    Key: ctx.key,
    UploadId: upload.uploadId,
    PartNumberMarker: marker,
    NextPartNumberMarker: truncated ? page.at(-1)?.partNumber : undefined,
    MaxParts: maxParts,
    IsTruncated: truncated,
    Initiator: OWNER,
    Owner: OWNER,
    StorageClass: upload.storageClass,
    ChecksumAlgorithm: upload.checksumAlgorithm,
    ChecksumType: upload.checksumType,
    Part: page.map(partEntry),
  });
};

export const listMultipartUploads: Handler = async (ctx) => {
  requireBucket(ctx);
  if (ctx.query.has('delimiter')) throw errors.notImplemented();
  const prefix = ctx.query.get('prefix') ?? '';
  const keyMarker = ctx.query.get('key-marker') ?? '';
  const idMarker = ctx.query.get('upload-id-marker') ?? '';
  const max = intParam(ctx, 'max-uploads', 1000, 0, 1000);
  const byKeyThenId = (x: UploadMeta, y: UploadMeta) =>
    Buffer.compare(Buffer.from(x.key), Buffer.from(y.key)) ||
    (x.uploadId < y.uploadId ? -1 : x.uploadId > y.uploadId ? 1 : 0);
  const marker = { key: keyMarker, uploadId: idMarker } as UploadMeta;
  const isAfterMarker = (up: UploadMeta) =>
    keyMarker === '' ||
    (idMarker === ''
      ? Buffer.compare(Buffer.from(up.key), Buffer.from(keyMarker)) > 0
      : byKeyThenId(up, marker) > 0);
  const all = ctx.store
    .listUploads(ctx.bucket)
    .filter((up) => up.key.startsWith(prefix) && isAfterMarker(up))
    .sort(byKeyThenId);
  const start = 0;
  const page = all.slice(start, start + max);
  const truncated = start + page.length < all.length;
  sendXml(ctx, 200, 'ListMultipartUploadsResult', {
    Bucket: ctx.bucket,
    KeyMarker: keyMarker,
    UploadIdMarker: idMarker,
    NextKeyMarker: truncated ? page.at(-1)?.key : undefined,
    NextUploadIdMarker: truncated ? page.at(-1)?.uploadId : undefined,
    Prefix: prefix,
    MaxUploads: max,
    IsTruncated: truncated,
    Upload: page.map((up) => ({
      Key: up.key,
      UploadId: up.uploadId,
      Initiator: OWNER,
      Owner: OWNER,
      StorageClass: up.storageClass,
      Initiated: isoDate(up.initiated),
      ChecksumAlgorithm: up.checksumAlgorithm,
      ChecksumType: up.checksumType,
    })),
  });
};

export const abortMultipartUpload: Handler = async (ctx) => {
  const upload = findUpload(ctx);
  await ctx.store.deleteUpload(upload.uploadId);
  sendEmpty(ctx, 204);
};

interface ListedPart {
  partNumber: number;
  etag: string;
  checksum?: string;
}

async function readCompleteRequest(ctx: Ctx, upload: UploadMeta): Promise<ListedPart[]> {
  const sink = memorySink();
  await receiveBody(ctx.body, planBody(ctx.req), {
    defaultAlgorithm: 'CRC32',
    maxSize: 4 * 1024 * 1024,
    sink,
  });
  const xml = parseXml(sink.data().toString('utf8'), 'CompleteMultipartUpload');
  const parts = list(xml.Part).map((p): ListedPart => {
    if (typeof p !== 'object' || Array.isArray(p)) throw errors.malformedXML();
    const n = Number(text(p.PartNumber));
    const etag = text(p.ETag);
    if (!Number.isInteger(n) || etag === undefined) throw errors.malformedXML();
    const checksum = upload.checksumAlgorithm
      ? text(p[xmlName(upload.checksumAlgorithm)])
      : undefined;
    return { partNumber: n, etag: etag.replaceAll('"', '').replaceAll('&quot;', ''), checksum };
  });
  if (parts.length === 0) throw errors.malformedXML();
  return parts;
}

/** The stored parts the request names, after S3's checks (order, ETag, checksum, size). */
function checkParts(ctx: Ctx, upload: UploadMeta, listed: ListedPart[]): PartMeta[] {
  const stored: PartMeta[] = [];
  listed.forEach((p, i) => {
    if (i > 0 && p.partNumber <= listed[i - 1]!.partNumber) throw errors.invalidPartOrder();
    const part = ctx.store.getPart(upload.uploadId, p.partNumber);
    if (!part || part.etag !== `"${p.etag}"`)
      throw errors.invalidPart({ PartNumber: String(p.partNumber), ETag: p.etag });
    if (upload.checksumType === 'COMPOSITE' && p.checksum === undefined)
      throw invalidRequest(
        `The upload was created using a ${typeName(upload.checksumAlgorithm)} checksum. The complete request must include the checksum for each part. It was missing for part ${p.partNumber} in the request.`,
      );
    if (p.checksum !== undefined && p.checksum !== part.checksum?.value)
      throw errors.invalidPart({ PartNumber: String(p.partNumber), ETag: p.etag });
    stored.push(part);
  });
  stored.slice(0, -1).forEach((part) => {
    if (part.size < ctx.options.minPartSize)
      throw errors.entityTooSmall({
        ProposedSize: String(part.size),
        MinSizeAllowed: String(ctx.options.minPartSize),
        PartNumber: String(part.partNumber),
        ETag: part.etag.replaceAll('"', ''),
      });
  });
  return stored;
}

/** Concatenates the parts into a new object file, computing a full-object checksum on the way. */
async function assemble(ctx: Ctx, upload: UploadMeta, parts: PartMeta[], algorithm: Algorithm) {
  const tmp = ctx.store.tmpPath();
  const sink = fileSink(tmp);
  const hasher = createHasher(algorithm);
  try {
    for (const part of parts)
      for await (const chunk of createReadStream(
        ctx.store.partPath(upload.uploadId, part.partNumber),
      )) {
        hasher.update(chunk as Buffer);
        await sink.write(chunk as Buffer);
      }
    await sink.close();
  } catch (error) {
    await sink.discard();
    throw error;
  }
  return { tmp, fullObject: (await hasher.digest()).toString('base64') };
}

async function objectChecksum(
  ctx: Ctx,
  upload: UploadMeta,
  parts: PartMeta[],
  fullObject: string,
): Promise<Checksum> {
  const algorithm = upload.checksumAlgorithm ?? 'CRC64NVME';
  if (upload.checksumType === 'COMPOSITE')
    return {
      algorithm,
      type: 'COMPOSITE',
      value: await compositeChecksum(
        algorithm,
        parts.map((p) => p.checksum!.value),
      ),
    };
  const declared = header(ctx, headerName(algorithm));
  if (declared !== undefined && declared !== fullObject) throw checksumMismatch(algorithm);
  return { algorithm, type: 'FULL_OBJECT', value: fullObject };
}

export const completeMultipartUpload: Handler = async (ctx) => {
  const upload = findUpload(ctx);
  const listed = await readCompleteRequest(ctx, upload);
  checkCreateOnly(ctx);
  const parts = checkParts(ctx, upload, listed);
  const { tmp, fullObject } = await assemble(
    ctx,
    upload,
    parts,
    upload.checksumAlgorithm ?? 'CRC64NVME',
  );
  let checksum: Checksum;
  try {
    checksum = await objectChecksum(ctx, upload, parts, fullObject);
  } catch (error) {
    await unlink(tmp);
    throw error;
  }
  const md5s = createHash('md5');
  for (const p of parts) md5s.update(Buffer.from(p.etag.replaceAll('"', ''), 'hex'));
  const etag = `"${md5s.digest('hex')}-${parts.length}"`;
  await ctx.store.putObject(
    ctx.bucket,
    {
      key: ctx.key,
      size: parts.reduce((n, p) => n + p.size, 0),
      etag,
      lastModified: ctx.options.now(),
      storageClass: upload.storageClass,
      headers: upload.headers,
      checksum,
      parts: parts.map((p) => ({
        partNumber: p.partNumber,
        size: p.size,
        checksum: upload.checksumAlgorithm ? p.checksum?.value : undefined,
      })),
    },
    tmp,
  );
  await ctx.store.deleteUpload(upload.uploadId);
  sendXml(
    ctx,
    200,
    'CompleteMultipartUploadResult',
    {
      Location: `http://${header(ctx, 'host')}/${ctx.bucket}/${encodeURIComponent(ctx.key)}`,
      Bucket: ctx.bucket,
      Key: ctx.key,
      ETag: etag,
      [xmlName(checksum.algorithm)]: checksum.value,
      ChecksumType: checksum.type,
    },
    checksumHeaders(checksum),
  );
};
