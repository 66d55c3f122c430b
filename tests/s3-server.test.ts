/** The S3 test server, driven by the real @aws-sdk/client-s3 (and raw HTTP for what the SDK won't send). */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  RestoreObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3TestServer, start } from './support/s3-server/index.js';

const PART = 64 * 1024;
let dir: string;
let server: S3TestServer;
let s3: S3Client;

const client = (endpoint: string) =>
  new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });

async function restart() {
  s3.destroy();
  await server.stop();
  server = await start({ dir, minPartSize: PART });
  s3 = client(server.endpoint);
}

async function s3Error(p: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof S3ServiceException)
      return { code: e.name, status: e.$metadata.httpStatusCode };
    throw e;
  }
  throw new Error('expected an S3 error');
}

const bytes = (n: number, seed = 1) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kinvault-s3-'));
  server = await start({ dir, minPartSize: PART });
  s3 = client(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: 'packs' }));
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('S3 test server', () => {
  it('puts, gets, ranges, heads and deletes objects', async () => {
    const data = bytes(1000);
    const put = await s3.send(
      new PutObjectCommand({ Bucket: 'packs', Key: 'a/b c+d', Body: data }),
    );
    expect(put.ETag).toBe(`"${createHash('md5').update(data).digest('hex')}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'packs', Key: 'a/b c+d' }));
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(data);
    expect(got.ChecksumCRC32).toBeDefined();
    const range = await s3.send(
      new GetObjectCommand({ Bucket: 'packs', Key: 'a/b c+d', Range: 'bytes=10-19' }),
    );
    expect(range.ContentRange).toBe('bytes 10-19/1000');
    expect(Buffer.from(await range.Body!.transformToByteArray())).toEqual(data.subarray(10, 20));
    expect(
      await s3Error(
        s3.send(new GetObjectCommand({ Bucket: 'packs', Key: 'a/b c+d', Range: 'bytes=1000-' })),
      ),
    ).toEqual({ code: 'InvalidRange', status: 416 });
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'packs', Key: 'a/b c+d' }));
    expect(head.ContentLength).toBe(1000);
    expect(
      await s3Error(s3.send(new GetObjectCommand({ Bucket: 'packs', Key: 'missing' }))),
    ).toEqual({
      code: 'NoSuchKey',
      status: 404,
    });
    expect(
      await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'packs', Key: 'missing' }))),
    ).toEqual({
      code: 'NotFound',
      status: 404,
    });
    await s3.send(new DeleteObjectCommand({ Bucket: 'packs', Key: 'a/b c+d' }));
    const again = await s3.send(new DeleteObjectCommand({ Bucket: 'packs', Key: 'a/b c+d' }));
    expect(again.$metadata.httpStatusCode).toBe(204);
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: 'nobucket', Key: 'x' })))).toEqual({
      code: 'NoSuchBucket',
      status: 404,
    });
  });

  it('lists 1,100 keys in pages of at most 1,000, with delimiter and start-after', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'many' }));
    const keys = Array.from({ length: 1100 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50)
      await Promise.all(
        keys
          .slice(i, i + 50)
          .map((Key) => s3.send(new PutObjectCommand({ Bucket: 'many', Key, Body: 'x' }))),
      );
    await s3.send(new PutObjectCommand({ Bucket: 'many', Key: 'top', Body: 'x' }));
    const seen: string[] = [];
    const sizes: number[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({
          Bucket: 'many',
          Prefix: 'k/',
          ContinuationToken: token,
          MaxKeys: 5000,
        }),
      );
      expect(page.KeyCount).toBe(page.Contents?.length);
      expect(page.Contents?.[0]?.StorageClass).toBe('STANDARD');
      seen.push(...page.Contents!.map((c) => c.Key!));
      sizes.push(page.KeyCount!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(sizes).toEqual([1000, 100]);
    expect(seen).toEqual(keys);
    const grouped = await s3.send(new ListObjectsV2Command({ Bucket: 'many', Delimiter: '/' }));
    expect(grouped.CommonPrefixes).toEqual([{ Prefix: 'k/' }]);
    expect(grouped.Contents?.map((c) => c.Key)).toEqual(['top']);
    expect(grouped.KeyCount).toBe(2);
    const first = await s3.send(
      new ListObjectsV2Command({ Bucket: 'many', Delimiter: '/', MaxKeys: 1 }),
    );
    expect(first.CommonPrefixes).toEqual([{ Prefix: 'k/' }]);
    const second = await s3.send(
      new ListObjectsV2Command({
        Bucket: 'many',
        Delimiter: '/',
        ContinuationToken: first.NextContinuationToken,
      }),
    );
    expect([second.Contents?.map((c) => c.Key), second.CommonPrefixes, second.IsTruncated]).toEqual(
      [['top'], undefined, false],
    );
    const after = await s3.send(
      new ListObjectsV2Command({ Bucket: 'many', StartAfter: 'k/1097', MaxKeys: 2 }),
    );
    expect(after.Contents?.map((c) => c.Key)).toEqual(['k/1098', 'k/1099']);
    expect(after.IsTruncated).toBe(true);
  });

  it('decodes a streamed put (aws-chunked with a CRC32 trailer) and explicit SHA256 and CRC64NVME', async () => {
    const data = bytes(300_000, 7);
    const stream = Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]);
    const chunkedBefore = server.payloads['STREAMING-UNSIGNED-PAYLOAD-TRAILER'] ?? 0;
    await s3.send(
      new PutObjectCommand({
        Bucket: 'packs',
        Key: 'streamed',
        Body: stream,
        ContentLength: data.length,
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: 'packs', Key: 'streamed' }));
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(data);
    expect(got.ChecksumCRC32).toBeDefined();
    expect(server.payloads['STREAMING-UNSIGNED-PAYLOAD-TRAILER']).toBe(chunkedBefore + 1);
    for (const ChecksumAlgorithm of ['SHA256', 'CRC64NVME', 'CRC32C'] as const) {
      const Key = `explicit-${ChecksumAlgorithm}`;
      await s3.send(
        new PutObjectCommand({
          Bucket: 'packs',
          Key,
          Body: Readable.from([data]),
          ContentLength: data.length,
          ChecksumAlgorithm,
        }),
      );
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: 'packs', Key, ChecksumMode: 'ENABLED' }),
      );
      expect(head[`Checksum${ChecksumAlgorithm}`]).toBeDefined();
    }
    const sha = createHash('sha256').update(data).digest('base64');
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: 'packs', Key: 'explicit-SHA256', ChecksumMode: 'ENABLED' }),
    );
    expect(head.ChecksumSHA256).toBe(sha);
    expect(server.requests.PutObject).toBeGreaterThan(0);
    expect(server.internalErrors).toEqual([]);
  });

  it('rejects a wrong checksum with BadDigest (raw request)', async () => {
    const { status, body } = await rawPut(server.endpoint, '/packs/bad', 'hello world', {
      'x-amz-checksum-crc32': Buffer.from([0, 0, 0, 0]).toString('base64'),
    });
    expect(status).toBe(400);
    expect(body).toContain('<Code>BadDigest</Code>');
    expect(body).toContain('The CRC32 you specified did not match the calculated checksum.');
    expect(
      await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'packs', Key: 'bad' }))),
    ).toMatchObject({ status: 404 });
    const chunked = await rawPut(
      server.endpoint,
      '/packs/bad',
      'b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n',
      {
        'content-encoding': 'aws-chunked',
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        'x-amz-decoded-content-length': '11',
        'x-amz-trailer': 'x-amz-checksum-crc32',
      },
    );
    expect(chunked.status).toBe(400);
    expect(chunked.body).toContain('<Code>BadDigest</Code>');
    const unsigned = await rawPut(server.endpoint, '/packs/bad', 'x', { authorization: '' });
    expect(unsigned.status).toBe(403);
  });

  it('resumes a multipart upload after a restart: ListParts, then completion', async () => {
    const parts = [bytes(PART, 1), bytes(PART, 2), bytes(1000, 3)];
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: 'packs',
        Key: 'volume.iso',
        StorageClass: 'STANDARD_IA',
        ChecksumAlgorithm: 'CRC32',
      }),
    );
    for (let i = 0; i < 2; i++)
      await s3.send(
        new UploadPartCommand({
          Bucket: 'packs',
          Key: 'volume.iso',
          UploadId,
          PartNumber: i + 1,
          Body: parts[i],
        }),
      );
    await s3.send(
      new PutObjectCommand({ Bucket: 'packs', Key: 'kept', Body: 'survives a restart' }),
    );
    await restart();
    const kept = await s3.send(new GetObjectCommand({ Bucket: 'packs', Key: 'kept' }));
    expect(await kept.Body!.transformToString()).toBe('survives a restart');
    const listed = await s3.send(
      new ListPartsCommand({ Bucket: 'packs', Key: 'volume.iso', UploadId, MaxParts: 1 }),
    );
    expect(listed.Parts?.map((p) => p.PartNumber)).toEqual([1]);
    expect(listed.IsTruncated).toBe(true);
    const rest = await s3.send(
      new ListPartsCommand({
        Bucket: 'packs',
        Key: 'volume.iso',
        UploadId,
        PartNumberMarker: listed.NextPartNumberMarker,
      }),
    );
    const done = [...listed.Parts!, ...rest.Parts!];
    const last = await s3.send(
      new UploadPartCommand({
        Bucket: 'packs',
        Key: 'volume.iso',
        UploadId,
        PartNumber: 3,
        Body: parts[2],
      }),
    );
    done.push({ PartNumber: 3, ETag: last.ETag, ChecksumCRC32: last.ChecksumCRC32 });
    const completed = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'packs',
        Key: 'volume.iso',
        UploadId,
        MultipartUpload: {
          Parts: done.map((p) => ({
            PartNumber: p.PartNumber,
            ETag: p.ETag,
            ChecksumCRC32: p.ChecksumCRC32,
          })),
        },
      }),
    );
    const md5s = Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()));
    expect(completed.ETag).toBe(`"${createHash('md5').update(md5s).digest('hex')}-3"`);
    expect(completed.ChecksumCRC32).toMatch(/-3$/);
    const got = await s3.send(
      new GetObjectCommand({ Bucket: 'packs', Key: 'volume.iso', ChecksumMode: 'ENABLED' }),
    );
    expect(got.StorageClass).toBe('STANDARD_IA');
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(Buffer.concat(parts));
    expect(
      await s3Error(
        s3.send(new ListPartsCommand({ Bucket: 'packs', Key: 'volume.iso', UploadId })),
      ),
    ).toEqual({
      code: 'NoSuchUpload',
      status: 404,
    });
  });

  it('aborts an upload, and rejects small parts, wrong ETags and unordered parts', async () => {
    const create = () => s3.send(new CreateMultipartUploadCommand({ Bucket: 'packs', Key: 'mp' }));
    const aborted = (await create()).UploadId;
    const uploads = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: 'packs', Prefix: 'mp' }),
    );
    expect(uploads.Uploads?.map((u) => u.UploadId)).toEqual([aborted]);
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: 'packs', Key: 'mp', UploadId: aborted }),
    );
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'packs', Prefix: 'mp' }));
    expect(after.Uploads).toBeUndefined();
    expect(
      await s3Error(
        s3.send(
          new UploadPartCommand({
            Bucket: 'packs',
            Key: 'mp',
            UploadId: aborted,
            PartNumber: 1,
            Body: 'x',
          }),
        ),
      ),
    ).toEqual({
      code: 'NoSuchUpload',
      status: 404,
    });
    const { UploadId } = await create();
    const a = await s3.send(
      new UploadPartCommand({
        Bucket: 'packs',
        Key: 'mp',
        UploadId,
        PartNumber: 1,
        Body: bytes(100),
      }),
    );
    const b = await s3.send(
      new UploadPartCommand({
        Bucket: 'packs',
        Key: 'mp',
        UploadId,
        PartNumber: 2,
        Body: bytes(100),
      }),
    );
    const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
      s3Error(
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: 'packs',
            Key: 'mp',
            UploadId,
            MultipartUpload: { Parts },
          }),
        ),
      );
    expect(
      await complete([
        { PartNumber: 1, ETag: a.ETag },
        { PartNumber: 2, ETag: b.ETag },
      ]),
    ).toEqual({
      code: 'EntityTooSmall',
      status: 400,
    });
    expect(await complete([{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }])).toEqual(
      { code: 'InvalidPart', status: 400 },
    );
    expect(
      await complete([
        { PartNumber: 2, ETag: b.ETag },
        { PartNumber: 1, ETag: a.ETag },
      ]),
    ).toEqual({
      code: 'InvalidPartOrder',
      status: 400,
    });
    expect(
      await s3Error(
        s3.send(
          new UploadPartCommand({
            Bucket: 'packs',
            Key: 'mp',
            UploadId,
            PartNumber: 10_001,
            Body: 'x',
          }),
        ),
      ),
    ).toEqual({
      code: 'InvalidArgument',
      status: 400,
    });
  });

  it('keeps DEEP_ARCHIVE objects frozen until restored; GetObjectAttributes works on them', async () => {
    const Key = 'frozen';
    await s3.send(
      new PutObjectCommand({
        Bucket: 'packs',
        Key,
        Body: 'cold data',
        StorageClass: 'DEEP_ARCHIVE',
      }),
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'packs', Key }));
    expect(head.StorageClass).toBe('DEEP_ARCHIVE');
    expect(head.Restore).toBeUndefined();
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: 'packs', Key })))).toEqual({
      code: 'InvalidObjectState',
      status: 403,
    });
    const attributes = await s3.send(
      new GetObjectAttributesCommand({
        Bucket: 'packs',
        Key,
        ObjectAttributes: ['ETag', 'Checksum', 'StorageClass', 'ObjectSize'],
      }),
    );
    expect(attributes).toMatchObject({ StorageClass: 'DEEP_ARCHIVE', ObjectSize: 9 });
    expect(attributes.Checksum?.ChecksumCRC32).toBeDefined();
    // Deep Archive has no Expedited retrieval (Standard within 12 h, Bulk within 48 h).
    const expedited = await s3Error(
      s3.send(
        new RestoreObjectCommand({
          Bucket: 'packs',
          Key,
          RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: 'Expedited' } },
        }),
      ),
    );
    expect(expedited.status).toBe(400);
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: 'packs', Key }))).Restore,
    ).toBeUndefined();
    const restore = {
      Bucket: 'packs',
      Key,
      RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: 'Bulk' as const } },
    };
    expect((await s3.send(new RestoreObjectCommand(restore))).$metadata.httpStatusCode).toBe(202);
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'packs', Key }))).Restore).toBe(
      'ongoing-request="true"',
    );
    expect(await s3Error(s3.send(new RestoreObjectCommand(restore)))).toEqual({
      code: 'RestoreAlreadyInProgress',
      status: 409,
    });
    expect(await s3Error(s3.send(new GetObjectCommand({ Bucket: 'packs', Key })))).toEqual({
      code: 'InvalidObjectState',
      status: 403,
    });
    expect(await server.completeRestores('packs')).toBe(1);
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'packs', Key }))).Restore).toMatch(
      /^ongoing-request="false", expiry-date="\w{3}, \d{2} \w{3} \d{4} 00:00:00 GMT"$/,
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: 'packs', Key }));
    expect(await got.Body!.transformToString()).toBe('cold data');
    expect((await s3.send(new RestoreObjectCommand(restore))).$metadata.httpStatusCode).toBe(200);
  });

  it('fails the next requests on demand (503 SlowDown)', async () => {
    server.failNext('PutObject', 2);
    expect(
      await s3Error(s3.send(new PutObjectCommand({ Bucket: 'packs', Key: 'f', Body: 'x' }))),
    ).toEqual({ code: 'SlowDown', status: 503 });
    expect(
      await s3Error(s3.send(new PutObjectCommand({ Bucket: 'packs', Key: 'f', Body: 'x' }))),
    ).toEqual({ code: 'SlowDown', status: 503 });
    await s3.send(new PutObjectCommand({ Bucket: 'packs', Key: 'f', Body: 'x' }));
  });
});

describe('S3 test server: raw bodies', () => {
  const crc32 = (b: Buffer) => {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(zlibCrc32(b));
    return out.toString('base64');
  };
  const signed = (chunks: Buffer[]) =>
    Buffer.concat([
      ...chunks.flatMap((c) => [
        Buffer.from(`${c.length.toString(16)};chunk-signature=${'a'.repeat(64)}\r\n`),
        c,
        Buffer.from('\r\n'),
      ]),
      Buffer.from(`0;chunk-signature=${'b'.repeat(64)}\r\n\r\n`),
    ]);
  const streaming = (decoded: number) => ({
    'content-encoding': 'aws-chunked',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'x-amz-decoded-content-length': String(decoded),
  });

  it('strips chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and checks chunk sizes and lengths', async () => {
    const data = bytes(10_000, 9);
    const chunks = [data.subarray(0, 8192), data.subarray(8192)];
    const ok = await rawPut(
      server.endpoint,
      '/packs/signed',
      signed(chunks),
      streaming(data.length),
    );
    expect(ok.status).toBe(200);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'packs', Key: 'signed' }));
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(data);
    const small = await rawPut(
      server.endpoint,
      '/packs/signed2',
      signed([data.subarray(0, 100), data.subarray(100)]),
      streaming(data.length),
    );
    expect(small.body).toContain('<Code>InvalidChunkSizeError</Code>');
    const short = await rawPut(
      server.endpoint,
      '/packs/signed2',
      signed(chunks),
      streaming(data.length + 1),
    );
    expect([short.status, short.body]).toEqual([
      400,
      expect.stringContaining('<Code>IncompleteBody</Code>'),
    ]);
  });

  it('checks Content-MD5, a hex x-amz-content-sha256 and an unsigned trailer', async () => {
    const body = Buffer.from('hello world');
    const md5 = await rawPut(server.endpoint, '/packs/md5', body, {
      'content-md5': createHash('md5').update('other').digest('base64'),
    });
    expect(md5.body).toContain('<Code>BadDigest</Code>');
    const sha = await rawPut(server.endpoint, '/packs/sha', body, {
      'x-amz-content-sha256': createHash('sha256').update('other').digest('hex'),
    });
    expect(sha.body).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
    const trailer = await rawPut(
      server.endpoint,
      '/packs/trailer',
      Buffer.from(`b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:${crc32(body)}\r\n\r\n`),
      {
        'content-encoding': 'aws-chunked',
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        'x-amz-decoded-content-length': '11',
        'x-amz-trailer': 'x-amz-checksum-crc32',
      },
    );
    expect(trailer.status).toBe(200);
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: 'packs', Key: 'trailer', ChecksumMode: 'ENABLED' }),
    );
    expect([head.ContentLength, head.ChecksumCRC32]).toEqual([11, crc32(body)]);
    const missing = await rawPut(server.endpoint, '/packs/none', body, { authorization: '' });
    expect([missing.status, missing.body]).toEqual([
      403,
      expect.stringContaining('<Code>AccessDenied</Code>'),
    ]);
    const copy = await rawPut(server.endpoint, '/packs/copy', body, {
      'x-amz-copy-source': '/packs/trailer',
    });
    expect([copy.status, copy.body]).toEqual([
      501,
      expect.stringContaining('<Code>NotImplemented</Code>'),
    ]);
  });
});

describe('S3 test server: lib-storage, faults, persistence and a clock', () => {
  it('takes a lib-storage Upload (default CRC32 parts) and lists its parts in GetObjectAttributes', async () => {
    const data = bytes(11 * 1024 * 1024, 4);
    const before = server.requests.UploadPart ?? 0;
    const upload = new Upload({
      client: s3,
      params: { Bucket: 'packs', Key: 'iso', Body: Readable.from([data]) },
    });
    const done = await upload.done();
    expect(done.ETag).toMatch(/-3"$/);
    expect(server.requests.UploadPart).toBe(before + 3);
    const got = await s3.send(
      new GetObjectCommand({ Bucket: 'packs', Key: 'iso', ChecksumMode: 'ENABLED' }),
    );
    expect(
      createHash('sha256')
        .update(await got.Body!.transformToByteArray())
        .digest('hex'),
    ).toBe(createHash('sha256').update(data).digest('hex'));
    const attributes = await s3.send(
      new GetObjectAttributesCommand({
        Bucket: 'packs',
        Key: 'iso',
        ObjectAttributes: ['ObjectParts', 'Checksum'],
      }),
    );
    expect(attributes.ObjectParts?.TotalPartsCount).toBe(3);
    expect(attributes.ObjectParts?.Parts?.map((p) => p.Size)).toEqual([
      5 * 1024 * 1024,
      5 * 1024 * 1024,
      1024 * 1024,
    ]);
    expect(attributes.Checksum?.ChecksumType).toBeDefined();
  });

  it('completes a CRC64NVME (full-object) multipart upload whose checksum the SDK verifies on GET', async () => {
    const parts = [bytes(PART, 5), bytes(500, 6)];
    const Key = 'full-object';
    const { UploadId, ChecksumType } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: 'packs', Key, ChecksumAlgorithm: 'CRC64NVME' }),
    );
    expect(ChecksumType).toBe('FULL_OBJECT');
    const sent = [];
    for (const [i, Body] of parts.entries()) {
      const r = await s3.send(
        new UploadPartCommand({
          Bucket: 'packs',
          Key,
          UploadId,
          PartNumber: i + 1,
          Body,
          ChecksumAlgorithm: 'CRC64NVME',
        }),
      );
      sent.push({ PartNumber: i + 1, ETag: r.ETag, ChecksumCRC64NVME: r.ChecksumCRC64NVME });
    }
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'packs',
        Key,
        UploadId,
        MultipartUpload: { Parts: sent },
      }),
    );
    expect(done.ChecksumType).toBe('FULL_OBJECT');
    const whole = await s3.send(
      new PutObjectCommand({
        Bucket: 'packs',
        Key: 'whole',
        Body: Buffer.concat(parts),
        ChecksumAlgorithm: 'CRC64NVME',
      }),
    );
    expect(done.ChecksumCRC64NVME).toBe(whole.ChecksumCRC64NVME);
    const got = await s3.send(
      new GetObjectCommand({ Bucket: 'packs', Key, ChecksumMode: 'ENABLED' }),
    );
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(Buffer.concat(parts));
    const removed = await s3.send(
      new DeleteObjectsCommand({
        Bucket: 'packs',
        Delete: { Objects: [{ Key }, { Key: 'whole' }, { Key: 'never-was' }] },
      }),
    );
    expect(removed.Deleted?.map((d) => d.Key)).toEqual([Key, 'whole', 'never-was']);
    expect(await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'packs', Key })))).toMatchObject({
      status: 404,
    });
  });

  it('cuts a connection mid-body on demand and stores nothing of it', async () => {
    server.cutNext('PutObject', 1000);
    await expect(
      s3.send(new PutObjectCommand({ Bucket: 'packs', Key: 'cut', Body: bytes(5000) })),
    ).rejects.toThrow();
    expect(
      await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'packs', Key: 'cut' }))),
    ).toMatchObject({ status: 404 });
    await s3.send(new PutObjectCommand({ Bucket: 'packs', Key: 'cut', Body: bytes(5000) }));
    server.cutNext('GetObject', 100);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'packs', Key: 'cut' }));
    await expect(got.Body!.transformToByteArray()).rejects.toThrow();
    expect(server.internalErrors).toEqual([]);
  });

  it('restores on the injected clock after the tier delay, then lets the copy expire', async () => {
    const clockDir = await mkdtemp(join(tmpdir(), 'kinvault-s3-clock-'));
    let now = Date.UTC(2026, 0, 10, 12);
    const HOUR = 3_600_000;
    const clocked = await start({
      dir: clockDir,
      now: () => now,
      restoreDelay: (tier) => (tier === 'Bulk' ? 48 * HOUR : 12 * HOUR),
    });
    const c = client(clocked.endpoint);
    const at = (t: number) => {
      now = t;
      c.config.systemClockOffset = t - Date.now();
    };
    try {
      at(now);
      await c.send(new CreateBucketCommand({ Bucket: 'cold' }));
      await c.send(
        new PutObjectCommand({
          Bucket: 'cold',
          Key: 'v',
          Body: 'volume',
          StorageClass: 'DEEP_ARCHIVE',
        }),
      );
      await c.send(
        new RestoreObjectCommand({
          Bucket: 'cold',
          Key: 'v',
          RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: 'Bulk' } },
        }),
      );
      at(now + 47 * HOUR);
      expect((await c.send(new HeadObjectCommand({ Bucket: 'cold', Key: 'v' }))).Restore).toBe(
        'ongoing-request="true"',
      );
      at(now + 2 * HOUR);
      expect((await c.send(new HeadObjectCommand({ Bucket: 'cold', Key: 'v' }))).Restore).toBe(
        'ongoing-request="false", expiry-date="Wed, 14 Jan 2026 00:00:00 GMT"',
      );
      expect(
        await (
          await c.send(new GetObjectCommand({ Bucket: 'cold', Key: 'v' }))
        ).Body!.transformToString(),
      ).toBe('volume');
      at(Date.UTC(2026, 0, 14));
      expect(
        (await c.send(new HeadObjectCommand({ Bucket: 'cold', Key: 'v' }))).Restore,
      ).toBeUndefined();
      expect(await s3Error(c.send(new GetObjectCommand({ Bucket: 'cold', Key: 'v' })))).toEqual({
        code: 'InvalidObjectState',
        status: 403,
      });
    } finally {
      c.destroy();
      await clocked.stop();
      await rm(clockDir, { recursive: true, force: true });
    }
  });
});

/** A PUT signed with a dummy signature, with whatever headers the test wants. */
function rawPut(
  endpoint: string,
  path: string,
  body: string | Buffer,
  headers: Record<string, string>,
) {
  const date = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const all: Record<string, string> = {
    authorization: `AWS4-HMAC-SHA256 Credential=test/${date.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
    'x-amz-date': date,
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    'content-length': String(Buffer.byteLength(body)),
    ...headers,
  };
  if (all.authorization === '') delete all.authorization;
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${endpoint}${path}`, { method: 'PUT', headers: all }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}
