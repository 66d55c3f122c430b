/**
 * An S3 bucket (or an S3-compatible service) as a store: `s3://bucket/prefix?…` (url.ts).
 * The only module that imports the AWS SDK.
 *
 * Beyond the Store contract:
 * - Keys live under `prefix/`, which is Kinvault's alone. Credentials come from the SDK's
 *   default chain only.
 * - A body up to `partSize` (32 MiB unless the URL says: above the largest pack, ~24 MiB, so a pack takes one request) is read into memory, checked
 *   against its size and SHA-256, and sent in one PutObject with that SHA-256 for S3 to
 *   verify. A larger body goes as a multipart upload, each part with its own SHA-256,
 *   checked while read. Without an UploadResume the upload is aborted on any failure,
 *   so nothing becomes visible.
 * - With an UploadResume, the upload's id, part size and body are saved right after
 *   CreateMultipartUpload. A put that finds them lists the upload's parts (ListParts),
 *   keeps those whose size and SHA-256 match the body's part (recomputed while reading
 *   it), uploads the others and completes. A body with `openAt` (a volume, generated
 *   the same every time) is not read for the parts S3 holds from the first on: it
 *   starts at the first missing part, and S3's per-part SHA-256 checks stand in for the
 *   whole-body check (the caller verifies the object's composite checksum afterwards).
 *   `onPart` hears of every part held. An upload S3 no longer has (NoSuchUpload) or
 *   one for another body starts afresh. A failure that is not retryable aborts the upload
 *   and clears the state; a retryable one keeps both.
 * - `sweep(states)` aborts the multipart uploads of Kinvault's object kinds under the
 *   prefix (packs/, catalog/, …: never another target's under a longer prefix, nor the
 *   user's own) that none of the saved states refers to (those of a coordinator killed
 *   before it saved one).
 * - The hex SHA-256 is also kept as user metadata (`x-amz-meta-sha256`): `head` reads it.
 *   `list` does not (S3 listings carry no metadata): its SHA-256s are null.
 * - The SDK retries a failure twice itself (maxAttempts 3); the retry wrapper does the rest.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  type CompletedPart,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { KinvaultError } from '@kinvault/protocol';
import { checkRange, checkedBytes } from '../body.js';
import { checkKey, checkPrefix, isObjectKey } from '../keys.js';
import type {
  Body,
  ListPage,
  ObjectInfo,
  PutOptions,
  Range,
  Store,
  UploadResume,
  Usage,
} from '../store.js';
import { DEFAULT_PART_SIZE, partSizeFor, s3Capabilities, type S3Target } from './url.js';
import { decodeState, encodeState } from './upload-state.js';

const MiB = 1024 * 1024;
const MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB;
const HEX64 = /^[0-9a-f]{64}$/;

export interface S3StoreOptions {
  /**
   * Bodies up to this size go in one PutObject; larger ones in parts of at least this
   * size. Overrides the URL's partSize (tests use parts below S3's 5 MiB).
   */
  partSize?: number;
  /** Parts asked for per ListParts page (S3's 1,000 by default; tests lower it). */
  listPartsPage?: number;
}

/** A multipart upload under way: its id, part size, and the parts S3 already holds. */
interface OpenUpload {
  uploadId: string;
  partSize: number;
  held: Map<number, { size: number; checksum: string | undefined; etag: string }>;
}

export class S3Store implements Store {
  readonly label: string;
  readonly capabilities;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly listPartsPage: number;
  private readonly root: string;

  constructor(
    readonly target: S3Target,
    options: S3StoreOptions = {},
  ) {
    this.label = target.label;
    this.root = target.prefix ? `${target.prefix}/` : '';
    this.partSize = options.partSize ?? target.partSize ?? DEFAULT_PART_SIZE;
    this.listPartsPage = options.listPartsPage ?? 1000;
    this.capabilities = s3Capabilities(target);
    this.client = new S3Client({
      region: target.region,
      ...(target.endpoint ? { endpoint: target.endpoint } : {}),
      forcePathStyle: target.forcePathStyle,
      followRegionRedirects: true,
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    });
  }

