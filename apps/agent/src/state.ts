/**
 * The agent's state directory (default ~/.config/kinvault, or --state-dir /
 * KINVAULT_STATE_DIR), mode 0700:
 *   agent.json    coordinator URL, device name, device token, pinned certificate (0600)
 *   master.key    the household master key, 32 raw bytes (0600) — the only copy outside
 *                 the key files; anyone who reads it can read every backup
 *   uploads.json  tus upload URLs, so an interrupted pack upload resumes after a restart
 *   spool/        finished packs waiting for upload
 *   cache/        pack headers and decrypted trees this device has seen or made
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { KinvaultError } from '@kinvault/protocol';

export const AgentStateSchema = z
  .object({
    version: z.literal(1),
    url: z.string().url(),
    device: z.string().min(1),
    token: z.string().min(20),
    certPem: z.string().includes('BEGIN CERTIFICATE'),
    fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

export type AgentState = z.infer<typeof AgentStateSchema>;

export function defaultStateDir(): string {
  return join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'kinvault');
}

export function statePaths(stateDir: string) {
  const dir = resolve(stateDir);
  return {
    dir,
    state: join(dir, 'agent.json'),
    masterKey: join(dir, 'master.key'),
    uploads: join(dir, 'uploads.json'),
    spool: join(dir, 'spool'),
    cache: join(dir, 'cache'),
  };
}

async function writeSecret(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

export async function saveState(
  stateDir: string,
  state: AgentState,
  masterKey: Uint8Array,
): Promise<void> {
  const p = statePaths(stateDir);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  await writeSecret(p.masterKey, masterKey);
  await writeSecret(p.state, JSON.stringify(AgentStateSchema.parse(state), null, 2) + '\n');
}

export async function loadState(
  stateDir: string,
): Promise<{ state: AgentState; masterKey: Uint8Array }> {
  const p = statePaths(stateDir);
  let raw: string;
  try {
    raw = await readFile(p.state, 'utf8');
  } catch {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `This device is not set up (no ${p.state}). Run "kinvault setup CODE" with a code from "kinvaultd device add".`,
    );
  }
  const parsed = AgentStateSchema.safeParse(JSON.parse(raw));
  if (!parsed.success)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${p.state} is damaged; run "kinvault setup" again with a new code.`,
    );
  const masterKey = new Uint8Array(await readFile(p.masterKey).catch(() => Buffer.alloc(0)));
  if (masterKey.byteLength !== 32)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${p.masterKey} is missing or damaged; run "kinvault setup" again.`,
    );
  return { state: parsed.data, masterKey };
}
