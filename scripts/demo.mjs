#!/usr/bin/env node
/**
 * npm run demo -- [FOLDER] [--keep] [--json]
 *
 * Kinvault end to end on this machine, with the built commands and embedded defaults:
 * a coordinator (kinvaultd, embedded PostgreSQL, HTTPS on 127.0.0.1), an enrolled
 * agent (kinvault), a backup of FOLDER (or a sample photo library), a restore into a
 * new directory, and a byte-for-byte comparison. Everything it makes lives in one
 * temporary folder (about 200 MB): removed after a success, once the coordinator and
 * its database have stopped; kept with --keep or after a failure, and then the demo
 * says where it is, how big it is and how to remove it.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, writeFile, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const kinvaultd = join(root, 'apps/server/dist/src/cli/main.js');
const kinvault = join(root, 'apps/agent/dist/src/cli/main.js');
const { compareTrees } = await import(join(root, 'packages/format/dist/demo/verify.js'));

const HELP = `Usage: npm run demo -- [FOLDER] [--keep] [--json]

Runs a Kinvault coordinator with embedded PostgreSQL, enrolls an agent, backs up FOLDER
(default: a sample photo library of about 60 MB), restores it into a new directory and
checks every byte, mode, mtime and link. FOLDER is only read.
The coordinator, the agent's state and the restored copy go in a new folder in
${tmpdir()} (about 200 MB, more for a large FOLDER). It is removed at the end
unless --keep is given or the demo fails; then the demo prints how to remove it.
The passphrase comes from KINVAULT_PASSPHRASE, or the demo makes one and prints it.
Exit codes: 0 restored and identical; 1 failed or different; 2 bad usage.`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'boolean' }, keep: { type: 'boolean' }, help: { type: 'boolean' } },
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

/** Disk space used under dir, in bytes (as du counts it). */
async function diskUsage(dir) {
  const entries = await readdir(dir, { recursive: true }).catch(() => []);
  const sizes = await Promise.all(
    ['', ...entries].map((e) =>
      lstat(join(dir, e)).then(
        (s) => s.blocks * 512,
        () => 0,
      ),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0);
}
const megabytes = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;
const shellQuote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;

let folder = positionals[0] ? resolve(positionals[0]) : null;
if (folder)
  await readdir(folder).catch((e) =>
    fail(
      2,
      `cannot read the folder ${folder}: ${e.code ?? e.message}. Give a folder you can read.`,
    ),
  );
const work = await mkdtemp(join(tmpdir(), 'kinvault-demo-'));
const dataDir = join(work, 'coordinator');
const stateDir = join(work, 'agent');
const restoreDir = join(work, 'restored');

/** The running coordinator (its own process group: Ctrl-C reaches the demo, which stops it). */
let server = null;
let serverLog = '';
/** Stops the coordinator (and so its database); true when it stopped cleanly or never ran. */
const stopServer = () =>
  new Promise((res) => {
    if (!server) return res(true);
    const clean = () => res(server.exitCode === 0);
    if (server.exitCode !== null || server.signalCode !== null) return clean();
    server.once('exit', clean);
    server.kill('SIGTERM');
  });

/**
 * Ends the demo once, whichever way: stops the coordinator, then removes the demo's
 * folder after a success (unless --keep), or keeps it and says how to remove it.
 */
let finishing;
function finish(code, { failure, result } = {}) {
  finishing ??= (async () => {
    if (failure) console.error(`demo failed: ${failure}`);
    const stopped = await stopServer();
    if (!stopped) {
      code = code || 1;
      console.error(
        `demo: the coordinator did not stop cleanly; its last lines:\n${serverLog.trim().split('\n').slice(-5).join('\n')}`,
      );
    }
    const keep = values.keep === true || code !== 0;
    const bytes = await diskUsage(work);
    const tell = code === 0 ? say : (line) => console.error(line);
    const removed =
      !keep &&
      (await rm(work, { recursive: true, force: true }).then(
        () => true,
        (e) => (console.error(`demo: could not remove ${work}: ${e.code ?? e.message}`), false),
      ));
    if (removed) {
      say(`Removed the demo's folder ${work} (${megabytes(bytes)}).`);
      say('"npm run demo -- --keep" keeps it, to look around afterwards.');
    } else {
      tell(`The demo's folder ${work} (${megabytes(bytes)}) is kept. Remove it with:`);
      tell(`  rm -rf ${shellQuote(work)}`);
    }
    if (values.json)
      console.log(
        JSON.stringify({
          ok: code === 0,
          ...result,
          failure,
          workDir: work,
          kept: !removed,
          bytes,
        }),
      );
    process.exit(code);
  })();
  return finishing;
}
for (const [signal, number] of [
  ['SIGINT', 2],
  ['SIGTERM', 15],
])
  process.once(signal, () => finish(128 + number, { failure: `stopped by ${signal}` }));

try {
  await chmod(work, 0o711); // as root, the embedded database runs as "postgres" and must enter it
  if (!folder) {
    folder = join(work, 'sample-library');
    say(`Making a sample photo library in ${folder} …`);
    await makeSample(folder);
  }
  const passphrase = process.env.KINVAULT_PASSPHRASE || randomBytes(12).toString('base64url');
  const env = { KINVAULT_PASSPHRASE: passphrase };
  const port = await freePort();

  say(`Initialising a coordinator in ${dataDir} (embedded PostgreSQL) …`);
  const init = await run(kinvaultd, [
    'init',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${port}`,
  ]);
  if (init.code !== 0) throw new Error(`kinvaultd init failed: ${init.stderr.trim()}`);
  server = spawn(process.execPath, [kinvaultd, 'start', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
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
    `  stored        ${status.packs} packs, ${(status.storedBytes / 1e6).toFixed(1)} MB on the coordinator`,
  );
  say(`  recovery code ${recoveryCode}   (a real household prints this)`);
  if (values.keep) {
    say(`  coordinator   ${dataDir}`);
    say(`  agent state   ${stateDir}`);
    say(`  restored      ${join(restoreDir, folder)}`);
    say(
      `  passphrase    ${process.env.KINVAULT_PASSPHRASE ? '(from KINVAULT_PASSPHRASE)' : passphrase}`,
    );
    say('Next: start the coordinator again and look around:');
    say(`  node ${kinvaultd} start --data-dir ${dataDir} &`);
    say(`  node ${kinvaultd} status --data-dir ${dataDir}`);
    say(`  KINVAULT_PASSPHRASE=… node ${kinvault} --state-dir ${stateDir} snapshots`);
  }
  say('npm test runs the test suite; docs/design.md specifies the repository format.');
  const result = { problems, dataDir, stateDir, restored: join(restoreDir, folder), status };
  if (problems.length === 0) await finish(0, { result });
  else await finish(1, { failure: 'the restored copy differs', result });
} catch (error) {
  await finish(1, { failure: error.message });
}