  /** Closes the client's connections. */
  destroy(): void {
    this.client.destroy();
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectInfo> {
    checkKey(key);
    if (body.size > MAX_OBJECT_BYTES)
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `${key} (${body.size} bytes) is larger than the 5 TiB an S3 object may hold.`,
      );
    try {
      if (body.size <= this.partSize) await this.putWhole(key, body);
      else await this.putInParts(key, body, options);
      return { key, size: body.size, sha256: body.sha256 };
    } catch (e) {
      throw this.failure(e, `writing ${key}`, key);
    }
  }

  private async putWhole(key: string, body: Body): Promise<void> {
    const checked = checkedBytes(body, this.label, key);
    const chunks: Uint8Array[] = [];
    for await (const chunk of checked.chunks()) chunks.push(chunk);
    checked.finish();
    const bytes = Buffer.concat(chunks);
    await this.client.send(
      new PutObjectCommand({
        ...this.object(key),
        Body: bytes,
        ContentLength: bytes.byteLength,
        ChecksumAlgorithm: 'SHA256',
        ChecksumSHA256: Buffer.from(body.sha256, 'hex').toString('base64'),
        Metadata: { sha256: body.sha256 },
        StorageClass: this.target.storageClass,
      }),
    );
  }

  /** The part size a multipart upload of `size` bytes uses (so that it stays under 10,000 parts). */
  partSizeFor(size: number): number {
    return partSizeFor(this.partSize, size);
  }

  private async putInParts(key: string, body: Body, options: PutOptions): Promise<void> {
    const { resume } = options;
    const upload = await this.openUpload(key, body, resume);
    const target = { ...this.object(key), UploadId: upload.uploadId };
    const total = Math.ceil(body.size / upload.partSize);
    try {
      // A body that can start anywhere starts at the first part S3 does not hold yet
      // (at its end when S3 holds them all: only the completion was cut off).
      const skip = body.openAt ? heldPrefix(upload, body.size) : 0;
      const checked = skip === 0 ? checkedBytes(body, this.label, key) : null;
      const bytes = checked
        ? checked.chunks()
        : body.openAt!(Math.min(skip * upload.partSize, body.size));
      const parts: CompletedPart[] = [];
      for (let n = 1; n <= skip; n++) {
        const held = upload.held.get(n)!;
        parts.push({ PartNumber: n, ETag: held.etag, ChecksumSHA256: held.checksum });
      }
      if (skip > 0) await options.onPart?.(skip, total);
      for await (const part of inParts(bytes, upload.partSize)) {
        const PartNumber = parts.length + 1;
        const ChecksumSHA256 = createHash('sha256').update(part).digest('base64');
        const held = upload.held.get(PartNumber);
        if (held?.size === part.byteLength && held.checksum === ChecksumSHA256) {
          parts.push({ PartNumber, ETag: held.etag, ChecksumSHA256 });
        } else {
          const { ETag } = await this.client.send(
            new UploadPartCommand({
              ...target,
              PartNumber,
              Body: part,
              ContentLength: part.byteLength,
              ChecksumAlgorithm: 'SHA256',
              ChecksumSHA256,
            }),
          );
          parts.push({ PartNumber, ETag, ChecksumSHA256 });
        }
        await options.onPart?.(PartNumber, total);
      }
      checked?.finish();
      if (parts.length !== total)
        throw new KinvaultError(
          'CHECKSUM_MISMATCH',
          `Refused to complete ${key} at ${this.label}: its body made ${parts.length} of ${total} parts. Nothing was stored.`,
          { details: { key } },
        );
      await this.client.send(
        new CompleteMultipartUploadCommand({ ...target, MultipartUpload: { Parts: parts } }),
      );
    } catch (e) {
      const err = this.failure(e, `writing ${key}`, key);
      const gone = nameOf(e) === 'NoSuchUpload';
      // Kept for the next put to go on from, unless it cannot help it.
      if (!resume || !err.retryable || gone) {
        if (!gone) await this.abort(key, upload.uploadId);
        // Best effort: a state left names an upload that is gone, which a put starts afresh.
        await resume?.clear().catch(() => undefined);
      }
      throw err;
    }
    await resume?.clear();
  }

