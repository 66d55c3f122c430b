#!/usr/bin/env node
/**
 * npm run bench:staging [-- --size-mb N] [--runs N] [--keep] — staging against rclone.
 *
 * Backs up about N MB of random (incompressible) files with the built agent and
 * coordinator (embedded PostgreSQL, no targets), then, for each run, stages the packs
 * through the built coordinator to a fresh bucket on the S3 test server
 * (tests/support/s3-server, on loopback) and to a fresh folder, timed from
 * `kinvaultd target add` until no job is left (the jobs table, read every 50 ms, then
 * `kinvaultd jobs --json`); ours also copies the recovery objects and writes a probe.
 * And it `rclone copy`s the same packs to a fresh bucket on the same server (rclone's
 * s3 backend, default flags: 4 transfers) and to a fresh folder. Runs alternate who
 * goes first. It prints MB/s (pack bytes / seconds), the S3
 * requests per pack counted at the server, and the speed ratio ours/rclone (above 1:
 * ours is faster), min/median/max over the runs. The last line is one JSON object.
 *
 * Needs rclone (Debian: apt-get install rclone); run through tsx (the npm script does),
 * which loads the TypeScript S3 test server. Everything it starts is stopped and its
 * temporary folder removed at the end, on failure and on Ctrl-C (unless --keep).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import postgres from 'postgres';
import { start as startS3 } from '../tests/support/s3-server/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const kinvaultd = join(root, 'apps/server/dist/src/cli/main.js');
const kinvault = join(root, 'apps/agent/dist/src/cli/main.js');
const HELP = `Usage: npm run bench:staging [-- --size-mb N] [--runs N] [--keep]
  --size-mb N  about how many MB of files to back up and stage (default 1000; env KINVAULT_BENCH_SIZE_MB)
  --runs N     repetitions, alternating who goes first (default 3; env KINVAULT_BENCH_RUNS)
  --keep       keep the temporary folder (coordinator, packs, S3 server state, copies)
Needs rclone on the PATH (Debian/Ubuntu: sudo apt-get install rclone).
The last line of output is a JSON object with all figures.`;

const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string' },
    runs: { type: 'string' },
    keep: { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const usage = (message) => {
  console.error(`bench:staging: ${message}\n${HELP}`);
  process.exit(2);
};
const sizeMb = Number(values['size-mb'] ?? process.env.KINVAULT_BENCH_SIZE_MB ?? 1000);
const runs = Number(values.runs ?? process.env.KINVAULT_BENCH_RUNS ?? 3);
if (!Number.isFinite(sizeMb) || sizeMb < 20) usage(`--size-mb is a number of at least 20.`);
if (!Number.isInteger(runs) || runs < 1 || runs > 20) usage(`--runs is a whole number, 1–20.`);
const rcloneVersion = (() => {
  try {
    return execFileSync('rclone', ['version'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    console.error(
      'bench:staging needs rclone on the PATH, to compare with. Install it: on Debian or Ubuntu "sudo apt-get install rclone"; elsewhere see https://rclone.org/install/. Then run "npm run bench:staging" again.',
    );
    process.exit(2);
  }
})();

const SECRET = randomBytes(16).toString('hex');
const ACCESS_KEY = 'kvbench';
// The coordinator (started below) and every kinvaultd command get S3 credentials where
// the SDK looks first, and nothing else.
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: ACCESS_KEY,
  AWS_SECRET_ACCESS_KEY: SECRET,
  AWS_EC2_METADATA_DISABLED: 'true',
});

// --- what must be stopped and removed, whatever happens ---
const cleanups = [];
let cleaning;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const step of cleanups.reverse()) await step().catch((e) => console.error(String(e)));
  })());
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(signal, () => {
    console.error(`bench:staging: ${signal}: stopping what it started …`);
    void cleanup().finally(() => process.exit(130));
  });

const say = (line) => console.log(line);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

/** Runs a command; rejects with its stderr on a non-zero exit. Killed on cleanup. */
function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { env: withEnv(env), maxBuffer: 256 << 20 },
      (error, stdout, stderr) => {
        running.delete(child);
        if (error) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.slice(-3000)}`));
        else resolve(stdout);
      },
    );
    running.add(child);
  });
}
const running = new Set();
/** The environment with `changes` made (an undefined value removes the variable). */
const withEnv = (changes) =>
  Object.fromEntries(
    Object.entries({ ...process.env, ...changes }).filter(([, v]) => v !== undefined),
  );
cleanups.push(async () => {
  for (const child of running) child.kill('SIGTERM');
});
const kd = (...args) => run(process.execPath, [kinvaultd, ...args, '--data-dir', dataDir]);

// --- the data, the coordinator and the S3 test server ---
const work = await mkdtemp(join(tmpdir(), 'kinvault-bench-staging-'));
await chmod(work, 0o711); // the embedded database's user must enter it when root
cleanups.push(async () => {
  if (values.keep) say(`Kept ${work} (remove it with: rm -rf ${work}).`);
  else await rm(work, { recursive: true, force: true });
});
const dataDir = join(work, 'coordinator');

async function makeFiles(dir) {
  await mkdir(dir, { recursive: true });
  let bytes = 0;
  for (let i = 0; bytes < sizeMb * 1e6; i++) {
    const size = Math.round(1e6 + ((i * 7919) % 70) * 1e5); // 1–8 MB, like photos
    await writeFile(join(dir, `IMG_${String(i).padStart(5, '0')}.JPG`), randomBytes(size));
    bytes += size;
  }
  return bytes;
}

async function startCoordinator() {
  const port = await freePort();
  await run(process.execPath, [
    kinvaultd,
    'init',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${port}`,
  ]);
  const child = spawn(process.execPath, [kinvaultd, 'start', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((r) => child.once('exit', r));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
  });
  for (let waited = 0; !log.includes('kinvaultd is running'); waited += 100) {
    if (waited > 60_000 || child.exitCode !== null)
      throw new Error(`kinvaultd did not start:\n${log}`);
    await sleep(100);
  }
  return { log: () => log };
}

