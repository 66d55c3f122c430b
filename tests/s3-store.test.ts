/**
 * The S3 store adapter against the S3 test server, through the real SDK: the conformance
 * suite (single PUTs and multipart), checksums, archived classes, errors and the URL.
 */
import {
  CreateBucketCommand,
  GetObjectAttributesCommand,
  ListMultipartUploadsCommand,
  RestoreObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '@kinvault/stores/s3';
import { bytesBody, openStore, parseS3Url, readAll, sha256Hex, withRetry } from '@kinvault/stores';
import { memoryResume, storeConformance } from '@kinvault/stores/testing';
import { type S3TestServer, start } from './support/s3-server/index.js';

const PART = 64 * 1024;
const BUCKET = 'kinvault';
let dir: string;
let server: S3TestServer;
let admin: S3Client;
let savedEnv: NodeJS.ProcessEnv;
let prefixes = 0;

const AWS_ENV = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
];

/** Sets the environment the SDK's default credential chain reads: only what is given. */
function credentialsEnv(vars: Record<string, string>): void {
  for (const name of AWS_ENV) delete process.env[name];
  Object.assign(process.env, {
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    AWS_CONFIG_FILE: join(dir, 'no-config'),
    AWS_EC2_METADATA_DISABLED: 'true',
    ...vars,
  });
}

const TEST_KEYS = { AWS_ACCESS_KEY_ID: 'kvtest', AWS_SECRET_ACCESS_KEY: 'kvtest-secret' };

function s3Store(query = '', options: { partSize?: number; bucket?: string } = {}): S3Store {
  const prefix = `t${++prefixes}/kinvault`;
  const url = `s3://${options.bucket ?? BUCKET}/${prefix}?endpoint=${server.endpoint}&forcePathStyle=true${query}`;
  return new S3Store(parseS3Url(new URL(url)), { partSize: options.partSize ?? PART });
}

async function failure(
  p: Promise<unknown>,
): Promise<{ code: string; retryable: boolean; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; retryable: boolean; message: string };
  }
  throw new Error('expected a failure');
}

const count = (op: string) => server.requests[op] ?? 0;

