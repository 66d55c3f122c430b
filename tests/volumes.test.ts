/**
 * ISO volumes in Glacier Deep Archive (the S3 test server, through the real SDK in the
 * built coordinator): a backup large enough for two volumes is packed into volumes that
 * are sealed by themselves, each uploaded as one DEEP_ARCHIVE object and verified without
 * a thaw; the staging copies of what they hold go; `volumes seal` seals the rest. Each
 * volume, thawed and downloaded, is read by 7-Zip, bsdtar and xorriso: every pack
 * byte-identical, at the offset its MANIFEST gives.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  RestoreObjectCommand,
} from '@aws-sdk/client-s3';
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
import { s3Bucket, useS3Credentials, type Bucket } from './support/targets.js';

const run = promisify(execFile);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MB = 1e6;

interface Volume {
  id: number;
  key: string;
  state: string;
  size: number;
  packs: number;
  parts: number;
  storageClass: string;
  sha256: string;
}

/** The MANIFEST's file lines: path → [offset, length]. */
function manifestFiles(text: string): Map<string, [number, number]> {
  const lines = text.trimEnd().split('\n');
  expect(lines[0]).toBe('kinvault-volume 1');
  const count = Number(/^files (\d+)$/.exec(lines[4]!)![1]);
  const files = lines.slice(5).map((l) => l.split(' '));
  expect(files.length).toBe(count);
  return new Map(files.map(([o, n, p]) => [p!, [Number(o), Number(n)]]));
}

