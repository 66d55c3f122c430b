/**
 * Enrolls this device. The first device of a household creates the master key and both
 * key files; later devices unlock the master key with the passphrase.
 */
import { access } from 'node:fs/promises';
import { KinvaultError, decodeEnrollmentCode } from '@kinvault/protocol';
import {
  createKeyFile,
  generateMasterKey,
  generateRecoveryCode,
  openKeyFile,
  deriveKeys,
  systemRandom,
} from '@kinvault/format';
import { apiClient } from '../transport/api.js';
import { fetchPinnedCertificate } from '../transport/pinning.js';
import { AgentStateSchema, saveState, statePaths, type AgentState } from '../state.js';
import { readFile, mkdir, writeFile } from 'node:fs/promises';

export interface SetupResult {
  device: string;
  url: string;
  household: 'created' | 'joined';
  /** Shown once, to print: only for the device that created the household. */
  recoveryCode?: string;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

async function pendingState(stateDir: string): Promise<AgentState | null> {
  const p = statePaths(stateDir);
  const raw = await readFile(p.state, 'utf8').catch(() => null);
  if (raw === null) return null;
  const masterPresent = await access(p.masterKey).then(
    () => true,
    () => false,
  );
  if (masterPresent) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `This device is already set up (${p.state}). To set it up again, remove ${p.dir} first.`,
    );
  }
  return AgentStateSchema.parse(JSON.parse(raw));
}

export async function setup(
  code: string,
  stateDir: string,
  passphrase: (confirm: boolean) => Promise<string>,
): Promise<SetupResult> {
  let state = await pendingState(stateDir);
  if (!state) {
    const e = decodeEnrollmentCode(code);
    const pin = await fetchPinnedCertificate(e.url, e.fingerprint);
    const r = await apiClient({ url: e.url, pin }).enroll.mutate({ token: e.token });
    state = {
      version: 1,
      url: e.url,
      device: r.device,
      token: r.deviceToken,
      certPem: pin.certPem,
      fingerprint: pin.fingerprint,
    };
    // Keep the device token now: a mistyped passphrase must not cost the one-time code.
    const p = statePaths(stateDir);
    await mkdir(p.dir, { recursive: true, mode: 0o700 });
    await writeFile(p.state, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  }
  const api = apiClient({
    url: state.url,
    pin: { certPem: state.certPem, fingerprint: state.fingerprint },
    token: state.token,
  });
  let household = await api.household.get.query();
  if (!household) {
    const masterKey = generateMasterKey(systemRandom);
    const repositoryId = systemRandom(16);
    const { code: recoveryCode } = generateRecoveryCode(systemRandom);
    const secret = await passphrase(true);
    try {
      await api.household.create.mutate({
        repositoryId: b64(repositoryId),
        boxPublicKey: b64(deriveKeys(masterKey).boxPublicKey),
        passphraseKeyFile: b64(createKeyFile(masterKey, repositoryId, { passphrase: secret })),
        recoveryKeyFile: b64(createKeyFile(masterKey, repositoryId, { recoveryCode })),
      });
      await saveState(stateDir, state, masterKey);
      return { device: state.device, url: state.url, household: 'created', recoveryCode };
    } catch (error) {
      // Another device created the household a moment ago: join it instead.
      household = await api.household.get.query();
      if (!household) throw error;
    }
  }
  const { masterKey } = openKeyFile(Buffer.from(household.passphraseKeyFile, 'base64'), {
    passphrase: await passphrase(false),
  });
  await saveState(stateDir, state, masterKey);
  return { device: state.device, url: state.url, household: 'joined' };
}
