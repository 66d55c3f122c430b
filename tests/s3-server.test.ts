/** The S3 test server, driven by the real @aws-sdk/client-s3 (and raw HTTP for what the SDK won't send). */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  RestoreObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
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

  it('lists 2,500 keys in pages of 1,000, with delimiter and start-after', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'many' }));
    const keys = Array.from({ length: 2500 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50)
      await Promise.all(
        keys
          .slice(i, i + 50)
          .map((Key) => s3.send(new PutObjectCommand({ Bucket: 'many', Key, Body: 'x' }))),
      );
    await s3.send(new PutObjectCommand({ Bucket: 'many', Key: 'top', Body: 'x' }));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: 'many', Prefix: 'k/', ContinuationToken: token }),
      );
      pages++;
      expect(page.KeyCount).toBe(page.Contents?.length);
      expect(page.Contents?.[0]?.StorageClass).toBe('STANDARD');
      seen.push(...page.Contents!.map((c) => c.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(pages).toBe(3);
    expect(seen).toEqual(keys);
    const grouped = await s3.send(new ListObjectsV2Command({ Bucket: 'many', Delimiter: '/' }));
    expect(grouped.CommonPrefixes).toEqual([{ Prefix: 'k/' }]);
    expect(grouped.Contents?.map((c) => c.Key)).toEqual(['top']);
    expect(grouped.KeyCount).toBe(2);
    const after = await s3.send(
      new ListObjectsV2Command({ Bucket: 'many', StartAfter: 'k/2497', MaxKeys: 2 }),
    );
    expect(after.Contents?.map((c) => c.Key)).toEqual(['k/2498', 'k/2499']);
    expect(after.IsTruncated).toBe(true);
  });

  it('decodes a streamed put (aws-chunked with a CRC32 trailer) and explicit SHA256 and CRC64NVME', async () => {
    const data = bytes(300_000, 7);
    const stream = Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]);
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
    await restart();
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
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: 'packs', Key: 'mp', UploadId: aborted }),
    );
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

/** A PUT signed with a dummy signature, with whatever headers the test wants. */
function rawPut(endpoint: string, path: string, body: string, headers: Record<string, string>) {
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
