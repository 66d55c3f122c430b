/**
 * Two off-site copies, one on a USB folder and one in an S3 bucket (the S3 test server,
 * through the real SDK in the built coordinator): every pack and recovery object ends up
 * at both, byte-identical, `where` says so, and the S3 secret appears in no output.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initCoordinator,
  removeTempDirs,
  runKinvaultd,
  startCoordinator,
  traversableTempDir,
  type Coordinator,
} from './support/kinvaultd.js';
import { enrollDevice, runKinvault } from './support/kinvault.js';
import { filesUnder } from './support/files.js';
import { s3Bucket, setCopies, useS3Credentials, type Bucket } from './support/targets.js';

const SECRET = 'kv-s3-secret-that-must-never-be-printed';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('staging to a folder and an S3 bucket (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let bucket: Bucket;
  let restoreEnv = () => {};
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);

  beforeAll(async () => {
    work = await traversableTempDir('kinvault-staging-s3-');
    bucket = await s3Bucket(join(work, 's3'));
    // The coordinator and commands find their credentials where the SDK looks: here,
    // the environment (and nothing else).
    restoreEnv = useS3Credentials(work, SECRET);
    const { dataDir, port } = await initCoordinator('kinvault-staging-s3-data-');
    await setCopies(dataDir, 2);
    c = await startCoordinator(dataDir, port);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await bucket?.stop();
    restoreEnv();
    await removeTempDirs();
  });

  it('puts every pack and recovery object on both targets, and says where', async () => {
    const usb = join(work, 'usb', 'kinvault');
    await mkdir(join(work, 'usb'));
    const s3url = `s3://family/home?endpoint=${bucket.server.endpoint}&region=us-east-1&forcePathStyle=true`;
    expect(
      (await kd('target', 'add', 'usb', `file://${usb}`, '--role', 'staging', '--allow-same-disk'))
        .code,
    ).toBe(0);
    const added = await kd('target', 'add', 'cloud', s3url, '--role', 'staging');
    expect(added).toMatchObject({ code: 0 });

    const anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    const src = join(work, 'photos');
    await mkdir(src);
    for (let i = 0; i < 4; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(5e6));
    for (let i = 0; i < 10; i++) await writeFile(join(src, `IMG_${i}.jpg`), randomBytes(40_000));
    const backup = await runKinvault(anna, ['backup', src, '--json']);
    expect(backup.code).toBe(0);
    const snapshot = (JSON.parse(backup.stdout.trim().split('\n').at(-1)!) as { snapshot: string })
      .snapshot;
    const jobs = async () => (JSON.parse((await kd('jobs', '--json')).stdout) as unknown[]).length;
    await expect.poll(jobs, { timeout: 60_000, interval: 500 }).toBe(0);

    // The same objects, byte for byte, on the NAS, the folder and in the bucket.
    const nas = new Map<string, string>();
    for (const kind of ['packs', 'snapshots', 'keys', 'catalog'])
      for (const f of await filesUnder(join(c.dataDir, kind)))
        nas.set(`${kind}/${f}`, sha256(await readFile(join(c.dataDir, kind, f))));
    const folder = new Map<string, string>();
    for (const f of await filesUnder(usb))
      if (!f.startsWith('.')) folder.set(f, sha256(await readFile(join(usb, f))));
    expect(folder).toEqual(nas);
    expect(await bucket.objects('home')).toEqual(nas);

    const where = JSON.parse((await kd('where', snapshot, '--json')).stdout) as {
      packs: { locations: { location: string; state: string }[] }[];
    };
    expect(where.packs.length).toBeGreaterThan(0);
    for (const p of where.packs)
      expect(p.locations.map((l) => `${l.location} ${l.state}`).sort()).toEqual([
        'nas ok',
        'staging:cloud ok',
        'staging:usb ok',
      ]);

    // Each target's traffic is counted (every pack and recovery object was sent once at least).
    const listed = JSON.parse((await kd('target', 'list', '--json')).stdout) as {
      name: string;
      traffic: { requests: number; bytesSent: number };
    }[];
    let nasBytes = 0;
    for (const key of nas.keys()) nasBytes += (await readFile(join(c.dataDir, key))).byteLength;
    for (const t of listed) {
      expect(t.traffic.requests, t.name).toBeGreaterThanOrEqual(nas.size);
      expect(t.traffic.bytesSent, t.name).toBeGreaterThanOrEqual(nasBytes);
    }
    expect((await kd('status')).stdout).toMatch(
      /target cloud \(staging\): .*; \d+ requests, .* sent/,
    );

    // The secret is in no output and no log.
    const outputs = [
      added.stdout + added.stderr,
      (await kd('status', '--json')).stdout,
      (await kd('status')).stdout,
      (await kd('target', 'list', '--json')).stdout,
      (await kd('target', 'test', 'cloud', '--json')).stdout,
      (await kd('jobs', '--json')).stdout,
      c.log(),
    ];
    for (const out of outputs) expect(out).not.toContain(SECRET);
    expect(bucket.server.requests.PutObject ?? 0).toBeGreaterThanOrEqual(nas.size);
  });

  it('a bucket that keeps failing is FAILING since its first failure, not since the last try', async () => {
    bucket.server.failNext('*', 1_000_000); // every request answers 503 SlowDown
    const src = join(work, 'later');
    await mkdir(src);
    await writeFile(join(src, 'VID_later.mp4'), randomBytes(3e6));
    const anna = join(work, 'anna');
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    const cloud = async () =>
      (
        JSON.parse((await kd('target', 'list', '--json')).stdout) as {
          name: string;
          failingSince: string | null;
        }[]
      ).find((t) => t.name === 'cloud')!;
    await expect.poll(async () => (await cloud()).failingSince, { timeout: 30_000 }).not.toBeNull();
    const since = (await cloud()).failingSince;
    // A later try of the same copies (the job retries after its backoff) fails too.
    const attempts = async () =>
      Math.max(
        ...(JSON.parse((await kd('jobs', '--json')).stdout) as { kind: string; attempts: number }[])
          .filter((j) => j.kind === 'stage.pack')
          .map((j) => j.attempts),
      );
    await expect.poll(attempts, { timeout: 60_000, interval: 1000 }).toBeGreaterThanOrEqual(2);
    expect((await cloud()).failingSince).toBe(since);
    bucket.server.cancelFailures();
  }, 120_000);
});
