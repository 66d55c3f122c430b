/**
 * npm run demo -- [FOLDER] [options]
 *
 * The format core end to end, on local directories: back FOLDER up into a repository,
 * then forget everything but the repository directory and the passphrase, rebuild the
 * index from the pack headers, restore the snapshot and compare it with FOLDER.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { deriveKeys } from '../src/index.js';
import {
  initRepository,
  listSnapshots,
  rebuildIndex,
  saveSnapshot,
  unlockRepository,
} from './local-repository.js';
import { backupFolder, restoreTree, type BackupStats } from './tree-io.js';
import { compareTrees } from './verify.js';

const HELP = `Usage: npm run demo -- [FOLDER] [options]

Backs FOLDER up into a Kinvault repository in a local directory, then restores it from
the repository files and the passphrase alone, and checks every byte, mode and mtime.
Without FOLDER, a sample photo library (about 100 MB) is made first.

Options (each has an environment twin):
  --repo DIR         repository directory, new or from an earlier demo  (KINVAULT_REPO)
                     default: a new directory under the system temp directory
  --restore-to DIR   where to restore (must not exist)                  (KINVAULT_RESTORE_TO)
  --threads N        worker threads for hashing and encryption          (KINVAULT_THREADS)
  --json             print one JSON summary as the last line
  --help             this text
The passphrase comes from KINVAULT_PASSPHRASE; without it the demo makes one and prints it.

Exit codes: 0 restored and identical; 1 failed or different; 2 bad usage.`;

class UsageError extends Error {}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new UsageError(`${flag} must be a whole number from 1 to 64, got "${value}".`);
  return n;
}

/** A small photo-library-like folder: "photos", a duplicate, text files, a symlink, an empty folder. */
async function makeSample(dir: string): Promise<void> {
  const year = join(dir, 'Photos', '2025');
  await mkdir(year, { recursive: true });
  await mkdir(join(dir, 'Photos', 'Empty album'), { recursive: true });
  await mkdir(join(dir, 'Documents'), { recursive: true });
  let seed = 1;
  for (let i = 1; i <= 24; i++) {
    const size = 2_000_000 + ((seed = (seed * 48271) % 2147483647) % 4_000_000);
    await writeFile(join(year, `IMG_${String(i).padStart(4, '0')}.JPG`), randomBytes(size), {
      mode: 0o644,
    });
  }
  await writeFile(
    join(dir, 'Photos', 'IMG_0001 copy.JPG'),
    await import('node:fs/promises').then((f) => f.readFile(join(year, 'IMG_0001.JPG'))),
  );
  for (let i = 0; i < 200; i++)
    await writeFile(join(dir, 'Documents', `note-${i}.txt`), `Note ${i}\n`.repeat(i + 1));
  await writeFile(join(dir, 'Documents', 'private.sh'), '#!/bin/sh\necho hello\n', { mode: 0o700 });
  await symlink('Photos/2025/IMG_0001.JPG', join(dir, 'favourite.jpg'));
  await utimes(
    join(dir, 'Documents', 'note-0.txt'),
    new Date('2001-02-03T04:05:06Z'),
    new Date('2001-02-03T04:05:06Z'),
  );
}