/** A body's bytes up to `upTo`, then a failure, as a source that went away. */
async function* brokenAfter(bytes: Uint8Array, upTo: number): AsyncGenerator<Uint8Array> {
  yield bytes.subarray(0, upTo);
  throw new Error('the source went away');
}
const b64 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('base64');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kinvault-s3store-'));
  savedEnv = { ...process.env };
  credentialsEnv(TEST_KEYS);
  server = await start({ dir, minPartSize: PART });
  admin = new S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'admin', secretAccessKey: 'admin' },
    maxAttempts: 1,
  });
  await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  admin?.destroy();
  await server?.stop();
  if (savedEnv) {
    for (const name of AWS_ENV) delete process.env[name];
    Object.assign(process.env, savedEnv);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Payload bytes the server received for objects under a store's prefix. */
const receivedUnder = (store: S3Store) => () =>
  server.log
    .filter((r) => ['PutObject', 'UploadPart'].includes(r.operation))
    .filter((r) => r.key.startsWith(`${store.target.prefix}/`))
    .reduce((n, r) => n + r.bytes, 0);

const fixture = (partSize?: number) => async () => {
  const options = partSize === undefined ? {} : { partSize };
  const store = s3Store('', options);
  const others: S3Store[] = [];
  return {
    store,
    cleanup: async () => [store, ...others].forEach((s) => s.destroy()),
    reopen: () => {
      const again = new S3Store(store.target, { partSize: options.partSize ?? PART });
      others.push(again);
      return again;
    },
    received: receivedUnder(store),
  };
};
storeConformance('s3 (single PUTs)', fixture(16 * 1024 * 1024));
storeConformance('s3 (multipart above 64 KiB)', fixture(PART));

describe('s3 store', () => {
  it('uploads a large body in parts, each with its SHA-256, and records the whole SHA-256', async () => {
    const store = s3Store();
    const big = randomBytes(5 * PART + 100);
    const before = count('UploadPart');
    const info = await store.put('packs/ab/big', bytesBody(big));
    expect(info).toEqual({ key: 'packs/ab/big', size: big.length, sha256: sha256Hex(big) });
    expect(count('UploadPart') - before).toBe(6);
    const attrs = await admin.send(
      new GetObjectAttributesCommand({
        Bucket: BUCKET,
        Key: `${store.target.prefix}/packs/ab/big`,
        ObjectAttributes: ['ObjectParts', 'StorageClass'],
      }),
    );
    const parts = attrs.ObjectParts?.Parts ?? [];
    expect(attrs.ObjectParts?.TotalPartsCount).toBe(6);
    expect(parts.map((p) => p.ChecksumSHA256)).toEqual(
      Array.from({ length: 6 }, (_, i) => b64(big.subarray(i * PART, (i + 1) * PART))),
    );
    expect((await readAll(store, 'packs/ab/big')).equals(big)).toBe(true);
    store.destroy();
  });

  it('reports the SHA-256 in head for single and multipart objects, S3 verified the single one; list heads nothing', async () => {
    const store = s3Store();
    const small = randomBytes(1000);
    const big = randomBytes(3 * PART);
    await store.put('packs/01/small', bytesBody(small));
    await store.put('packs/02/big', bytesBody(big));
    expect(await store.head('packs/01/small')).toEqual({
      key: 'packs/01/small',
      size: 1000,
      sha256: sha256Hex(small),
      storageClass: 'STANDARD',
      providerSha256: b64(small),
    });
    // A multipart object's checksum is the composite: of the parts' digests, and their count.
    const partDigests = [0, 1, 2].map((i) =>
      createHash('sha256')
        .update(big.subarray(i * PART, (i + 1) * PART))
        .digest(),
    );
    expect(await store.head('packs/02/big')).toMatchObject({
      sha256: sha256Hex(big),
      providerSha256: `${b64(Buffer.concat(partDigests))}-3`,
    });
    const heads = count('HeadObject');
    expect((await store.list('packs/')).objects).toEqual([
      { key: 'packs/01/small', size: small.length, sha256: null },
      { key: 'packs/02/big', size: big.length, sha256: null },
    ]);
    expect(count('HeadObject')).toBe(heads);
    const attrs = await admin.send(
      new GetObjectAttributesCommand({
        Bucket: BUCKET,
        Key: `${store.target.prefix}/packs/01/small`,
        ObjectAttributes: ['Checksum'],
      }),
    );
    expect(attrs.Checksum?.ChecksumSHA256).toBe(b64(small));
    store.destroy();
  });

  /** The uploads under way under a store's prefix. */
  const uploadsUnder = async (store: S3Store) =>
    (
      await admin.send(
        new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${store.target.prefix}/` }),
      )
    ).Uploads ?? [];

  /** The part numbers sent for a key, in order. */
  const partsSent = (store: S3Store, key: string) =>
    server.log
      .filter((r) => r.operation === 'UploadPart' && r.key === `${store.target.prefix}/${key}`)
      .map((r) => r.partNumber);

  it('resumes a multipart upload in a new instance from the saved state: ListParts (every page), then only the parts S3 lacks', async () => {
    const store = s3Store();
    const big = randomBytes(7 * PART + 10);
    const resume = memoryResume();
    const cut = { ...bytesBody(big), open: () => brokenAfter(big, 5 * PART + 1) };
    await expect(store.put('packs/06/big', cut, { resume })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      retryable: true,
    });
    expect(partsSent(store, 'packs/06/big')).toEqual([1, 2, 3, 4, 5]);
    expect(resume.saves).toBe(1);
    expect(JSON.parse(resume.state!)).toMatchObject({ partSize: PART, size: big.length });
    expect(await uploadsUnder(store)).toHaveLength(1); // kept for the next put
    const again = new S3Store(store.target, { partSize: PART, listPartsPage: 2 });
    const listed = count('ListParts');
    await again.put('packs/06/big', bytesBody(big), { resume });
    expect(count('ListParts') - listed).toBe(3);
    expect(partsSent(store, 'packs/06/big')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(resume.state).toBeNull();
    expect((await readAll(again, 'packs/06/big')).equals(big)).toBe(true);
    expect(await again.head('packs/06/big')).toMatchObject({ sha256: sha256Hex(big) });
    expect(await uploadsUnder(store)).toEqual([]);
    store.destroy();
    again.destroy();
  });

  it('completes a generated body (openAt) whose parts S3 holds all, when only the completion failed', async () => {
    const store = s3Store();
    const big = randomBytes(3 * PART + 10); // the last part short: 4 parts end past its size
    const resume = memoryResume();
    const starts: number[] = [];
    const generated = {
      ...bytesBody(big),
      async *openAt(offset: number) {
        starts.push(offset);
        if (offset > big.length) throw new Error(`openAt past the end: ${offset}`);
        yield big.subarray(offset);
      },
    };
    server.failNext('CompleteMultipartUpload', 3, 503);
    await expect(store.put('volumes/v1.iso', generated, { resume })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      retryable: true,
    });
    expect(partsSent(store, 'volumes/v1.iso')).toEqual([1, 2, 3, 4]);
    const again = new S3Store(store.target, { partSize: PART });
    await again.put('volumes/v1.iso', generated, { resume });
    expect(partsSent(store, 'volumes/v1.iso')).toEqual([1, 2, 3, 4]); // none sent again
    expect(starts.at(-1)).toBe(big.length);
    expect(resume.state).toBeNull();
    expect((await readAll(again, 'volumes/v1.iso')).equals(big)).toBe(true);
    expect(await uploadsUnder(store)).toEqual([]);
    store.destroy();
    again.destroy();
  });

  it('starts afresh when the saved upload is gone or was for other bytes (aborting that one)', async () => {
    const store = s3Store();
    const first = randomBytes(3 * PART);
    const resume = memoryResume();
    const cut = { ...bytesBody(first), open: () => brokenAfter(first, 2 * PART) };
    await expect(store.put('packs/07/x', cut, { resume })).rejects.toThrow();
    const [stale] = await uploadsUnder(store);
    // Other bytes for the key: the saved upload is aborted, a new one made.
    const other = randomBytes(3 * PART);
    await store.put('packs/07/x', bytesBody(other), { resume });
    expect((await readAll(store, 'packs/07/x')).equals(other)).toBe(true);
    expect(await uploadsUnder(store)).toEqual([]);
    expect(resume.state).toBeNull();
    // A saved upload S3 no longer has: a new one.
    resume.state = JSON.stringify({
      v: 1,
      uploadId: stale!.UploadId,
      partSize: PART,
      size: first.length,
      sha256: sha256Hex(first),
    });
    const created = count('CreateMultipartUpload');
    await store.put('packs/07/y', bytesBody(first), { resume });
    expect(count('CreateMultipartUpload') - created).toBe(1);
    expect((await readAll(store, 'packs/07/y')).equals(first)).toBe(true);
    expect(resume.state).toBeNull();
    store.destroy();
  });

  it('aborts the upload and clears the state when the body turns out not to match', async () => {
    const store = s3Store();
    const big = randomBytes(3 * PART);
    const resume = memoryResume();
    const err = await failure(
      store.put('packs/08/bad', bytesBody(big, sha256Hex(randomBytes(1))), { resume }),
    );
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(resume.saves).toBe(1);
    expect(resume.state).toBeNull();
    expect(await uploadsUnder(store)).toEqual([]);
    store.destroy();
  });

  it('sweeps the uploads under its prefix that no saved state refers to', async () => {
    const store = s3Store();
    const bytes = randomBytes(3 * PART);
    const kept = memoryResume();
    const lost = memoryResume();
    for (const [key, resume] of [
      ['packs/09/a', kept],
      ['packs/09/b', lost],
    ] as const)
      await expect(
        store.put(key, { ...bytesBody(bytes), open: () => brokenAfter(bytes, PART) }, { resume }),
      ).rejects.toThrow();
    const neighbour = s3Store();
    await expect(
      neighbour.put(
        'packs/09/c',
        { ...bytesBody(bytes), open: () => brokenAfter(bytes, PART) },
        { resume: memoryResume() },
      ),
    ).rejects.toThrow();
    expect(await uploadsUnder(store)).toHaveLength(2);
    await store.sweep([kept.state!, 'not a state of ours']);
    expect((await uploadsUnder(store)).map((u) => u.Key)).toEqual([
      `${store.target.prefix}/packs/09/a`,
    ]);
    expect(await uploadsUnder(neighbour)).toHaveLength(1); // another prefix: not ours
    await store.put('packs/09/a', bytesBody(bytes), { resume: kept });
    expect(partsSent(store, 'packs/09/a')).toEqual([1, 2, 3]);
    await neighbour.sweep([]);
    expect(await uploadsUnder(neighbour)).toEqual([]);
    store.destroy();
    neighbour.destroy();
  });

  it('refuses a multipart body that does not match its SHA-256 and leaves no upload behind', async () => {
    const store = s3Store();
    const big = randomBytes(3 * PART);
    const err = await failure(store.put('packs/03/bad', bytesBody(big, sha256Hex(randomBytes(1)))));
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(await store.head('packs/03/bad')).toBeNull();
    const uploads = await admin.send(
      new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: store.target.prefix }),
    );
    expect(uploads.Uploads ?? []).toEqual([]);
    store.destroy();
  });

  it('stores in DEEP_ARCHIVE; a get fails clearly until the object is restored', async () => {
    const store = s3Store('&storageClass=DEEP_ARCHIVE');
    expect(store.capabilities.needsRestore).toBe(true);
    expect(s3Store('&storageClass=GLACIER_IR').capabilities.needsRestore).toBe(false);
    const bytes = randomBytes(2000);
    await store.put('packs/04/cold', bytesBody(bytes));
    const key = `${store.target.prefix}/packs/04/cold`;
    const attrs = await admin.send(
      new GetObjectAttributesCommand({
        Bucket: BUCKET,
        Key: key,
        ObjectAttributes: ['StorageClass'],
      }),
    );
    expect(attrs.StorageClass).toBe('DEEP_ARCHIVE');
    const err = await failure(readAll(store, 'packs/04/cold'));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(/packs\/04\/cold .* must be restored first/);
    expect((await store.head('packs/04/cold'))?.sha256).toBe(sha256Hex(bytes));
    await admin.send(
      new RestoreObjectCommand({ Bucket: BUCKET, Key: key, RestoreRequest: { Days: 1 } }),
    );
    expect((await failure(readAll(store, 'packs/04/cold'))).code).toBe('FAILED_PRECONDITION');
    expect(await server.completeRestores(BUCKET, key)).toBe(1);
    expect((await readAll(store, 'packs/04/cold')).equals(bytes)).toBe(true);
    store.destroy();
  });

  it('retries injected 503s itself (3 tries), then surfaces them as retryable UNAVAILABLE', async () => {
    const store = s3Store();
    const bytes = randomBytes(500);
    let before = count('PutObject');
    server.failNext('PutObject', 2, 503);
    await store.put('snapshots/a', bytesBody(bytes));
    expect(count('PutObject') - before).toBe(3);
    before = count('PutObject');
    server.failNext('PutObject', 3, 503);
    const err = await failure(store.put('snapshots/b', bytesBody(bytes)));
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(err.message).toContain(store.label);
    expect(count('PutObject') - before).toBe(3);
    expect(await store.head('snapshots/b')).toBeNull();
    // The retry wrapper above the store tries again, and the put goes through.
    server.failNext('UploadPart', 3, 500);
    const big = randomBytes(2 * PART);
    await withRetry(store, { attempts: 2, baseDelayMs: 0, maxDelayMs: 0 }).put(
      'snapshots/c',
      bytesBody(big),
    );
    expect((await readAll(store, 'snapshots/c')).equals(big)).toBe(true);
    store.destroy();
  });

  it('turns a connection lost while reading into retryable UNAVAILABLE', async () => {
    const store = s3Store();
    const bytes = randomBytes(100_000);
    await store.put('packs/05/x', bytesBody(bytes));
    server.cutNext('GetObject', 10_000, 1);
    const err = await failure(readAll(store, 'packs/05/x'));
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect((await readAll(store, 'packs/05/x')).equals(bytes)).toBe(true);
    store.destroy();
  });

  it('names a missing bucket, and says where credentials come from when there are none', async () => {
    const missing = s3Store('', { bucket: 'no-such-bucket' });
    const err = await failure(missing.put('keys/recovery', bytesBody(randomBytes(10))));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(/bucket no-such-bucket does not exist/);
    missing.destroy();
    credentialsEnv({});
    try {
      const store = s3Store();
      const refused = await failure(store.put('keys/recovery', bytesBody(randomBytes(10))));
      expect(refused.code).toBe('UNAUTHORIZED');
      expect(refused.message).toMatch(/No S3 credentials were found for s3:\/\/kinvault\//);
      expect(refused.message).toMatch(/AWS_ACCESS_KEY_ID.*~\/\.aws\/credentials.*role/);
      store.destroy();
    } finally {
      credentialsEnv(TEST_KEYS);
    }
  });

  it('takes its target from the URL, and refuses what it cannot use by name', () => {
    const t = parseS3Url(
      new URL('s3://my-bucket/family/kv/?region=eu-west-1&storageClass=GLACIER_IR'),
    );
    expect(t).toMatchObject({
      bucket: 'my-bucket',
      prefix: 'family/kv',
      endpoint: undefined,
      region: 'eu-west-1',
      storageClass: 'GLACIER_IR',
      forcePathStyle: false,
      label: 's3://my-bucket/family/kv?region=eu-west-1&storageClass=GLACIER_IR',
    });
    expect(parseS3Url(new URL('s3://my-bucket')).prefix).toBe('');
    const parts = parseS3Url(new URL('s3://my-bucket/x?partSize=5242880'));
    expect(parts).toMatchObject({
      partSize: 5 * 1024 * 1024,
      label: 's3://my-bucket/x?partSize=5MiB',
    });
    expect(parseS3Url(new URL('s3://my-bucket/x?partSize=64MiB')).partSize).toBe(64 * 1024 * 1024);
    const store = openStore(
      's3://my-bucket/x?endpoint=https://s3.example.com:9000/&forcePathStyle=true',
    );
    // The adapter (and the AWS SDK) loads on the first call; what the URL says is there now.
    expect(store.label).toBe(
      's3://my-bucket/x?endpoint=https://s3.example.com:9000&forcePathStyle=true',
    );
    expect(store.capabilities).toMatchObject({ rangedReads: true, needsRestore: false });
    const refused: [string, RegExp][] = [
      ['s3://AKIAEXAMPLE:hunter2secret@my-bucket/x', /must not hold credentials/],
      [
        's3://my-bucket/x?endpoint=https://AKIAEXAMPLE:hunter2secret@h',
        /must not hold credentials/,
      ],
      ['s3://My_Bucket/x', /is not an S3 bucket name/],
      ['s3://ab/x', /is not an S3 bucket name/],
      ['s3://my-bucket/Upper/x', /is not a prefix/],
      ['s3://my-bucket/a//b', /is not a prefix/],
      [
        's3://my-bucket/x?storageClass=GLACIERX',
        /"GLACIERX" is not a storageClass \(known: STANDARD,/,
      ],
      ['s3://my-bucket/x?region=EU_West', /"EU_West" is not a region/],
      ['s3://my-bucket/x?forcePathStyle=yes', /forcePathStyle is true or false/],
      ['s3://my-bucket/x?endpoint=ftp://h', /endpoint of an S3 target is an https:\/\//],
      ['s3://my-bucket/x?endpoint=nota url', /endpoint of an S3 target is a URL/],
      ['s3://my-bucket/x?endpoint=https://h/path', /scheme, host and port only/],
      [
        's3://my-bucket/x?secretKey=abc',
        /"secretKey" is not a parameter .*known: endpoint, region/,
      ],
      ['s3://my-bucket/x?region=a&region=b', /gives region twice/],
      ['s3://my-bucket:9000/x', /has no port/],
      ['s3://my-bucket/x?partSize=4MiB', /partSize=4MiB is not a part size: 5MiB to 5GiB/],
      ['s3://my-bucket/x?partSize=6GiB', /is not a part size/],
      ['s3://my-bucket/x?partSize=16MB', /is not a part size/],
    ];
    for (const [url, message] of refused) {
      let thrown: unknown;
      try {
        openStore(url);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, url).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(message),
      });
      expect((thrown as Error).message, url).not.toMatch(/hunter2secret|AKIAEXAMPLE|abc/);
    }
  });

  it('reports no usage or quota (S3 has none)', async () => {
    const store = s3Store();
    expect(await store.usage()).toEqual({ usedBytes: null, quotaBytes: null });
    store.destroy();
  });
});
