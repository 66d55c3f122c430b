/**
 * Enrolls this device. The first device of a household creates the master key and both
 * key files; later devices unlock the master key with the passphrase, or with the
 * printed recovery code, after which they set a new passphrase (the old one is
 * forgotten, or it would not be needed).
 */
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { KinvaultError, decodeEnrollmentCode, isKinvaultError } from '@kinvault/protocol';
import {
  createKeyFile,
  deriveKeys,
  generateMasterKey,
  generateRecoveryCode,
  openKeyFile,
  systemRandom,
} from '@kinvault/format';
import { apiClient, type ApiClient } from '../transport/api.js';
import { fetchPinnedCertificate } from '../transport/pinning.js';
import { AgentStateSchema, saveState, statePaths, type AgentState } from '../state.js';
import { setPassphrase } from './passphrase.service.js';
import { addSecret } from '../secrets.js';

export interface SetupResult {
  device: string;
  url: string;
  /**
   * 'recovered-keeping-passphrase': unlocked with the recovery code, in a household whose
   * key files cannot be replaced (made before the signing key), so no new passphrase.
   */
  household: 'created' | 'joined' | 'recovered' | 'recovered-keeping-passphrase';
  /** Shown once, to print: only for the device that created the household. */
  recoveryCode?: string;
}

export interface SetupSecrets {
  /** The household passphrase, to unlock with. */
  passphrase(): Promise<string>;
  /** A new household passphrase (this device creates the household, or recovers). */
  newPassphrase(): Promise<string>;
  /** Given when the device unlocks with the recovery code instead of the passphrase. */
  recoveryCode?: () => Promise<string>;
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

/** Trades the enrollment code for a device token, kept at once (the code works once). */
async function enroll(code: string, stateDir: string): Promise<AgentState> {
  const e = decodeEnrollmentCode(code);
  addSecret(e.token);
  const pin = await fetchPinnedCertificate(e.url, e.fingerprint);
  const r = await apiClient({ url: e.url, pin }).enroll.mutate({ token: e.token });
  addSecret(r.deviceToken);
  const state: AgentState = {
    version: 1,
    url: e.url,
    device: r.device,
    token: r.deviceToken,
    certPem: pin.certPem,
    fingerprint: pin.fingerprint,
  };
  // Kept now: a mistyped passphrase must not cost the one-time code.
  const p = statePaths(stateDir);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  await writeFile(p.state, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  return state;
}

/** The first device: a new master key, both key files, and the recovery code to print. */
async function createHousehold(api: ApiClient, secrets: SetupSecrets) {
  const masterKey = generateMasterKey(systemRandom);
  const repositoryId = systemRandom(16);
  const { code: recoveryCode } = generateRecoveryCode(systemRandom);
  const passphrase = await secrets.newPassphrase();
  const keys = deriveKeys(masterKey);
  const made = { masterKey, recoveryCode, repositoryId: Buffer.from(repositoryId).toString('hex') };
  try {
    await api.household.create.mutate({
      repositoryId: b64(repositoryId),
      boxPublicKey: b64(keys.boxPublicKey),
      signPublicKey: b64(keys.signPublicKey),
      passphraseKeyFile: b64(createKeyFile(masterKey, repositoryId, { passphrase })),
      recoveryKeyFile: b64(createKeyFile(masterKey, repositoryId, { recoveryCode })),
    });
  } catch (error) {
    // The household exists now: ours (the answer was lost and the retry refused), or
    // another device's that was quicker (then this one joins it).
    const now = await api.household.get.query().catch(() => null);
    if (now?.repositoryId !== made.repositoryId) return { error, household: now };
  }
  return { made };
}

function explainWrongPassphrase(error: unknown): never {
  if (isKinvaultError(error, 'WRONG_PASSPHRASE'))
    throw new KinvaultError(
      'WRONG_PASSPHRASE',
      'The passphrase is wrong. Try again; if it is forgotten, unlock with the recovery code printed when the household was created: "kinvault setup CODE --recovery-code" (it then asks for a new passphrase).',
    );
  throw error;
}

export async function setup(
  code: string,
  stateDir: string,
  secrets: SetupSecrets,
): Promise<SetupResult> {
  const state = (await pendingState(stateDir)) ?? (await enroll(code, stateDir));
  addSecret(state.token);
  const done = (household: SetupResult['household'], recoveryCode?: string) => ({
    device: state.device,
    url: state.url,
    household,
    ...(recoveryCode ? { recoveryCode } : {}),
  });
  const api = apiClient({
    url: state.url,
    pin: { certPem: state.certPem, fingerprint: state.fingerprint },
    token: state.token,
  });
  let household = await api.household.get.query();
  if (!household && secrets.recoveryCode)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      'This household has no keys yet, so there is nothing to recover: run "kinvault setup" without --recovery-code to create them.',
    );
  if (!household) {
    const r = await createHousehold(api, secrets);
    if (r.made) {
      await saveState(stateDir, state, r.made.masterKey);
      return done('created', r.made.recoveryCode);
    }
    if (!r.household) throw r.error;
    household = r.household;
  }
  if (secrets.recoveryCode) {
    const { masterKey } = openKeyFile(Buffer.from(household.recoveryKeyFile, 'base64'), {
      recoveryCode: await secrets.recoveryCode(),
    });
    // A household made before key files could be replaced keeps its passphrase.
    if (household.keyFilesReplaceable)
      await setPassphrase(api, masterKey, await secrets.newPassphrase());
    await saveState(stateDir, state, masterKey);
    return done(household.keyFilesReplaceable ? 'recovered' : 'recovered-keeping-passphrase');
  }
  let masterKey: Uint8Array;
  try {
    ({ masterKey } = openKeyFile(Buffer.from(household.passphraseKeyFile, 'base64'), {
      passphrase: await secrets.passphrase(),
    }));
  } catch (error) {
    explainWrongPassphrase(error);
  }
  await saveState(stateDir, state, masterKey);
  return done('joined');
}
