/** Runs the built kinvault agent for end-to-end tests. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decodeEnrollmentCode } from '@kinvault/protocol';
import { runKinvaultd, type RunResult } from './kinvaultd.js';

export const kinvaultPath = fileURLToPath(
  new URL('../../apps/agent/dist/src/cli/main.js', import.meta.url),
);
export const PASSPHRASE = 'correct horse battery staple';

export function runKinvault(
  stateDir: string,
  args: string[],
  env: Record<string, string> = {},
  timeout = 300_000,
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [kinvaultPath, '--state-dir', stateDir, ...args],
      {
        timeout,
        env: { ...process.env, KINVAULT_PASSPHRASE: PASSPHRASE, ...env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export function spawnKinvault(stateDir: string, args: string[]): ChildProcess {
  return spawn(process.execPath, [kinvaultPath, '--state-dir', stateDir, ...args], {
    env: { ...process.env, KINVAULT_PASSPHRASE: PASSPHRASE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export const lastJson = <T = Record<string, unknown>>(stdout: string): T =>
  JSON.parse(stdout.trim().split('\n').pop()!) as T;

/** Adds a device on the coordinator and sets it up in `stateDir`. */
export async function enrollDevice(
  dataDir: string,
  name: string,
  stateDir: string,
): Promise<{ url: string }> {
  const added = await runKinvaultd(['device', 'add', name, '--data-dir', dataDir, '--json']);
  if (added.code !== 0) throw new Error(added.stderr);
  const code = (JSON.parse(added.stdout) as { code: string }).code;
  const r = await runKinvault(stateDir, ['setup', code, '--json']);
  if (r.code !== 0) throw new Error(`setup failed: ${r.stderr}`);
  return { url: decodeEnrollmentCode(code).url };
}
