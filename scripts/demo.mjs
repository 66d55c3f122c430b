#!/usr/bin/env node
/**
 * npm run demo -- [FOLDER] [--json]
 *
 * Kinvault end to end on this machine, with the built commands and embedded defaults:
 * a coordinator (kinvaultd, embedded PostgreSQL, HTTPS on 127.0.0.1), an enrolled
 * agent (kinvault), a backup of FOLDER (or a sample photo library), a restore into a
 * new directory, and a byte-for-byte comparison. Then it says where everything is.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, writeFile, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const kinvaultd = join(root, 'apps/server/dist/src/cli/main.js');
const kinvault = join(root, 'apps/agent/dist/src/cli/main.js');
const { compareTrees } = await import(join(root, 'packages/format/dist/demo/verify.js'));

const HELP = `Usage: npm run demo -- [FOLDER] [--json]

Runs a Kinvault coordinator with embedded PostgreSQL, enrolls an agent, backs up FOLDER
(default: a sample photo library of about 60 MB), restores it into a new directory and
checks every byte, mode, mtime and link. FOLDER is only read.
The passphrase comes from KINVAULT_PASSPHRASE, or the demo makes one and prints it.
Exit codes: 0 restored and identical; 1 failed or different; 2 bad usage.`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'boolean' }, help: { type: 'boolean' } },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const say = (line) => (values.json ? process.stderr : process.stdout).write(line + '\n');
const fail = (code, message) => {
  console.error(`demo: ${message}`);
  process.exit(code);
};
if (positionals.length > 1)
  fail(2, `give one folder to back up, not ${positionals.length}. Run "npm run demo -- --help".`);

function run(cmd, args, env = {}) {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [cmd, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => res({ code: error ? (error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}
function runVisible(cmd, args, env = {}) {
  return new Promise((res) => {
    const child = spawn(process.execPath, [cmd, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', values.json ? 'ignore' : 'inherit', 'inherit'],
    });
    child.on('exit', (code) => res(code ?? 1));
  });
}
const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

async function makeSample(dir) {
  const year = join(dir, 'Photos', '2025');
  await mkdir(year, { recursive: true });
  await mkdir(join(dir, 'Photos', 'Empty album'), { recursive: true });
  await mkdir(join(dir, 'Documents'), { recursive: true });
  for (let i = 1; i <= 16; i++)
    await writeFile(
      join(year, `IMG_${String(i).padStart(4, '0')}.JPG`),
      randomBytes(2_000_000 + i * 150_000),
    );
  for (let i = 0; i < 200; i++)
    await writeFile(join(dir, 'Documents', `note-${i}.txt`), `Note ${i}\n`.repeat(i + 1));
  await symlink('Photos/2025/IMG_0001.JPG', join(dir, 'favourite.jpg'));
}

let folder = positionals[0] ? resolve(positionals[0]) : null;
if (folder)
  await readdir(folder).catch((e) =>
    fail(
      2,
      `cannot read the folder ${folder}: ${e.code ?? e.message}. Give a folder you can read.`,
    ),
  );
const work = await mkdtemp(join(tmpdir(), 'kinvault-demo-'));
await chmod(work, 0o711); // as root, the embedded database runs as "postgres" and must enter it
const dataDir = join(work, 'coordinator');
const stateDir = join(work, 'agent');
const restoreDir = join(work, 'restored');
if (!folder) {
  folder = join(work, 'sample-library');
  say(`Making a sample photo library in ${folder} …`);
  await makeSample(folder);
}
const passphrase = process.env.KINVAULT_PASSPHRASE || randomBytes(12).toString('base64url');
const env = { KINVAULT_PASSPHRASE: passphrase };
const port = await freePort();

say(`Initialising a coordinator in ${dataDir} (embedded PostgreSQL) …`);
const init = await run(kinvaultd, ['init', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`]);
if (init.code !== 0) fail(1, `kinvaultd init failed: ${init.stderr.trim()}`);
const server = spawn(process.execPath, [kinvaultd, 'start', '--data-dir', dataDir], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let serverLog = '';
server.stdout.on('data', (d) => (serverLog += d));
server.stderr.on('data', (d) => (serverLog += d));
const stopServer = () =>
  new Promise((res) => {
    if (server.exitCode !== null) return res();
    server.once('exit', () => res());
    server.kill('SIGTERM');
  });
let exitCode = 1;
try {
  for (let waited = 0; !serverLog.includes('kinvaultd is running'); waited += 100) {
    if (waited > 30_000 || server.exitCode !== null)
      throw new Error(`kinvaultd did not start:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const added = await run(kinvaultd, [
    'device',
    'add',
    'demo-laptop',
    '--data-dir',
    dataDir,
    '--json',
  ]);
  if (added.code !== 0) throw new Error(added.stderr.trim());
  const { code } = JSON.parse(added.stdout);
  say('Enrolling this machine as "demo-laptop" (Argon2id key files take a few seconds) …');
  const setup = await run(kinvault, ['--state-dir', stateDir, 'setup', code, '--json'], env);
  if (setup.code !== 0) throw new Error(setup.stderr.trim());
  const { recoveryCode } = JSON.parse(setup.stdout);

  say(`Backing up ${folder} …`);
  if ((await runVisible(kinvault, ['--state-dir', stateDir, 'backup', folder], env)) !== 0)
    throw new Error('the backup failed (see above)');
  say(`Restoring the latest snapshot into ${restoreDir} …`);
  if (
    (await runVisible(
      kinvault,
      ['--state-dir', stateDir, 'restore', 'latest', '--target', restoreDir],
      env,
    )) !== 0
  )
    throw new Error('the restore failed (see above)');
  const problems = await compareTrees(folder, join(restoreDir, folder));
  const status = JSON.parse(
    (await run(kinvaultd, ['status', '--data-dir', dataDir, '--json'])).stdout,
  );
  say('');
  say(
    problems.length === 0
      ? 'Restore verified: identical bytes, modes, mtimes and links.'
      : `Restore DIFFERS in ${problems.length} places:`,
  );
  for (const p of problems.slice(0, 20)) say(`  ${p}`);
  say(
    `  coordinator   ${dataDir}   (${status.packs} packs, ${(status.storedBytes / 1e6).toFixed(1)} MB stored)`,
  );
  say(`  agent state   ${stateDir}`);
  say(`  restored      ${join(restoreDir, folder)}`);
  say(
    `  passphrase    ${process.env.KINVAULT_PASSPHRASE ? '(from KINVAULT_PASSPHRASE)' : passphrase}`,
  );
  say(`  recovery code ${recoveryCode}   (a real household prints this)`);
  say('Next: start the coordinator again and look around:');
  say(`  node ${kinvaultd} start --data-dir ${dataDir} &`);
  say(`  node ${kinvaultd} status --data-dir ${dataDir}`);
  say(`  KINVAULT_PASSPHRASE=… node ${kinvault} --state-dir ${stateDir} snapshots`);
  say('npm test runs the test suite; docs/design.md specifies the repository format.');
  if (values.json)
    console.log(
      JSON.stringify({
        ok: problems.length === 0,
        problems,
        dataDir,
        stateDir,
        restored: join(restoreDir, folder),
        status,
      }),
    );
  exitCode = problems.length === 0 ? 0 : 1;
} catch (error) {
  console.error(`demo failed: ${error.message}`);
} finally {
  await stopServer();
}
process.exit(exitCode);
