/**
 * Setting a new household passphrase: a new passphrase key file for the same master key,
 * sent with the household's signature of the change (docs/design.md §4.6). Only a
 * device holding the master key can make that signature; the coordinator checks it.
 */
import { KinvaultError } from '@kinvault/protocol';
import {
  bytesEqual,
  createKeyFile,
  deriveKeys,
  fromHex,
  KeyFileKind,
  openKeyFile,
  signKeyFileReplacement,
} from '@kinvault/format';
import type { ApiClient } from '../transport/api.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

async function household(api: ApiClient) {
  const h = await api.household.get.query();
  if (!h) throw new KinvaultError('INVALID_ARGUMENT', 'The household has no keys yet.');
  return h;
}

/** Replaces the passphrase key file with one for `passphrase` (the master key is unchanged). */
export async function setPassphrase(
  api: ApiClient,
  masterKey: Uint8Array,
  passphrase: string,
): Promise<void> {
  const h = await household(api);
  const repositoryId = fromHex(h.repositoryId);
  const current = Buffer.from(h.passphraseKeyFile, 'base64');
  const next = createKeyFile(masterKey, repositoryId, { passphrase });
  const signature = signKeyFileReplacement(deriveKeys(masterKey), {
    repositoryId,
    kind: KeyFileKind.passphrase,
    generation: h.passphraseGeneration,
    current,
    next,
  });
  await api.household.replaceKeyFile.mutate({
    kind: KeyFileKind.passphrase,
    keyFile: b64(next),
    signature: b64(signature),
  });
}

/**
 * `kinvault passphrase`: the current passphrase must open the household's key file (and
 * give this device's master key) before a new one is set.
 */
export async function changePassphrase(
  api: ApiClient,
  masterKey: Uint8Array,
  current: string,
  next: () => Promise<string>,
): Promise<void> {
  const h = await household(api);
  const opened = openKeyFile(Buffer.from(h.passphraseKeyFile, 'base64'), { passphrase: current });
  if (!bytesEqual(opened.masterKey, masterKey))
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      "The household's passphrase key file opens to another master key than this device's: this device belongs to another household. Set it up again.",
    );
  await setPassphrase(api, masterKey, await next());
}