  /**
   * The upload a saved state names, with the parts S3 holds of it; otherwise a new one,
   * whose state is saved before any part is sent.
   */
  private async openUpload(key: string, body: Body, resume?: UploadResume): Promise<OpenUpload> {
    const saved = decodeState((await resume?.load()) ?? null);
    if (saved && saved.size === body.size && saved.sha256 === body.sha256) {
      const held = await this.listParts(key, saved.uploadId);
      if (held) return { uploadId: saved.uploadId, partSize: saved.partSize, held };
    } else if (saved) await this.abort(key, saved.uploadId); // for other bytes: of no use
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({
        ...this.object(key),
        ChecksumAlgorithm: 'SHA256',
        Metadata: { sha256: body.sha256 },
        StorageClass: this.target.storageClass,
      }),
    );
    const uploadId = UploadId!;
    const partSize = partSizeFor(this.partSize, body.size);
    const state = encodeState({ uploadId, partSize, size: body.size, sha256: body.sha256 });
    await resume?.save(state).catch(async (e: unknown) => {
      await this.abort(key, uploadId);
      throw e;
    });
    return { uploadId, partSize, held: new Map() };
  }

  /** The parts S3 holds of an upload (every page), or null when it has no such upload. */
  private async listParts(key: string, uploadId: string): Promise<OpenUpload['held'] | null> {
    const held: OpenUpload['held'] = new Map();
    let marker: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListPartsCommand({
            ...this.object(key),
            UploadId: uploadId,
            MaxParts: this.listPartsPage,
            ...(marker ? { PartNumberMarker: marker } : {}),
          }),
        );
      } catch (e) {
        if (nameOf(e) === 'NoSuchUpload') return null;
        throw e;
      }
      for (const p of out.Parts ?? [])
        if (p.PartNumber !== undefined && p.ETag)
          held.set(p.PartNumber, { size: p.Size ?? -1, checksum: p.ChecksumSHA256, etag: p.ETag });
      marker = out.IsTruncated ? out.NextPartNumberMarker : undefined;
    } while (marker);
    return held;
  }

  /** Aborts an upload, best effort (one left over is aborted by the next sweep). */
  private async abort(key: string, uploadId: string): Promise<void> {
    await this.client
      .send(new AbortMultipartUploadCommand({ ...this.object(key), UploadId: uploadId }))
      .catch(() => undefined);
  }

  /** Whether a bucket key is one of this target's objects (not another's under a longer prefix). */
  private ours(bucketKey: string): boolean {
    return bucketKey.startsWith(this.root) && isObjectKey(bucketKey.slice(this.root.length));
  }

  /** Aborts the multipart uploads under the prefix that no saved state refers to. */
  async sweep(resumable: readonly string[]): Promise<void> {
    const keep = new Set(resumable.map((s) => decodeState(s)?.uploadId));
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    try {
      for (;;) {
        const out = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.target.bucket,
            Prefix: this.root,
            ...markers,
          }),
        );
        for (const u of out.Uploads ?? [])
          if (u.Key && u.UploadId && !keep.has(u.UploadId) && this.ours(u.Key))
            await this.client
              .send(
                new AbortMultipartUploadCommand({
                  Bucket: this.target.bucket,
                  Key: u.Key,
                  UploadId: u.UploadId,
                }),
              )
              .catch((e: unknown) => {
                if (nameOf(e) !== 'NoSuchUpload') throw e;
              });
        if (!out.IsTruncated) return;
        markers = { KeyMarker: out.NextKeyMarker, UploadIdMarker: out.NextUploadIdMarker };
      }
    } catch (e) {
      throw this.failure(e, 'ending unfinished uploads');
    }
  }

  async get(key: string, range?: Range): Promise<Readable> {
    checkKey(key);
    if (range) checkRange(this.label, key, Number.MAX_SAFE_INTEGER, range);
    if (range?.length === 0) {
      const info = await this.head(key);
      if (!info) throw this.notFound(key);
      checkRange(this.label, key, info.size, range);
      return Readable.from([]);
    }
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          ...this.object(key),
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
        }),
      );
      const stream = out.Body as Readable;
      if (range && out.ContentLength !== range.length) {
        stream.destroy();
        checkRange(this.label, key, totalOf(out.ContentRange) ?? 0, range);
      }
      return Readable.from(this.reading(stream, key));
    } catch (e) {
      throw this.failure(e, `reading ${key}`, key, range);
    }
  }

  /** Passes a response body through, turning a connection lost midway into UNAVAILABLE. */
  private async *reading(stream: Readable, key: string): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of stream) yield chunk as Uint8Array;
    } catch (e) {
      throw this.failure(e, `reading ${key}`, key);
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ ...this.object(key), ChecksumMode: 'ENABLED' }),
      );
      const sha256 = out.Metadata?.sha256;
      return {
        key,
        size: out.ContentLength ?? 0,
        sha256: sha256 && HEX64.test(sha256) ? sha256 : null,
        // S3 leaves the header out for its Standard class.
        storageClass: out.StorageClass ?? 'STANDARD',
        ...(out.ChecksumSHA256 ? { providerSha256: out.ChecksumSHA256 } : {}),
      };
    } catch (e) {
      if (statusOf(e) === 404 && nameOf(e) !== 'NoSuchBucket') return null;
      throw this.failure(e, `reading ${key}`, key);
    }
  }

  async list(
    prefix: string,
    page: { after?: string | null; limit?: number } = {},
  ): Promise<ListPage> {
    checkPrefix(prefix);
    const limit = Math.max(1, Math.min(page.limit ?? 1000, 1000));
    let out;
    try {
      out = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.target.bucket,
          Prefix: this.root + prefix,
          MaxKeys: limit,
          ...(page.after ? { StartAfter: this.root + page.after } : {}),
        }),
      );
    } catch (e) {
      throw this.failure(e, `listing ${prefix || 'its objects'}`);
    }
    const listed = (out.Contents ?? []).map((o) => ({
      key: o.Key!.slice(this.root.length),
      size: o.Size ?? 0,
      sha256: null,
    }));
    const last = listed.at(-1)?.key;
    return {
      objects: listed.filter((o) => isKey(o.key)),
      next: out.IsTruncated && last !== undefined ? last : null,
    };
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.client.send(new DeleteObjectCommand(this.object(key)));
    } catch (e) {
      if (nameOf(e) === 'NoSuchKey') return;
      throw this.failure(e, `deleting ${key}`, key);
    }
  }

  /** S3 counts no usage against a quota; a bucket has none. */
  async usage(): Promise<Usage> {
    return { usedBytes: null, quotaBytes: null };
  }

  private object(key: string) {
    return { Bucket: this.target.bucket, Key: this.root + key };
  }

  private notFound(key: string): KinvaultError {
    return new KinvaultError('NOT_FOUND', `${key} is not at ${this.label}.`, { details: { key } });
  }

  /** Maps an SDK or network failure to a KinvaultError naming the target, never a secret. */
  private failure(e: unknown, doing: string, key?: string, range?: Range): KinvaultError {
    if (e instanceof KinvaultError) return e;
    const name = nameOf(e);
    const status = statusOf(e);
    const at = `${this.label} (${doing})`;
    const details = key === undefined ? {} : { key };
    const make = (code: KinvaultError['code'], message: string, retryable = false) =>
      new KinvaultError(code, message, { cause: e, retryable, details });
    if (name === 'NoSuchUpload')
      return make(
        'UNAVAILABLE',
        `${at}: S3 no longer has the multipart upload under way; it is started again.`,
        true,
      );
    if (name === 'NoSuchKey' || (status === 404 && key !== undefined && name !== 'NoSuchBucket'))
      return this.notFound(key ?? '');
    if (name === 'NoSuchBucket')
      return make(
        'FAILED_PRECONDITION',
        `The bucket ${this.target.bucket} does not exist at ${at}. Create it, or correct the target's URL.`,
      );
    if (name === 'InvalidObjectState')
      return make(
        'FAILED_PRECONDITION',
        `${key} at ${this.label} is archived (storage class ${this.target.storageClass}): it must be restored first (S3 RestoreObject), then read again once the restore has completed.`,
      );
    if (name === 'InvalidRange' && range)
      return make(
        'INVALID_ARGUMENT',
        `Bytes ${range.offset}–${range.offset + range.length} of ${key} at ${this.label} were asked for; the object is shorter.`,
      );
    if (name === 'CredentialsProviderError' || name === 'ProviderError')
      return make('UNAUTHORIZED', `No S3 credentials were found for ${at}. ${CREDENTIAL_SOURCES}`);
    if (CREDENTIAL_ERRORS.has(name) || status === 403)
      return make(
        'UNAUTHORIZED',
        `S3 refused the credentials for ${at}: ${name}. ${CREDENTIAL_SOURCES} They must allow reading, writing, listing and deleting in the bucket ${this.target.bucket}.`,
      );
    if (name === 'BadDigest' || name === 'XAmzContentSHA256Mismatch' || name === 'InvalidDigest')
      return make(
        'CHECKSUM_MISMATCH',
        `${at}: S3 received bytes that do not match their checksum (${name}); they were damaged on the way and not stored. Trying again should succeed.`,
        true,
      );
    if (
      (status !== undefined && status >= 500) ||
      status === 429 ||
      RETRYABLE_NAMES.has(name) ||
      !(e instanceof S3ServiceException)
    )
      return make(
        'UNAVAILABLE',
        `${at} is not answering: ${describe(e)}. Kinvault tries again later.`,
        true,
      );
    return make('INTERNAL', `${at} refused the request: ${name} (HTTP ${status ?? '?'}).`);
  }
}

