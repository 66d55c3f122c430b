#!/usr/bin/env node
/**
 * npm run bench:backup [-- --size-mb N] — kinvault against restic on the same data.
 *
 * Makes a photo-like tree (2–6 MB photos, 20–60 MB videos, 20,000 small files; about
 * 1.6 GB by default) and measures, for kinvault (agent → coordinator over loopback TLS,
 * embedded PostgreSQL) and restic (REST over `rclone serve restic`): initial backup,
 * no-change re-run and full restore times, and each process's peak RSS. The last line
 * is one JSON object with the figures and the kinvault/restic ratios.
 * Needs restic and rclone (Debian: apt-get install restic rclone); as root with apt it
 * installs them itself.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const kinvaultd = join(root, 'apps/server/dist/src/cli/main.js');
const kinvault = join(root, 'apps/agent/dist/src/cli/main.js');
const { values } = parseArgs({
  options: { 'size-mb': { type: 'string' }, help: { type: 'boolean' }, keep: { type: 'boolean' } },
});
if (values.help) {
  console.log(`Usage: npm run bench:backup [-- --size-mb N] [--keep]
  --size-mb N   approximate size of the photo/video part (default 1600; env KINVAULT_BENCH_SIZE_MB)
  --keep        keep the temporary directory
The last line of output is a JSON object with the figures.`);
  process.exit(0);
}
const sizeMb = Number(values['size-mb'] ?? process.env.KINVAULT_BENCH_SIZE_MB ?? 1600);
if (!Number.isFinite(sizeMb) || sizeMb < 50) {
  console.error(
    `bench:backup: --size-mb must be a number of at least 50, got "${values['size-mb']}".`,
  );
  process.exit(2);
}

function have(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
if (!have('restic') || !have('rclone')) {
  if (process.getuid?.() === 0 && have('apt-get')) {
    console.log('Installing restic and rclone (apt-get) …');
    execFileSync(
      'sh',
      [
        '-c',
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic rclone',
      ],
      { stdio: 'inherit' },
    );
  } else {
    console.error(
      'bench:backup needs restic and rclone on the PATH: on Debian, "sudo apt-get install restic rclone".',
    );
    process.exit(2);
  }
}
if (!have('/usr/bin/time') && !have('time'))
  console.warn('(GNU time not found: peak RSS figures will be missing; apt-get install time)');

const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

/** Runs a command under GNU time; returns wall seconds and peak RSS (MiB). */
function timed(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    execFile(
      '/usr/bin/time',
      ['-f', '%M', cmd, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 256 << 20 },
      (error, stdout, stderr) => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (error)
          return reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.slice(-2000)}`));
        const kb = Number(stderr.trim().split('\n').pop());
        resolve({
          seconds: Math.round(seconds * 100) / 100,
          rssMiB: Math.round(kb / 1024),
          stdout,
        });
      },
    );
  });
}

function peakRssMiB(pid) {
  return readFile(`/proc/${pid}/status`, 'utf8').then(
    (s) => Math.round(Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024),
    () => 0,
  );
}

async function makeTree(dir) {
  // Deterministic sizes; random contents (incompressible, like photos and videos).
  let seed = 12345;
  const rnd = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  let bytes = 0;
  const target = sizeMb * 1e6;
  const videos = Math.max(1, Math.round((target * 0.3) / 40e6));
  for (let v = 0; v < videos; v++) {
    const d = join(dir, 'Videos');
    await mkdir(d, { recursive: true });
    const size = Math.round(20e6 + rnd() * 40e6);
    await writeFile(join(d, `VID_${v}.mp4`), randomBytes(size));
    bytes += size;
  }
  for (let i = 0; bytes < target; i++) {
    const d = join(dir, 'Photos', String(2015 + (i % 10)), String(1 + (i % 12)).padStart(2, '0'));
    await mkdir(d, { recursive: true });
    const size = Math.round(2e6 + rnd() * 4e6);
    await writeFile(join(d, `IMG_${String(i).padStart(5, '0')}.JPG`), randomBytes(size));
    bytes += size;
  }
  for (let i = 0; i < 20_000; i++) {
    const d = join(dir, 'Documents', `folder-${i % 200}`);
    if (i < 200) await mkdir(d, { recursive: true });
    const size = Math.round(200 + rnd() * 8000);
    await writeFile(join(d, `note-${i}.txt`), randomBytes(size));
    bytes += size;
  }
  return bytes;
}

const work = await mkdtemp(join(tmpdir(), 'kinvault-bench-'));
await chmod(work, 0o711);
const src = join(work, 'library');
console.log(`Making a photo-like tree of about ${sizeMb} MB plus 20,000 small files in ${src} …`);
const dataBytes = await makeTree(src);
const mb = dataBytes / 1e6;

// --- kinvault ---
const dataDir = join(work, 'kinvault-coordinator');
const stateDir = join(work, 'kinvault-agent');
const port = await freePort();
execFileSync(
  process.execPath,
  [kinvaultd, 'init', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`],
  { stdio: 'ignore' },
);
const server = spawn(process.execPath, [kinvaultd, 'start', '--data-dir', dataDir], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let serverLog = '';
server.stdout.on('data', (d) => (serverLog += d));
server.stderr.on('data', (d) => (serverLog += d));
for (let waited = 0; !serverLog.includes('kinvaultd is running'); waited += 100) {
  if (waited > 30_000 || server.exitCode !== null)
    throw new Error(`kinvaultd did not start:\n${serverLog}`);
  await new Promise((r) => setTimeout(r, 100));
}
const env = { KINVAULT_PASSPHRASE: 'bench passphrase' };
const code = JSON.parse(
  execFileSync(
    process.execPath,
    [kinvaultd, 'device', 'add', 'bench', '--data-dir', dataDir, '--json'],
    { encoding: 'utf8' },
  ),
).code;
execFileSync(process.execPath, [kinvault, '--state-dir', stateDir, 'setup', code], {
  env: { ...process.env, ...env },
  stdio: 'ignore',
});
console.log('kinvault: initial backup …');
const kb1 = await timed(
  process.execPath,
  [kinvault, '--state-dir', stateDir, 'backup', src, '--json'],
  env,
);
console.log(
  `  ${kb1.seconds} s (${(mb / kb1.seconds).toFixed(0)} MB/s), agent peak ${kb1.rssMiB} MiB`,
);
const kb2 = await timed(
  process.execPath,
  [kinvault, '--state-dir', stateDir, 'backup', src, '--json'],
  env,
);
console.log(`kinvault: no-change re-run ${kb2.seconds} s`);
const kr = await timed(
  process.execPath,
  [
    kinvault,
    '--state-dir',
    stateDir,
    'restore',
    'latest',
    '--target',
    join(work, 'kinvault-restore'),
  ],
  env,
);
console.log(
  `kinvault: full restore ${kr.seconds} s (${(mb / kr.seconds).toFixed(0)} MB/s), agent peak ${kr.rssMiB} MiB`,
);
const serverRss = await peakRssMiB(server.pid);
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
await rm(join(work, 'kinvault-restore'), { recursive: true, force: true });

// --- restic ---
const rport = await freePort();
const rclone = spawn(
  'rclone',
  ['serve', 'restic', join(work, 'restic-repo'), '--addr', `127.0.0.1:${rport}`],
  { stdio: 'ignore' },
);
await new Promise((r) => setTimeout(r, 1500));
const renv = {
  RESTIC_PASSWORD: 'bench passphrase',
  RESTIC_REPOSITORY: `rest:http://127.0.0.1:${rport}/`,
  RESTIC_CACHE_DIR: join(work, 'restic-cache'),
};
execFileSync('restic', ['init'], { env: { ...process.env, ...renv }, stdio: 'ignore' });
console.log('restic: initial backup …');
const rb1 = await timed('restic', ['backup', '--quiet', src], renv);
console.log(`  ${rb1.seconds} s (${(mb / rb1.seconds).toFixed(0)} MB/s), peak ${rb1.rssMiB} MiB`);
const rb2 = await timed('restic', ['backup', '--quiet', src], renv);
console.log(`restic: no-change re-run ${rb2.seconds} s`);
const rr = await timed(
  'restic',
  ['restore', 'latest', '--target', join(work, 'restic-restore')],
  renv,
);
console.log(`restic: full restore ${rr.seconds} s, peak ${rr.rssMiB} MiB`);
const rcloneRss = await peakRssMiB(rclone.pid);
rclone.kill('SIGTERM');
if (!values.keep) await rm(work, { recursive: true, force: true });

const ratio = (a, b) => Math.round((a / b) * 100) / 100;
const figures = {
  data_mb: Math.round(mb),
  files: 20_000,
  kinvault_backup_s: kb1.seconds,
  kinvault_rerun_s: kb2.seconds,
  kinvault_restore_s: kr.seconds,
  kinvault_agent_peak_rss_mib: Math.max(kb1.rssMiB, kb2.rssMiB, kr.rssMiB),
  kinvault_coordinator_peak_rss_mib: serverRss,
  restic_backup_s: rb1.seconds,
  restic_rerun_s: rb2.seconds,
  restic_restore_s: rr.seconds,
  restic_peak_rss_mib: Math.max(rb1.rssMiB, rb2.rssMiB, rr.rssMiB),
  rclone_server_peak_rss_mib: rcloneRss,
  ratio_backup: ratio(kb1.seconds, rb1.seconds),
  ratio_rerun: ratio(kb2.seconds, rb2.seconds),
  ratio_restore: ratio(kr.seconds, rr.seconds),
};
console.log(JSON.stringify(figures));