function progressLine(s: BackupStats, started: number): string {
  const secs = (Date.now() - started) / 1000;
  return `  ${s.files} files, ${(s.bytes / 1e6).toFixed(0)} MB read, ${(s.bytes / 1e6 / Math.max(secs, 0.001)).toFixed(0)} MB/s, ${s.packs} packs`;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      repo: { type: 'string' },
      'restore-to': { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1)
    throw new UsageError(`Give one folder to back up, not ${positionals.length}.`);
  const threads = positiveInt('--threads', values.threads ?? process.env.KINVAULT_THREADS);
  const json = values.json === true;
  const say = (line: string) => (json ? process.stderr : process.stdout).write(line + '\n');
  const tty = process.stderr.isTTY && !json;

  // A folder of our own only for what the flags leave to us (none is left empty behind).
  let workDir: string | undefined;
  const work = async () => (workDir ??= await mkdtemp(join(tmpdir(), 'kinvault-demo-')));
  let folder = positionals[0] ? resolve(positionals[0]) : undefined;
  if (folder) {
    await readdir(folder).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(
        `Cannot read the folder ${folder}: ${e.code ?? e.message}. Give a folder you can read.`,
      );
    });
  } else {
    folder = join(await work(), 'sample-library');
    say(`Making a sample photo library in ${folder} …`);
    await makeSample(folder);
  }
  const restoreTo = resolve(
    values['restore-to'] ?? process.env.KINVAULT_RESTORE_TO ?? join(await work(), 'restored'),
  );
  if ((await readdir(restoreTo).catch(() => null)) !== null) {
    throw new UsageError(
      `The restore target ${restoreTo} already exists. Choose a new directory with --restore-to.`,
    );
  }
  const repo = resolve(
    values.repo ?? process.env.KINVAULT_REPO ?? join(await work(), 'repository'),
  );

  let passphrase = process.env.KINVAULT_PASSPHRASE ?? '';
  let recoveryCode: string | undefined;
  const existing = (await readdir(join(repo, 'keys')).catch((): string[] => [])).includes(
    'passphrase.key',
  );
  if (!passphrase) {
    if (existing)
      throw new UsageError(
        `${repo} is an existing repository: set KINVAULT_PASSPHRASE to its passphrase.`,
      );
    passphrase = randomBytes(12).toString('base64url');
  }
  let keys;
  if (existing) {
    say(`Unlocking the repository in ${repo} …`);
    keys = await unlockRepository(repo, passphrase);
  } else {
    say(`Creating a repository in ${repo} (Argon2id key files take a few seconds) …`);
    const created = await initRepository(repo, passphrase);
    recoveryCode = created.recoveryCode;
    keys = deriveKeys(created.masterKey);
  }

  say(`Backing up ${folder} …`);
  const known = await rebuildIndex(repo, keys);
  const started = Date.now();
  const startNs = BigInt(started) * 1_000_000n;
  let lastDraw = 0;
  const { tree, stats } = await backupFolder(repo, keys, folder, known, {
    threads,
    progress: (s) => {
      if (tty && Date.now() - lastDraw > 200) {
        lastDraw = Date.now();
        process.stderr.write(`\r${progressLine(s, started)}`);
      }
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  const backupSeconds = (Date.now() - started) / 1000;
  const parents = await listSnapshots(repo, keys);
  const snapshotId = await saveSnapshot(repo, keys, {
    startNs,
    endNs: BigInt(Date.now()) * 1_000_000n,
    tree,
    parent: parents.length ? Buffer.from(parents[parents.length - 1]!.id, 'hex') : null,
    hostname: hostname(),
    device: 'demo',
    paths: [folder],
    tags: ['demo'],
    partial: stats.errors.length > 0,
    errors: stats.errors,
    stats: {
      files: stats.files,
      dirs: stats.dirs,
      bytes: stats.bytes,
      filesNew: stats.filesNew,
      bytesNew: stats.bytesNew,
    },
  });
  say(
    progressLine(stats, started).trimStart() +
      ` — snapshot ${snapshotId.slice(0, 12)} in ${backupSeconds.toFixed(1)} s`,
  );
  for (const e of stats.errors) say(`  could not back up ${e.path}: ${e.message}`);

  say('Restoring from the repository files and the passphrase alone …');
  const freshKeys = await unlockRepository(repo, passphrase);
  const index = await rebuildIndex(repo, freshKeys);
  const snapshots = await listSnapshots(repo, freshKeys);
  const latest = snapshots.find((s) => s.id === snapshotId);
  if (!latest) throw new Error(`snapshot ${snapshotId} is missing from ${repo}`);
  const restoreStarted = Date.now();
  const restored = await restoreTree(freshKeys, index, latest.snapshot.tree, restoreTo);
  const restoreSeconds = (Date.now() - restoreStarted) / 1000;
  const problems = await compareTrees(folder, restoreTo);
  const dedup = stats.bytes > 0 ? stats.bytes / Math.max(stats.bytesNew, 1) : 1;

  say('');
  say(
    problems.length === 0
      ? 'Restore verified: identical bytes, modes, mtimes and links.'
      : `Restore DIFFERS in ${problems.length} places:`,
  );
  for (const p of problems.slice(0, 20)) say(`  ${p}`);
  say(
    `  backed up  ${stats.files} files, ${(stats.bytes / 1e6).toFixed(1)} MB in ${backupSeconds.toFixed(1)} s; stored ${(stats.bytesNew / 1e6).toFixed(1)} MB new (dedup ${dedup.toFixed(2)}x) in ${stats.packs} packs`,
  );
  say(
    `  restored   ${restored.files} files, ${(restored.bytes / 1e6).toFixed(1)} MB in ${restoreSeconds.toFixed(1)} s, index rebuilt from ${new Set([...index.values()].map((v) => v.pack)).size} pack headers`,
  );
  say(`  repository ${repo}`);
  say(`  restored   ${restoreTo}`);
  if (recoveryCode) {
    say(
      `  passphrase ${process.env.KINVAULT_PASSPHRASE ? '(from KINVAULT_PASSPHRASE)' : passphrase}`,
    );
    say(`  recovery   ${recoveryCode}   (opens keys/recovery.key; a real household prints this)`);
  }
  say(
    'Next: run it again with --repo and KINVAULT_PASSPHRASE to see deduplication against the first run;',
  );
  say('      npm test runs the test suite; docs/design.md specifies every byte of the repository.');
  if (json) {
    console.log(
      JSON.stringify({
        ok: problems.length === 0,
        snapshot: snapshotId,
        repository: repo,
        restored_to: restoreTo,
        files: stats.files,
        bytes: stats.bytes,
        bytes_new: stats.bytesNew,
        packs: stats.packs,
        backup_seconds: backupSeconds,
        restore_seconds: restoreSeconds,
        problems,
        errors: stats.errors,
      }),
    );
  }
  return problems.length === 0 && stats.errors.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`demo: ${error.message}\nRun "npm run demo -- --help" for usage.`);
      process.exit(2);
    }
    const e = error as { code?: string; message?: string };
    console.error(`demo failed${e.code ? ` (${e.code})` : ''}: ${e.message ?? String(error)}`);
    process.exit(1);
  },
);
