/**
 * The household: created by the first device (key files made on the agent; the
 * coordinator stores them and the box public key, never the master key).
 */
import { KinvaultError } from '@kinvault/protocol';
import { decodeKeyFile, KeyFileKind } from '@kinvault/format';
import type { HouseholdRepository } from '../repositories/household.repository.js';

export interface HouseholdView {
  repositoryId: string;
  boxPublicKey: string;
  passphraseKeyFile: string;
  recoveryKeyFile: string;
}

function checkKeyFile(bytes: Uint8Array, kind: KeyFileKind, repositoryId: Buffer): void {
  const kf = decodeKeyFile(bytes);
  if (kf.kind !== kind)
    throw new KinvaultError('INVALID_ARGUMENT', 'A key file of the wrong kind was sent.');
  if (!Buffer.from(kf.repositoryId).equals(repositoryId))
    throw new KinvaultError('INVALID_ARGUMENT', 'A key file for another repository was sent.');
}

export function householdService(repo: HouseholdRepository) {
  const view = (
    h: NonNullable<Awaited<ReturnType<HouseholdRepository['get']>>>,
  ): HouseholdView => ({
    repositoryId: h.repositoryId.toString('hex'),
    boxPublicKey: h.boxPublicKey.toString('base64'),
    passphraseKeyFile: h.passphraseKeyFile.toString('base64'),
    recoveryKeyFile: h.recoveryKeyFile.toString('base64'),
  });
  return {
    async get(): Promise<HouseholdView | null> {
      const h = await repo.get();
      return h ? view(h) : null;
    },
    async create(input: {
      repositoryId: Uint8Array;
      boxPublicKey: Uint8Array;
      passphraseKeyFile: Uint8Array;
      recoveryKeyFile: Uint8Array;
    }): Promise<void> {
      const repositoryId = Buffer.from(input.repositoryId);
      if (repositoryId.length !== 16 || input.boxPublicKey.byteLength !== 32)
        throw new KinvaultError('INVALID_ARGUMENT', 'Malformed household keys.');
      checkKeyFile(input.passphraseKeyFile, KeyFileKind.passphrase, repositoryId);
      checkKeyFile(input.recoveryKeyFile, KeyFileKind.recoveryCode, repositoryId);
      const created = await repo.create({
        repositoryId,
        boxPublicKey: Buffer.from(input.boxPublicKey),
        passphraseKeyFile: Buffer.from(input.passphraseKeyFile),
        recoveryKeyFile: Buffer.from(input.recoveryKeyFile),
      });
      if (!created)
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          'This household already has its keys; unlock with the passphrase instead.',
        );
    },
    async replacePassphraseKeyFile(bytes: Uint8Array): Promise<void> {
      const h = await repo.get();
      if (!h) throw new KinvaultError('INVALID_ARGUMENT', 'The household has no keys yet.');
      checkKeyFile(bytes, KeyFileKind.passphrase, h.repositoryId);
      await repo.replaceKeyFile(1, Buffer.from(bytes));
    },
  };
}

export type HouseholdService = ReturnType<typeof householdService>;
