/**
 * Three off-site copies (issue 10 §5): a USB folder, an S3 bucket (the S3 test server)
 * and a Google Drive folder (the Drive test server, through googleapis in the built
 * coordinator). Within one job cycle every pack and recovery object is at all three,
 * byte-identical to the NAS's and verified; `where` says so. Then the Drive folder is
 * deleted behind the coordinator's back: the staging check finds its packs and recovery
 * objects missing and the workers copy them again into a new folder. No secret is
 * printed or logged, also when Drive uploads fail.
 * (The default policy, one copy on exactly one target, is proven by staging.test.ts.)
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
import {
  driveTarget,
  nasObjects,
  s3Bucket,
  setCopies,
  useS3Credentials,
  type Bucket,
} from './support/targets.js';
import { start as startDrive, type DriveServer } from './support/drive-server/index.js';
import { deleteDriveFolder, driveFolderContents } from './support/drive-client.js';

const S3_SECRET = 'kv-s3-secret-that-must-never-be-printed';
const CLIENT_SECRET = 'kv-oauth-client-secret-never-printed';
const REFRESH_TOKEN = 'kv-refresh-token-never-printed';
const FOLDER = 'Kinvault Family';
/** The test's own access token at the Drive test server (never given to the coordinator). */
const ADMIN_TOKEN = 'test-admin-token';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Where {
  packs: { pack: string; locations: { location: string; state: string; verifiedAt: string }[] }[];
}

