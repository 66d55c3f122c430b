/** Runs the built kinvaultd for end-to-end tests: init in a temp dir, start, stop. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const kinvaultdPath = fileURLToPath(
  new URL('../../apps/server/dist/src/cli/main.js', import.meta.url),
);

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runKinvaultd(args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [kinvaultdPath, ...args],
      { timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const madeDirs: string[] = [];

/**
 * A temp directory the embedded database's "postgres" user can enter (when root).
 * `removeTempDirs` deletes it (a coordinator's data directory holds ~145 MB).
 */
export async function traversableTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  madeDirs.push(dir);
  await chmod(dir, 0o711);
  return dir;
}

/** Deletes every directory this test file made (call once its coordinators stopped). */
export async function removeTempDirs(...more: string[]): Promise<void> {
  const dirs = [...madeDirs.splice(0), ...more];
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

export interface Coordinator {
  dataDir: string;
  port: number;
  url: string;
  process: ChildProcess;
  log: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function initCoordinator(
  prefix = 'kinvaultd-e2e-',
  /** The https:// URL agents are told to use (default: the listen address). */
  publicUrl?: string,
): Promise<{ dataDir: string; port: number }> {
  const dataDir = join(await traversableTempDir(prefix), 'data');
  const port = await freePort();
  const extra = publicUrl ? ['--public-url', publicUrl] : [];
  const init = await runKinvaultd([
    'init',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${port}`,
    ...extra,
  ]);
  if (init.code !== 0) throw new Error(`kinvaultd init failed: ${init.stderr}`);
  return { dataDir, port };
}

export async function startCoordinator(dataDir: string, port: number): Promise<Coordinator> {
  const child = spawn(process.execPath, [kinvaultdPath, 'start', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const deadline = Date.now() + 30_000;
  while (!log.includes('kinvaultd is running')) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`kinvaultd did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dataDir,
    port,
    url: `https://127.0.0.1:${port}`,
    process: child,
    log: () => log,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        // Already gone (also when a signal ended it: then exitCode stays null).
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      }),
  };
}