describe('ISO volumes at an archive target (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let bucket: Bucket;
  let restoreEnv = () => {};
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);
  const volumes = async () => JSON.parse((await kd('volumes', '--json')).stdout) as Volume[];
  const jobs = async () => (JSON.parse((await kd('jobs', '--json')).stdout) as unknown[]).length;

  beforeAll(async () => {
    work = await traversableTempDir('kinvault-volumes-');
    bucket = await s3Bucket(join(work, 's3'));
    restoreEnv = useS3Credentials(work, 'kv-volume-secret');
    const { dataDir, port } = await initCoordinator('kinvault-volumes-data-');
    c = await startCoordinator(dataDir, port);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await bucket?.stop();
    restoreEnv();
    await removeTempDirs();
  });

  it('archives a backup in volumes of one object each, verified, and empties staging of them', async () => {
    const usb = join(work, 'usb', 'kinvault');
    await mkdir(join(work, 'usb'));
    expect(
      (await kd('target', 'add', 'usb', `file://${usb}`, '--role', 'staging', '--allow-same-disk'))
        .code,
    ).toBe(0);
    const glacier = `s3://family/archive?endpoint=${bucket.server.endpoint}&forcePathStyle=true&storageClass=DEEP_ARCHIVE&partSize=5MiB`;
    const added = await kd(
      'target',
      'add',
      'glacier',
      glacier,
      '--role',
      'archive',
      '--volume-size',
      '50MB',
    );
    expect(added, added.stderr).toMatchObject({ code: 0 });

    const anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    const src = join(work, 'videos');
    await mkdir(src);
    for (let i = 0; i < 6; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(16 * MB));
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    await expect.poll(jobs, { timeout: 120_000, interval: 500 }).toBe(0);

    // Sealed by themselves: the volumes the packs fill (what is left waits for more).
    const auto = await volumes();
    expect(auto.length).toBeGreaterThanOrEqual(2);
    for (const v of auto) {
      expect(v).toMatchObject({ state: 'verified', storageClass: 'DEEP_ARCHIVE' });
      expect(v.size).toBeLessThanOrEqual(50 * MB);
    }
    // `volumes seal` seals whatever is left.
    const sealed = await kd('volumes', 'seal', '--json');
    expect(sealed, sealed.stderr).toMatchObject({ code: 0 });
    await expect.poll(jobs, { timeout: 120_000, interval: 500 }).toBe(0);
    const all = await volumes();
    expect(all.every((v) => v.state === 'verified')).toBe(true);
    expect((await kd('status')).stdout).toContain(
      `archive glacier: ${all.length} volumes verified`,
    );
    expect((await kd('volumes')).stdout).toMatch(
      /^\s+1 {2}glacier {2}verified {2}.* packs {2}DEEP_ARCHIVE$/m,
    );
    const packsOnNas = (await filesUnder(join(c.dataDir, 'packs'))).length;
    expect(all.reduce((n, v) => n + v.packs, 0)).toBe(packsOnNas);

    // One object per volume, in Deep Archive: HEAD works, GET is refused before a thaw.
    const listed = await bucket.admin.send(
      new ListObjectsV2Command({ Bucket: 'family', Prefix: 'archive/volumes/' }),
    );
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(
      all.map((v) => `archive/${v.key}`).sort(),
    );
    for (const v of all) {
      // Requests per volume, as design §21.3 says: a HEAD, the upload (create, its parts,
      // complete) and the HEAD that verifies it.
      const ops = bucket.server.log
        .filter((r) => r.key === `archive/${v.key}`)
        .map((r) => r.operation);
      expect(ops).toEqual([
        'HeadObject',
        'CreateMultipartUpload',
        ...Array<string>(v.parts).fill('UploadPart'),
        'CompleteMultipartUpload',
        'HeadObject',
      ]);
    }
    for (const v of all) {
      const head = await bucket.admin.send(
        new HeadObjectCommand({ Bucket: 'family', Key: `archive/${v.key}` }),
      );
      expect(head).toMatchObject({ StorageClass: 'DEEP_ARCHIVE', ContentLength: v.size });
      expect(head.Metadata?.sha256).toBe(v.sha256);
      await expect(
        bucket.admin.send(new GetObjectCommand({ Bucket: 'family', Key: `archive/${v.key}` })),
      ).rejects.toMatchObject({ name: 'InvalidObjectState' });
    }

    // Staging keeps no copy of an archived pack (one verified off-site copy is the policy).
    expect((await filesUnder(usb)).filter((f) => f.startsWith('packs/'))).toEqual([]);
    const anyPack = (await filesUnder(join(c.dataDir, 'packs')))[0]!.split('/')[1]!;
    const where = JSON.parse((await kd('where', anyPack, '--json')).stdout) as {
      packs: { locations: { location: string; state: string }[] }[];
    };
    expect(where.packs[0]!.locations.map((l) => `${l.location} ${l.state}`)).toEqual([
      'nas ok',
      expect.stringMatching(/^volume:\d+@glacier ok$/),
    ]);

    // Thawed and downloaded, every volume reads in 7-Zip, bsdtar and xorriso alike.
    const isoDir = join(work, 'isos');
    await mkdir(isoDir);
    for (const v of all) {
      await bucket.admin.send(
        new RestoreObjectCommand({
          Bucket: 'family',
          Key: `archive/${v.key}`,
          RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: 'Bulk' } },
        }),
      );
      expect(await bucket.server.completeRestores('family', `archive/${v.key}`)).toBe(1);
      const got = await bucket.admin.send(
        new GetObjectCommand({ Bucket: 'family', Key: `archive/${v.key}` }),
      );
      const image = Buffer.from(await got.Body!.transformToByteArray());
      expect(sha256(image)).toBe(v.sha256);
      const file = join(isoDir, `${v.id}.iso`);
      await writeFile(file, image);
      const manifest = manifestFiles(await readVia7z(file, 'MANIFEST', work));
      const packs = [...manifest.keys()].filter((p) => p.startsWith('packs/'));
      expect(packs.length).toBe(v.packs);
      for (const [path, [offset, length]] of manifest) {
        const nas = await readFile(join(c.dataDir, path)).catch(() => null);
        const bytes = image.subarray(offset, offset + length);
        if (path.startsWith('packs/')) {
          expect(sha256(bytes), path).toBe(path.split('/')[2]);
          expect(nas?.equals(bytes), path).toBe(true);
        } else if (path !== 'README.txt' && !path.startsWith('catalog/'))
          expect(nas?.equals(bytes), path).toBe(true);
      }
      for (const reader of ['7zz', 'bsdtar', 'xorriso'] as const) {
        const out = join(work, `x-${v.id}-${reader}`);
        await mkdir(out);
        await extract(reader, file, out);
        const names = (await filesUnder(out)).sort();
        expect(names, reader).toEqual([...manifest.keys(), 'MANIFEST'].sort());
        for (const [path, [offset, length]] of manifest)
          expect(
            (await readFile(join(out, path))).equals(image.subarray(offset, offset + length)),
            `${reader} ${path}`,
          ).toBe(true);
      }
    }
    expect(await readdir(isoDir)).toHaveLength(all.length);

    // Its volumes hold the only off-site copies now: the target is not removed without --force.
    const removed = await kd('target', 'remove', 'glacier');
    expect(removed).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('only off-site copy of'),
    });
  }, 300_000);

  it('writes volumes to a folder of ISO files too, each checked by reading it back', async () => {
    const discs = join(work, 'discs', 'kinvault');
    await mkdir(join(work, 'discs'));
    const added = await kd(
      'target',
      'add',
      'discs',
      `file://${discs}`,
      '--role',
      'archive',
      '--allow-same-disk',
    );
    expect(added, added.stderr).toMatchObject({ code: 0 });
    // An archive target takes no quota, a staging one no volume size.
    const refused = await kd(
      'target',
      'add',
      'x',
      `file://${discs}2`,
      '--role',
      'archive',
      '--quota',
      '1GB',
    );
    expect(refused).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--quota is for staging targets'),
    });
    const sealed = await kd('volumes', 'seal', '--target', 'discs', '--json');
    expect(sealed, sealed.stderr).toMatchObject({ code: 0 });
    await expect.poll(jobs, { timeout: 120_000, interval: 500 }).toBe(0);
    const mine = (await volumes()).filter(
      (v) => v.key && v.state === 'verified' && v.storageClass === null,
    );
    expect(mine.length).toBe(1); // 5 GB by default: every pack fits in one
    const file = join(discs, mine[0]!.key);
    const image = await readFile(file);
    expect(sha256(image)).toBe(mine[0]!.sha256);
    const { stdout } = await run('bsdtar', ['-tf', file]);
    const packs = stdout.split('\n').filter((l) => /^packs\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(l));
    expect(packs.length).toBe((await filesUnder(join(c.dataDir, 'packs'))).length);
  }, 120_000);
});

async function extract(reader: '7zz' | 'bsdtar' | 'xorriso', iso: string, out: string) {
  if (reader === '7zz') await run('7zz', ['x', '-y', `-o${out}`, iso]);
  else if (reader === 'bsdtar') await run('bsdtar', ['-xf', iso, '-C', out]);
  else await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
}

async function readVia7z(iso: string, path: string, work: string): Promise<string> {
  const { stdout } = await run('7zz', ['e', '-so', iso, path], {
    cwd: work,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}
