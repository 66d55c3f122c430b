/**
 * Who runs the embedded PostgreSQL server under a data directory.
 *
 * Contracts:
 * - the process that starts the server is its owner and records itself in
 *   `postgres.owner` (pid and the process's start time, so a reused pid is not taken for
 *   it); the owner stops the server when it is done, after the commands sharing it
 *   have finished (bounded wait);
 * - a live server whose owner is gone (kill -9, a crash) is an orphan: it is shut down
 *   cleanly (PostgreSQL's fast shutdown) before a new one starts;
 * - these decisions are made under `postgres.lock`, one process at a time; a lock left
 *   by a killed process goes stale after a few seconds.
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lock } from 'proper-lockfile';
import { KinvaultError } from '@kinvault/protocol';

export type Role = 'coordinator' | 'command';

export interface Owner {
  pid: number;
  /** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
  started: string;
  role: Role;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The process's start time, or null if it is not running (a zombie is not running). */
export function processStarted(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    if (procAvailable()) return null;
    return signalable(pid) ? 'unknown' : null; // no /proc (not Linux): the pid alone
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' || fields[0] === 'X' ? null : (fields[19] ?? null);
}

let proc: boolean | undefined;
function procAvailable(): boolean {
  if (proc === undefined) {
    try {
      readFileSync('/proc/self/stat');
      proc = true;
    } catch {
      proc = false;
    }
  }
  return proc;
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isAlive(owner: Owner): boolean {
  return processStarted(owner.pid) === owner.started;
}

export function self(role: Role): Owner {
  return { pid: process.pid, started: processStarted(process.pid) ?? 'unknown', role };
}

const ownerFile = (dataDir: string) => join(dataDir, 'postgres.owner');

export async function readOwner(dataDir: string): Promise<Owner | null> {
  const text = await readFile(ownerFile(dataDir), 'utf8').catch(() => null);
  if (!text) return null;
  try {
    const o = JSON.parse(text) as Owner;
    return Number.isSafeInteger(o.pid) && typeof o.started === 'string' ? o : null;
  } catch {
    return null;
  }
}

export async function writeOwner(dataDir: string, owner: Owner): Promise<void> {
  await writeFile(ownerFile(dataDir), JSON.stringify(owner) + '\n', { mode: 0o600 });
}

/** Removes the owner record if it still names `owner`. */
export async function clearOwner(dataDir: string, owner: Owner): Promise<void> {
  const now = await readOwner(dataDir);
  if (now && now.pid === owner.pid && now.started === owner.started)
    await rm(ownerFile(dataDir), { force: true });
}

/** The pid of the postmaster running on this PostgreSQL directory, or null. */
export async function livePostmaster(pgDir: string): Promise<number | null> {
  const text = await readFile(join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || processStarted(pid) === null) return null;
  if (!procAvailable()) return pid;
  // After a reboot the pid may belong to something else: only a postgres on this
  // directory counts.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('postgres') && cmdline.includes(pgDir) ? pid : null;
}

/**
 * Kills every process whose command line names `pgDir` (an initdb, its bootstrap
 * backend, a server still starting: what an init killed part-way leaves running) and
 * waits until they are gone, at most `timeoutMs`. Only for a directory about to be
 * removed. Without /proc there is nothing to look at.
 */
export async function killProcessesOn(pgDir: string, timeoutMs = 15_000): Promise<void> {
  if (!procAvailable()) return;
  const users = async () => {
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      const pid = Number(entry);
      if (!Number.isSafeInteger(pid) || pid === process.pid) continue;
      const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (args.some((a) => a === pgDir || a.startsWith(`${pgDir}/`))) pids.push(pid);
    }
    return pids;
  };
  const deadline = Date.now() + timeoutMs;
  for (let pids = await users(); pids.length > 0; pids = await users()) {
    if (Date.now() > deadline)
      throw new KinvaultError(
        'INTERNAL',
        `Processes ${pids.join(', ')} still use ${pgDir} and could not be stopped. Stop them (kill ${pids.join(' ')}), then run the same command again.`,
      );
    for (const pid of pids)
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already, or not ours to signal (then the deadline reports it)
      }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Fast shutdown (SIGINT: sessions are ended, the server checkpoints and exits), then
 * waits until the process is gone; immediate shutdown (SIGQUIT) if it takes too long.
 */
export async function shutdownPostmaster(pid: number, timeoutMs = 30_000): Promise<void> {
  const started = processStarted(pid);
  if (started === null) return;
  const gone = () => processStarted(pid) !== started;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGINT');
  for (const [limit, next] of [
    [timeoutMs, 'SIGQUIT'],
    [10_000, null],
  ] as const) {
    const deadline = Date.now() + limit;
    while (!gone() && Date.now() < deadline) await sleep(50);
    if (gone()) return;
    if (next) signal(next);
  }
  throw new KinvaultError(
    'INTERNAL',
    `The embedded database server (pid ${pid}) does not stop. Stop it with "kill ${pid}" and try again.`,
  );
}

/** Runs `fn` while holding the data directory's database lock. */
export async function withServerLock<T>(
  dataDir: string,
  fn: () => Promise<T>,
  notice: (line: string) => void,
): Promise<T> {
  let release: () => Promise<void>;
  try {
    release = await lock(dataDir, {
      lockfilePath: join(dataDir, 'postgres.lock'),
      realpath: false,
      stale: 10_000,
      // Held while a server starts or stops (each bounded to well under a minute).
      retries: { retries: 1200, factor: 1, minTimeout: 100, maxTimeout: 100 },
      onCompromised: () =>
        notice('the database lock of this data directory was taken over by another command'),
    });
  } catch (error) {
    throw new KinvaultError(
      'INTERNAL',
      `Another kinvaultd command has been starting or stopping the database in ${dataDir} for two minutes. Wait for it to finish, then try again.`,
      { cause: error, retryable: true },
    );
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