describe('three off-site copies: a folder, S3 and Google Drive (built commands)', () => {
  let c: Coordinator;
  let work: string;
  let bucket: Bucket;
  let drive: DriveServer;
  let snapshot: string;
  let anna: string;
  const outputs: string[] = [];
  let restoreEnv = () => {};
  const kd = async (...args: string[]) => {
    const r = await runKinvaultd([...args, '--data-dir', c.dataDir]);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const jobs = async () => (JSON.parse((await kd('jobs', '--json')).stdout) as unknown[]).length;

  beforeAll(async () => {
    work = await traversableTempDir('kinvault-staging-three-');
    bucket = await s3Bucket(join(work, 's3'));
    // Only the refresh token written below is honoured, and only access tokens the
    // token endpoint issued for it (and the test's own).
    drive = await startDrive({
      dir: join(work, 'drive'),
      refreshTokens: [REFRESH_TOKEN],
      validTokens: [ADMIN_TOKEN],
    });
    restoreEnv = useS3Credentials(work, S3_SECRET);
    const { dataDir, port } = await initCoordinator('kinvault-staging-three-data-');
    await setCopies(dataDir, 3);
    c = await startCoordinator(dataDir, port);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    await bucket?.stop();
    await drive?.stop();
    restoreEnv();
    await removeTempDirs();
  });

  /** The Drive folder's objects by key ("~" in a file name is "/" in the key). */
  async function driveObjects(): Promise<Map<string, string>> {
    const { sha256: byName, copies } = await driveFolderContents(
      drive.rootUrl,
      FOLDER,
      ADMIN_TOKEN,
    );
    for (const [name, n] of copies) expect(n, `copies of ${name}`).toBe(1);
    return new Map([...byName].map(([name, hash]) => [name.replaceAll('~', '/'), hash]));
  }

  it('puts every pack and recovery object on all three targets, verified, and says where', async () => {
    const usb = join(work, 'usb', 'kinvault');
    await mkdir(join(work, 'usb'));
    const { url: driveUrl } = await driveTarget({
      dir: work,
      rootUrl: drive.rootUrl,
      folder: FOLDER,
      refreshToken: REFRESH_TOKEN,
      clientSecret: CLIENT_SECRET,
    });
    const s3url = `s3://family/home?endpoint=${bucket.server.endpoint}&region=us-east-1&forcePathStyle=true`;
    for (const [name, url, ...extra] of [
      ['usb', `file://${usb}`, '--allow-same-disk'],
      ['cloud', s3url],
      ['drive', driveUrl],
    ] as const)
      expect(await kd('target', 'add', name, url, '--role', 'staging', ...extra)).toMatchObject({
        code: 0,
      });

    anna = join(work, 'anna');
    await enrollDevice(c.dataDir, 'anna-laptop', anna);
    const src = join(work, 'photos');
    await mkdir(src);
    // Packs above the Drive store's 5 MiB multipart limit go as resumable uploads.
    for (let i = 0; i < 3; i++) await writeFile(join(src, `VID_${i}.mp4`), randomBytes(6e6));
    for (let i = 0; i < 10; i++) await writeFile(join(src, `IMG_${i}.jpg`), randomBytes(40_000));
    const backup = await runKinvault(anna, ['backup', src, '--json']);
    expect(backup.code).toBe(0);
    outputs.push(backup.stdout, backup.stderr);
    snapshot = (JSON.parse(backup.stdout.trim().split('\n').at(-1)!) as { snapshot: string })
      .snapshot;
    await expect.poll(jobs, { timeout: 90_000, interval: 500 }).toBe(0);

    // The same objects, byte for byte, on the NAS, the folder, the bucket and the Drive.
    const nas = await nasObjects(c.dataDir);
    expect([...nas.keys()].some((k) => k.startsWith('packs/'))).toBe(true);
    for (const kind of ['snapshots/', 'keys/', 'catalog/'])
      expect(
        [...nas.keys()].some((k) => k.startsWith(kind)),
        kind,
      ).toBe(true);
    const folder = new Map<string, string>();
    for (const f of await filesUnder(usb))
      if (!f.startsWith('.')) folder.set(f, sha256(await readFile(join(usb, f))));
    expect(folder).toEqual(nas);
    expect(await bucket.objects('home')).toEqual(nas);
    expect(await driveObjects()).toEqual(nas);
    expect(drive.requests['upload.resumable.start'] ?? 0).toBeGreaterThan(0);
    // One access token serves the coordinator's jobs (not a refresh per copy).
    expect(drive.requests['oauth.token']).toBeLessThan(nas.size);

    const where = JSON.parse((await kd('where', snapshot, '--json')).stdout) as Where;
    const packsAtNas = [...nas.keys()].filter((k) => k.startsWith('packs/')).map((k) => k.slice(9));
    expect(where.packs.map((p) => p.pack).sort()).toEqual(packsAtNas.sort());
    for (const p of where.packs) {
      expect(p.locations.map((l) => `${l.location} ${l.state}`).sort()).toEqual([
        'nas ok',
        'staging:cloud ok',
        'staging:drive ok',
        'staging:usb ok',
      ]);
      for (const l of p.locations) expect(l.verifiedAt, l.location).not.toBeNull();
    }
    const status = JSON.parse((await kd('status', '--json')).stdout) as {
      offsite: { unprotectedPacks: number; copiesRequired: number };
    };
    expect(status.offsite).toMatchObject({ unprotectedPacks: 0, copiesRequired: 3 });
  });

  it('copies everything again after the Drive folder was deleted behind its back', async () => {
    await deleteDriveFolder(drive.rootUrl, FOLDER, ADMIN_TOKEN);
    const check = await kd('check', '--tier', 'staging', '--json');
    expect(check.code).toBe(1);
    const found = JSON.parse(check.stdout) as {
      bad: { pack: string; state: string; target: string }[];
      badObjects: { key: string; state: string; target: string }[];
    };
    const where = JSON.parse((await kd('where', snapshot, '--json')).stdout) as Where;
    expect(found.bad.map((b) => `${b.state} ${b.pack} ${b.target}`).sort()).toEqual(
      where.packs.map((p) => `missing ${p.pack} drive`).sort(),
    );
    const recovery = [...(await nasObjects(c.dataDir)).keys()].filter(
      (k) => !k.startsWith('packs/'),
    );
    expect(found.badObjects.map((b) => `${b.state} ${b.key} ${b.target}`).sort()).toEqual(
      recovery.map((k) => `missing ${k} drive`).sort(),
    );
    const onDrive = async () => {
      const now = JSON.parse((await kd('where', snapshot, '--json')).stdout) as Where;
      return now.packs.filter((p) =>
        p.locations.some((l) => l.location === 'staging:drive' && l.state === 'ok'),
      ).length;
    };
    await expect.poll(onDrive, { timeout: 90_000, interval: 1000 }).toBe(where.packs.length);
    expect((await kd('check', '--tier', 'staging')).code).toBe(0);
    // Transparently: no copy failed on the way (the folder was found missing, made again).
    expect(c.log()).not.toMatch(/not found in the Drive/);
    const targets = JSON.parse((await kd('target', 'list', '--json')).stdout) as {
      name: string;
      lastError: string | null;
    }[];
    expect(targets.find((t) => t.name === 'drive')?.lastError).toBeNull();
    await expect.poll(jobs, { timeout: 60_000, interval: 500 }).toBe(0);
    expect(await driveObjects()).toEqual(await nasObjects(c.dataDir));
  });

  it('prints and logs no secret: S3 key, OAuth client secret, refresh or access token', async () => {
    // Copies to the Drive fail (Google answering 503 to every upload, whatever the
    // retries) until the coordinator has logged a failed job.
    drive.fail('upload.multipart', 10_000, 503);
    const more = join(work, 'more');
    await mkdir(more);
    await writeFile(join(more, 'IMG_new.jpg'), randomBytes(50_000));
    const backup = await runKinvault(anna, ['backup', more, '--json']);
    expect(backup.code).toBe(0);
    outputs.push(backup.stdout, backup.stderr);
    await expect.poll(() => c.log(), { timeout: 60_000 }).toMatch(/job failed/);
    drive.clearFaults();
    outputs.push((await kd('jobs', '--json')).stdout, (await kd('target', 'list')).stdout);
    await expect.poll(jobs, { timeout: 90_000, interval: 1000 }).toBe(0); // and then they drain
    for (const args of [
      ['status'],
      ['status', '--json'],
      ['target', 'list'],
      ['target', 'list', '--json'],
      ['target', 'test', 'drive', '--json'],
      ['target', 'test', 'cloud', '--json'],
      ['jobs', '--json'],
    ])
      expect((await kd(...args)).code, args.join(' ')).toBe(0);
    const accessTokens = [...drive.validTokens!].filter((t) => t !== ADMIN_TOKEN);
    expect(accessTokens.length).toBeGreaterThan(0);
    const secrets = [S3_SECRET, CLIENT_SECRET, REFRESH_TOKEN, ...accessTokens];
    for (const out of [...outputs, c.log()])
      for (const secret of secrets) expect(out).not.toContain(secret);
  }, 180_000);
});
