/**
 * kill -9 of the coordinator while it stages packs (issue 10 §5): to a file target, and
 * in multipart and resumable uploads to S3 and Google Drive. After restarts, staging
 * completes by itself; every pack is at each target once, whole, with nothing partial
 * left, and cut-off uploads went on from where they stopped.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  type S3Client,
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
import { databaseOf, filesUnder } from './support/files.js';
import type { S3TestServer } from './support/s3-server/index.js';
import {
  driveTarget,
  nasObjects,
  s3Bucket,
  setCopies,
  useS3Credentials,
  type Bucket,
} from './support/targets.js';
import { start as startDrive, type DriveServer } from './support/drive-server/index.js';
import { driveFileHashes, driveFileNames } from './support/drive-client.js';

describe('staging survives kill -9 (built commands)', () => {
  let c: Coordinator;
  let work: string;
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);
  const pending = async () => (JSON.parse((await kd('jobs', '--json')).stdout) as unknown[]).length;

  beforeAll(async () => {
    const { dataDir, port } = await initCoordinator('kinvault-staging-kill-');
    c = await startCoordinator(dataDir, port);
    work = await traversableTempDir('kinvault-staging-kill-work-');
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await removeTempDirs();
  });

  it('completes staging after kills at random moments, with nothing partial or doubled', async () => {
    const anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    const usb = join(work, 'usb', 'kinvault');
    await mkdir(join(work, 'usb'));
    // The disk is unplugged during the backup, so a backlog waits when kills begin; each
    // restart retries it at once.
    expect(
      (await kd('target', 'add', 'usb', `file://${usb}`, '--role', 'staging', '--allow-same-disk'))
        .code,
    ).toBe(0);
    const marker = join(usb, '.kinvault-target');
    await rename(marker, `${marker}.away`);
    const src = join(work, 'videos');
    await mkdir(src);
    for (let i = 0; i < 24; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(6e6));
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);
    await expect.poll(pending, { timeout: 30_000 }).toBeGreaterThan(4);
    await rename(`${marker}.away`, marker);
    expect(await c.stop('SIGKILL')).toBe(null);
    c = await startCoordinator(c.dataDir, c.port);

    // A start that finds jobs a killed coordinator held says so: that kill hit a copy.
    let hits = 0;
    for (let k = 0; k < 4; k++) {
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 250)));
      const log = c.log();
      expect(await c.stop('SIGKILL'), log).toBe(null); // (not already ended on its own)
      c = await startCoordinator(c.dataDir, c.port);
      if (/jobs a stopped coordinator held run again/.test(c.log())) hits++;
    }
    await expect.poll(pending, { timeout: 90_000, interval: 500 }).toBe(0);

    const nas = (await filesUnder(join(c.dataDir, 'packs'))).map((p) => p.split('/')[1]!);
    const staged = await filesUnder(join(usb, 'packs'));
    expect(staged.map((p) => p.split('/')[1]!)).toEqual(nas);
    for (const p of staged)
      expect(
        createHash('sha256')
          .update(await readFile(join(usb, 'packs', p)))
          .digest('hex'),
      ).toBe(p.split('/')[1]);
    expect((await filesUnder(join(usb, '.tmp'))).length).toBe(0);
    const where = JSON.parse((await kd('status', '--json')).stdout) as {
      offsite: { unprotectedPacks: number };
    };
    expect(where.offsite.unprotectedPacks).toBe(0);
    console.log(`staging kill -9 test: ${hits} of 4 kills hit a copy in progress`);
  });
});

/**
 * kill -9 while packs go to an S3 bucket in multipart uploads and to a Google Drive in
 * resumable uploads (both test servers, through the real SDKs in the built coordinator).
 * Each kill comes while a part or chunk is being sent: the test server holds that
 * request unanswered (stallNext) until the coordinator is gone, so no kill depends on
 * timing luck. After restarts: staging completes, every object at both targets is the
 * NAS's, no multipart upload or partial or doubled Drive file remains, each upload cut
 * off went on after the restart (same upload id, same session), and at most one part or
 * chunk per kill was sent again.
 */