const CREDENTIAL_SOURCES =
  'Check the credentials kinvaultd gets from its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), its shared profile (~/.aws/credentials, AWS_PROFILE) or its container or instance role.';
const CREDENTIAL_ERRORS = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
]);
const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'TimeoutError',
]);

const nameOf = (e: unknown): string =>
  (e as { name?: unknown } | null)?.name === undefined ? '' : String((e as Error).name);
const statusOf = (e: unknown): number | undefined =>
  (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;

/** What went wrong, for a message: a network error's code, or the SDK's name. */
function describe(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string') return code;
  const status = statusOf(e);
  return status === undefined ? nameOf(e) || 'an error' : `${nameOf(e)} (HTTP ${status})`;
}

function isKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

/** The object's size from a Content-Range of "bytes a-b/size". */
function totalOf(contentRange: string | undefined): number | undefined {
  const m = /\/(\d+)$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Regroups chunks into parts of `size` bytes (the last may be shorter). */
async function* inParts(chunks: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let part = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.byteLength;) {
      const n = Math.min(size - filled, chunk.byteLength - at);
      part.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === size) {
        yield part;
        part = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield part.subarray(0, filled);
}

/** How many parts from the first S3 holds whole (each of the full part size, or the last). */
function heldPrefix(upload: OpenUpload, size: number): number {
  const total = Math.ceil(size / upload.partSize);
  let n = 0;
  while (n < total) {
    const want = Math.min(upload.partSize, size - n * upload.partSize);
    const held = upload.held.get(n + 1);
    if (held?.size !== want || !held.checksum) break;
    n++;
  }
  return n;
}