async function backUp(src) {
  const stateDir = join(work, 'agent');
  const env = { KINVAULT_PASSPHRASE: 'bench passphrase' };
  const { code } = JSON.parse(await kd('device', 'add', 'bench', '--json'));
  await run(process.execPath, [kinvault, '--state-dir', stateDir, 'setup', code], env);
  await run(process.execPath, [kinvault, '--state-dir', stateDir, 'backup', src, '--json'], env);
}

async function filesUnder(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/**
 * Waits until no job is left. The coordinator's database is asked directly every 50 ms
 * (a `kinvaultd jobs` command takes about a second of CPU to start, too coarse a clock
 * and a load on this small host); `kinvaultd jobs --json` then confirms the list is
 * empty. Returns when the database first said so.
 */
async function settled(what, times = {}) {
  const deadline = Date.now() + 30 * 60_000;
  let done;
  for (;;) {
    const [{ n, failing, copying }] = await db`
      select count(*)::int as n, count(*) filter (where last_error is not null)::int as failing,
        coalesce(bool_or(kind = 'stage.pack' and state = 'running'), false) as copying
      from jobs`;
    if (copying) times.firstCopy ??= performance.now();
    if (n === 0) {
      done = performance.now();
      break;
    }
    if (failing > 0 || Date.now() > deadline) break;
    await sleep(50);
  }
  const left = JSON.parse(await kd('jobs', '--json'));
  if (done !== undefined && left.length === 0) return done;
  throw new Error(
    `${what}: jobs are left or failing:\n${JSON.stringify(left, null, 1).slice(0, 3000)}`,
  );
}
let db;

const diff = (after, before) =>
  Object.fromEntries(
    Object.entries(after)
      .map(([op, n]) => [op, n - (before[op] ?? 0)])
      .filter(([, n]) => n > 0),
  );

// --- the four ways of copying ---

/**
 * Seconds from `target add` until no job is left, how long `target add` took, and when
 * the first pack copy ran (seen every 50 ms: the workers' idle wait and the scan).
 */
async function oursTo(name, url) {
  const t0 = performance.now();
  await kd('target', 'add', name, url, '--role', 'staging', '--allow-same-disk');
  const added = performance.now();
  const times = {};
  const t1 = await settled(`staging to ${name}`, times);
  // Gone again, so that the next target is the only one and receives every pack.
  await kd('target', 'remove', name, '--force');
  await settled(`removing ${name}`);
  return {
    seconds: (t1 - t0) / 1000,
    addSeconds: (added - t0) / 1000,
    firstCopySeconds: ((times.firstCopy ?? t1) - t0) / 1000,
  };
}

async function rcloneTo(dest) {
  const t0 = performance.now();
  await run('rclone', ['copy', join(dataDir, 'packs'), dest, '-q'], rcloneEnv);
  return (performance.now() - t0) / 1000;
}
let rcloneEnv;

async function emptyBucket(admin, bucket) {
  for (;;) {
    const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
    if (keys.length === 0) return;
    await admin.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
}

function spread(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x) => Math.round(x * 100) / 100;
  const mid = s.length / 2;
  const median = s.length % 2 ? s[Math.floor(mid)] : (s[mid - 1] + s[mid]) / 2;
  return { min: r(s[0]), median: r(median), max: r(s.at(-1)) };
}

async function main() {
  const src = join(work, 'files');
  say(`Making about ${sizeMb} MB of random files in ${src} …`);
  const dataBytes = await makeFiles(src);
  const s3 = await startS3({ dir: join(work, 's3-server') });
  cleanups.push(() => s3.stop());
  const admin = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
  });
  cleanups.push(async () => admin.destroy());
  rcloneEnv = {
    RCLONE_CONFIG: join(work, 'rclone.conf'),
    RCLONE_S3_PROVIDER: 'Other',
    RCLONE_S3_ENDPOINT: s3.endpoint,
    RCLONE_S3_REGION: 'us-east-1',
    RCLONE_S3_FORCE_PATH_STYLE: 'true',
    // The test server has ListObjectsV2 only (v1 is 501); rclone uses v1 for "Other".
    RCLONE_S3_LIST_VERSION: '2',
    RCLONE_S3_ACCESS_KEY_ID: ACCESS_KEY,
    RCLONE_S3_SECRET_ACCESS_KEY: SECRET,
    // rclone fails on a CA bundle for plain http ("unsupported transport"); none is needed.
    AWS_CA_BUNDLE: undefined,
  };
  await writeFile(rcloneEnv.RCLONE_CONFIG, '');

  say('Starting a coordinator (embedded PostgreSQL) and backing the files up, no targets …');
  await startCoordinator();
  const { database } = JSON.parse(await readFile(join(dataDir, 'config.json'), 'utf8'));
  db = postgres({
    host: '127.0.0.1',
    port: database.port,
    user: 'kinvault',
    password: database.password,
    database: 'kinvault',
    max: 1,
    onnotice: () => {},
  });
  cleanups.push(() => db.end({ timeout: 5 }));
  await backUp(src);
  await settled('the backup');
  await rm(src, { recursive: true });
  const packs = await filesUnder(join(dataDir, 'packs'));
  const packBytes = (await Promise.all(packs.map((p) => stat(p)))).reduce((n, s) => n + s.size, 0);
  const sizes = (await Promise.all(packs.map((p) => stat(p)))).map((s) => s.size);
  const MiB = 1024 * 1024;
  const mb = packBytes / 1e6;
  say(
    `${Math.round(dataBytes / 1e6)} MB of files made ${packs.length} packs, ${mb.toFixed(0)} MB (${(Math.min(...sizes) / MiB).toFixed(1)}–${(Math.max(...sizes) / MiB).toFixed(1)} MiB each). ${rcloneVersion}.`,
  );

  // Besides the packs, ours copies the recovery objects (design §19.2), and `target add`
  // writes, reads, lists and deletes one probe object.
  const recovery = (
    await Promise.all(
      ['snapshots', 'keys', 'catalog'].map((d) => filesUnder(join(dataDir, d)).catch(() => [])),
    )
  ).flat().length;
  const results = { ours_s3: [], rclone_s3: [], ours_file: [], rclone_file: [] };
  const targetAdd = { s3: [], file: [] };
  const firstCopy = { s3: [], file: [] };
  const requests = { ours_s3: [], rclone_s3: [] };
  const measure = {
    ours_s3: async (i) => {
      const bucket = `ours-${i}`;
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      const before = { ...s3.requests };
      const url = `s3://${bucket}/home?endpoint=${s3.endpoint}&region=us-east-1&forcePathStyle=true`;
      const { seconds, addSeconds, firstCopySeconds } = await oursTo(`s3-${i}`, url);
      firstCopy.s3.push(firstCopySeconds);
      requests.ours_s3.push(diff(s3.requests, before));
      targetAdd.s3.push(addSeconds);
      await emptyBucket(admin, bucket);
      return seconds;
    },
    rclone_s3: async (i) => {
      const before = { ...s3.requests };
      const seconds = await rcloneTo(`:s3:rclone-${i}/home/packs`);
      requests.rclone_s3.push(diff(s3.requests, before));
      await emptyBucket(admin, `rclone-${i}`);
      return seconds;
    },
    ours_file: async (i) => {
      const dir = join(work, `ours-folder-${i}`);
      await mkdir(dir);
      const { seconds, addSeconds, firstCopySeconds } = await oursTo(
        `file-${i}`,
        `file://${dir}/kinvault`,
      );
      firstCopy.file.push(firstCopySeconds);
      targetAdd.file.push(addSeconds);
      await rm(dir, { recursive: true });
      return seconds;
    },
    rclone_file: async (i) => {
      const dir = join(work, `rclone-folder-${i}`);
      const seconds = await rcloneTo(join(dir, 'packs'));
      await rm(dir, { recursive: true });
      return seconds;
    },
  };
  for (let i = 1; i <= runs; i++) {
    for (const kind of ['s3', 'file']) {
      const order = i % 2 ? ['ours', 'rclone'] : ['rclone', 'ours'];
      for (const who of order) {
        const seconds = await measure[`${who}_${kind}`](i);
        results[`${who}_${kind}`].push(seconds);
        say(
          `run ${i} ${kind.padEnd(4)} ${who.padEnd(6)} ${seconds.toFixed(2)} s  ${(mb / seconds).toFixed(1)} MB/s`,
        );
      }
    }
  }

  const mbps = (k) => results[k].map((s) => mb / s);
  const ratios = (kind) => results[`ours_${kind}`].map((s, i) => results[`rclone_${kind}`][i] / s);
  const perPack = (list) => {
    const total = {};
    for (const r of list) for (const [op, n] of Object.entries(r)) total[op] = (total[op] ?? 0) + n;
    return Object.fromEntries(
      Object.entries(total).map(([op, n]) => [
        op,
        Math.round((n / list.length / packs.length) * 100) / 100,
      ]),
    );
  };
  const figures = {
    size_mb: Math.round(dataBytes / 1e6),
    packs: packs.length,
    pack_mb: Math.round(mb),
    pack_mib_min: Math.round((Math.min(...sizes) / MiB) * 10) / 10,
    pack_mib_max: Math.round((Math.max(...sizes) / MiB) * 10) / 10,
    recovery_objects: recovery,
    runs,
    rclone: rcloneVersion,
    s3: {
      ours_mb_s: spread(mbps('ours_s3')),
      rclone_mb_s: spread(mbps('rclone_s3')),
      ratio_ours_over_rclone: spread(ratios('s3')),
      ours_target_add_s: spread(targetAdd.s3),
      ours_first_copy_after_s: spread(firstCopy.s3),
      ours_requests_per_pack: perPack(requests.ours_s3),
      // PutObject requests less one per recovery object and the probe's.
      ours_pack_puts_per_pack:
        Math.round(
          ((perPack(requests.ours_s3).PutObject * packs.length - recovery - 1) / packs.length) *
            100,
        ) / 100,
      rclone_requests_per_pack: perPack(requests.rclone_s3),
    },
    file: {
      ours_mb_s: spread(mbps('ours_file')),
      rclone_mb_s: spread(mbps('rclone_file')),
      ratio_ours_over_rclone: spread(ratios('file')),
      ours_target_add_s: spread(targetAdd.file),
      ours_first_copy_after_s: spread(firstCopy.file),
    },
    s3_server_internal_errors: s3.internalErrors.length,
  };
  const line = (kind) => {
    const f = figures[kind];
    return `${kind.padEnd(4)} ours ${f.ours_mb_s.median} MB/s (${f.ours_mb_s.min}–${f.ours_mb_s.max}), rclone ${f.rclone_mb_s.median} MB/s (${f.rclone_mb_s.min}–${f.rclone_mb_s.max}), ours/rclone ${f.ratio_ours_over_rclone.median} (${f.ratio_ours_over_rclone.min}–${f.ratio_ours_over_rclone.max})`;
  };
  say(line('s3'));
  say(
    `     PutObject per pack (less ${recovery} recovery objects and the probe): ${figures.s3.ours_pack_puts_per_pack}`,
  );
  say(
    `     S3 requests per pack: ours ${JSON.stringify(figures.s3.ours_requests_per_pack)}, rclone ${JSON.stringify(figures.s3.rclone_requests_per_pack)}`,
  );
  say(line('file'));
  return figures;
}

let figures;
try {
  figures = await main();
} catch (error) {
  console.error(`bench:staging failed: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
if (figures) console.log(JSON.stringify(figures));