describe('multipart and resumable uploads survive kill -9 (built commands)', () => {
  const MiB = 1024 * 1024;
  const PART = 5 * MiB;
  const CHUNK = MiB;
  const KILLS = 4;
  let c: Coordinator;
  let work: string;
  let s3: S3TestServer;
  let drive: DriveServer;
  let admin: S3Client;
  let bucket: Bucket;
  let restoreEnv = () => {};
  const kd = (...args: string[]) => runKinvaultd([...args, '--data-dir', c.dataDir]);
  const pending = async () => (JSON.parse((await kd('jobs', '--json')).stdout) as unknown[]).length;
  const random = (n: number) => Math.floor(Math.random() * n);

  beforeAll(async () => {
    work = await traversableTempDir('kinvault-upload-kill-');
    bucket = await s3Bucket(join(work, 's3'));
    ({ server: s3, admin } = bucket);
    drive = await startDrive({ dir: join(work, 'drive'), refreshTokens: ['refresh-ok'] });
    restoreEnv = useS3Credentials(work, 'kv-s3-secret');
    const { dataDir, port } = await initCoordinator('kinvault-upload-kill-data-');
    await setCopies(dataDir, 2);
    c = await startCoordinator(dataDir, port);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await bucket?.stop();
    await drive?.stop();
    restoreEnv();
    await removeTempDirs();
  });

  async function addTargets(): Promise<void> {
    const s3url = `s3://family/home?endpoint=${s3.endpoint}&forcePathStyle=true&partSize=5MiB`;
    expect((await kd('target', 'add', 'cloud', s3url, '--role', 'staging')).code).toBe(0);
    const { url: driveUrl } = await driveTarget({
      dir: work,
      rootUrl: drive.rootUrl,
      folder: 'Kinvault',
      refreshToken: 'refresh-ok',
      extra: '&chunkSize=1MiB',
    });
    const added = await kd('target', 'add', 'drive', driveUrl, '--role', 'staging');
    expect(added, added.stderr).toMatchObject({ code: 0 });
  }

  /** How many times each key's part (S3) or chunk offset (Drive) was sent. */
  function sends(entries: string[]): { total: number; distinct: number } {
    return { total: entries.length, distinct: new Set(entries).size };
  }

  it('resumes the uploads cut off by each kill and sends at most one part or chunk again per kill', async () => {
    await addTargets();
    const anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    const src = join(work, 'videos');
    await mkdir(src);
    for (let i = 0; i < 3; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(16e6));
    // The first part sent stalls, so that staging waits while the backup runs.
    s3.stallNext('UploadPart');
    expect((await runKinvault(anna, ['backup', src])).code).toBe(0);

    // Two kills during S3 parts (whose uploads come first), then two during Drive chunks.
    const cutOff: { at: 's3' | 'drive'; upload: string; logged: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      if (k === 1) s3.stallNext('UploadPart', 1, random(3));
      if (k >= 2) drive.stallNext('upload.resumable.chunk', 1, random(6));
      await expect
        .poll(() => s3.stalled + drive.stalled, { timeout: 30_000, interval: 20 })
        .toBe(1);
      // The held request itself names its upload (two packs may be on their way at once).
      cutOff.push(
        s3.stalled > 0
          ? { at: 's3', upload: s3.held[0]!.uploadId!, logged: s3.log.length }
          : { at: 'drive', upload: drive.held[0]!.uploadId!, logged: drive.log.length },
      );
      const log = c.log();
      expect(await c.stop('SIGKILL'), log).toBe(null);
      // The held request is let go once the server sees the killed client's end closed.
      await expect
        .poll(() => s3.stalled + drive.stalled, { timeout: 15_000, interval: 20 })
        .toBe(0);
      // As a kill between CreateMultipartUpload and saving its id leaves: the start sweeps
      // it away. An upload outside the target's prefix is not ours: it stays.
      if (k === KILLS - 1)
        for (const Key of [
          'home/packs/00/left-behind',
          'elsewhere/upload',
          'home/nested/packs/00/x', // another target's, under a longer prefix
          'home/photo.jpg', // the user's own
        ])
          await admin.send(new CreateMultipartUploadCommand({ Bucket: 'family', Key }));
      c = await startCoordinator(c.dataDir, c.port);
    }
    s3.cancelStalls();
    drive.cancelStalls();
    await expect.poll(pending, { timeout: 60_000, interval: 500 }).toBe(0);

    // Everything at both targets, byte for byte the NAS's, and nothing else.
    const nas = await nasObjects(c.dataDir);
    expect(await bucket.objects('home')).toEqual(nas);
    const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: 'family' }));
    expect((uploads.Uploads ?? []).map((u) => u.Key).sort()).toEqual([
      'elsewhere/upload',
      'home/nested/packs/00/x',
      'home/photo.jpg',
    ]);
    const expectedNames = [...nas.keys()].map((k) => k.replaceAll('/', '~')).sort();
    expect(await driveFileNames(drive.rootUrl)).toEqual(expectedNames); // no doubles, no partials
    const atDrive = await driveFileHashes(drive.rootUrl);
    expect(new Map([...atDrive].map(([n, h]) => [n.replaceAll('~', '/'), h]))).toEqual(nas);
    const db = await databaseOf(c.dataDir);
    try {
      expect(await db`select target, key from upload_sessions`).toEqual([]);
    } finally {
      await db.end();
    }

    // Each upload cut off went on after the restart: the same S3 upload, the same session.
    for (const cut of cutOff) {
      const later =
        cut.at === 's3'
          ? s3.log
              .slice(cut.logged)
              .some((r) => r.uploadId === cut.upload && r.operation === 'UploadPart')
          : drive.log.slice(cut.logged).some((r) => r.uploadId === cut.upload);
      expect(later, `${cut.at} upload cut off by a kill`).toBe(true);
    }
    expect(cutOff.map((cut) => cut.at)).toEqual(['s3', 's3', 'drive', 'drive']);

    // At most one part (S3) and one chunk (Drive) sent again per kill.
    const packs = [...nas.keys()].filter((k) => k.startsWith('packs/'));
    const sizes = new Map<string, number>();
    for (const k of packs) sizes.set(k, (await stat(join(c.dataDir, k))).size);
    const parts = sends(
      s3.log.filter((r) => r.operation === 'UploadPart').map((r) => `${r.key} ${r.partNumber}`),
    );
    const needed = packs
      .filter((k) => sizes.get(k)! > PART)
      .reduce((n, k) => n + Math.ceil(sizes.get(k)! / PART), 0);
    expect(parts.distinct).toBe(needed);
    expect(parts.total - parts.distinct).toBeLessThanOrEqual(KILLS);
    const chunks = drive.log.filter((r) => r.op === 'upload.resumable.chunk');
    const neededChunks = packs
      .filter((k) => sizes.get(k)! > 5 * MiB)
      .reduce((n, k) => n + Math.ceil(sizes.get(k)! / CHUNK), 0);
    expect(chunks.length - neededChunks).toBeLessThanOrEqual(KILLS);
    const chunkBytes = packs
      .filter((k) => sizes.get(k)! > 5 * MiB)
      .reduce((n, k) => n + sizes.get(k)!, 0);
    expect(drive.bytesReceived['upload.resumable.chunk']! - chunkBytes).toBeLessThanOrEqual(
      KILLS * CHUNK,
    );

    // Session URIs grant uploads by themselves: none in any output or log.
    const outputs = [
      c.log(),
      (await kd('jobs', '--json')).stdout,
      (await kd('status', '--json')).stdout,
      (await kd('target', 'list', '--json')).stdout,
    ].join('\n');
    for (const id of new Set(chunks.map((r) => r.uploadId!))) expect(outputs).not.toContain(id);
    console.log(
      `upload kill -9 test: ${KILLS} kills, each during a part or chunk; ${parts.total - parts.distinct} parts and ${chunks.length - neededChunks} chunks sent again`,
    );
  });
});
