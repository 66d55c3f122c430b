/**
 * The household: created by the first device (key files made on the agent; the
 * coordinator stores them and the box and signing public keys, never the master key).
 * A key file is replaced only with the household's signature of that exact change
 * (docs/design.md §4.6), and every replaced file is kept so the change can be undone.
 */
import { createHash } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import {
  decodeKeyFile,
  KeyFileKind,
  SIGN_PUBLIC_KEY_BYTES,
  verifyKeyFileReplacement,
} from '@kinvault/format';
import type { HouseholdRepository, HouseholdRow } from '../repositories/household.repository.js';
import type { EventBus } from './events.js';
import type { Device } from './packs.service.js';

export interface HouseholdView {
  repositoryId: string;
  boxPublicKey: string;
  passphraseKeyFile: string;
  recoveryKeyFile: string;
  /** The generation a replacement of each key file is signed for (§4.6). */
  passphraseGeneration: number;
  recoveryGeneration: number;
  /** False for a household created before the signing key: its key files stay as they are. */
  keyFilesReplaceable: boolean;
}

const KIND_NAME = { 1: 'passphrase', 2: 'recovery code' } as const;
const shortHash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

function checkKeyFile(bytes: Uint8Array, kind: KeyFileKind, repositoryId: Buffer): void {
  const kf = decodeKeyFile(bytes);
  if (kf.kind !== kind)
    throw new KinvaultError('INVALID_ARGUMENT', 'A key file of the wrong kind was sent.');
  if (!Buffer.from(kf.repositoryId).equals(repositoryId))
    throw new KinvaultError('INVALID_ARGUMENT', 'A key file for another repository was sent.');
}

function view(h: HouseholdRow): HouseholdView {
  return {
    repositoryId: h.repositoryId.toString('hex'),
    boxPublicKey: h.boxPublicKey.toString('base64'),
    passphraseKeyFile: h.passphraseKeyFile.toString('base64'),
    recoveryKeyFile: h.recoveryKeyFile.toString('base64'),
    passphraseGeneration: h.passphraseGeneration,
    recoveryGeneration: h.recoveryGeneration,
    keyFilesReplaceable: h.signPublicKey !== null,
  };
}

export interface HouseholdHooks {
  /**
   * Runs after the household is created or a key file changes, before the call
   * resolves (the key files' copies in the data directory); a failure is only reported.
   */
  afterKeyFiles?(): Promise<void>;
  onHookError?(error: unknown): void;
}

export function householdService(
  repo: HouseholdRepository,
  events?: EventBus,
  hooks: HouseholdHooks = {},
) {
  const keyFilesChanged = () =>
    Promise.resolve(hooks.afterKeyFiles?.()).catch((e: unknown) => hooks.onHookError?.(e));
  const announce = (kind: 1 | 2, by: string, from: Uint8Array, to: Uint8Array) =>
    events?.publish({
      type: 'household.keyfile.replaced',
      kind: KIND_NAME[kind],
      by,
      from: shortHash(from),
      to: shortHash(to),
      at: new Date().toISOString(),
    });

  const household = async () => {
    const h = await repo.get();
    if (!h) throw new KinvaultError('INVALID_ARGUMENT', 'The household has no keys yet.');
    return h;
  };

  return {
    async get(): Promise<HouseholdView | null> {
      const h = await repo.get();
      return h ? view(h) : null;
    },

    async create(input: {
      repositoryId: Uint8Array;
      boxPublicKey: Uint8Array;
      signPublicKey: Uint8Array;
      passphraseKeyFile: Uint8Array;
      recoveryKeyFile: Uint8Array;
    }): Promise<void> {
      const repositoryId = Buffer.from(input.repositoryId);
      if (
        repositoryId.length !== 16 ||
        input.boxPublicKey.byteLength !== 32 ||
        input.signPublicKey.byteLength !== SIGN_PUBLIC_KEY_BYTES
      )
        throw new KinvaultError('INVALID_ARGUMENT', 'Malformed household keys.');
      checkKeyFile(input.passphraseKeyFile, KeyFileKind.passphrase, repositoryId);
      checkKeyFile(input.recoveryKeyFile, KeyFileKind.recoveryCode, repositoryId);
      const created = await repo.create({
        repositoryId,
        boxPublicKey: Buffer.from(input.boxPublicKey),
        signPublicKey: Buffer.from(input.signPublicKey),
        passphraseKeyFile: Buffer.from(input.passphraseKeyFile),
        recoveryKeyFile: Buffer.from(input.recoveryKeyFile),
      });
      if (!created)
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          'This household already has its keys; unlock with the passphrase instead.',
        );
      await keyFilesChanged();
    },

    /**
     * Replaces a key file: only with the household's signature over this exact change
     * (from the key file held now to the new one), so a device token alone — a stolen
     * or borrowed one — cannot lock the household out or swap in a key of its own.
     */
    async replaceKeyFile(
      device: Device,
      input: { kind: 1 | 2; keyFile: Uint8Array; signature: Uint8Array },
    ): Promise<void> {
      const h = await household();
      if (!h.signPublicKey)
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          'This household was created before key files could be replaced safely, so the coordinator cannot check who asks. Its key files stay as they are.',
        );
      checkKeyFile(input.keyFile, input.kind, h.repositoryId);
      const current = input.kind === 1 ? h.passphraseKeyFile : h.recoveryKeyFile;
      const generation = input.kind === 1 ? h.passphraseGeneration : h.recoveryGeneration;
      const next = Buffer.from(input.keyFile);
      const change = { repositoryId: h.repositoryId, kind: input.kind, generation, current, next };
      // The same change sent again (its answer was lost, the request retried): done.
      if (current.equals(next) && (await repo.lastSignature(input.kind))?.equals(input.signature))
        return;
      if (!verifyKeyFileReplacement(h.signPublicKey, change, input.signature))
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `Refused to replace the ${KIND_NAME[input.kind]} key file: the request is not signed with this household's key. Only a device that holds the household's master key can do this.`,
        );
      const done = await repo.replaceKeyFile(
        input.kind,
        { bytes: current, generation },
        next,
        device.name,
        Buffer.from(input.signature),
      );
      if (!done)
        throw new KinvaultError(
          'CONFLICT',
          `The ${KIND_NAME[input.kind]} key file changed meanwhile; try again.`,
          { retryable: true },
        );
      await keyFilesChanged();
      announce(input.kind, device.name, current, next);
    },

    /** Key files replaced so far, newest first (for `kinvaultd keys`). */
    async history() {
      return (await repo.history()).map((v) => ({
        id: v.id,
        kind: KIND_NAME[v.kind],
        replacedAt: v.replacedAt.toISOString(),
        replacedBy: v.replacedBy,
        sha256: shortHash(v.bytes),
      }));
    },

    /**
     * Puts an earlier key file back (the NAS owner's undo, `kinvaultd keys restore`); the
     * one it replaces goes into the history too. Anyone who can run this on the NAS can
     * already change its database, so no signature is asked for.
     */
    async restoreVersion(id: string): Promise<{ kind: string; sha256: string }> {
      if (!/^\d{1,18}$/.test(id))
        throw new KinvaultError('INVALID_ARGUMENT', `"${id}" is not a key file version number.`);
      const [v] = await repo.history(id);
      if (!v)
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `There is no key file version ${id}. "kinvaultd keys" lists them.`,
        );
      const h = await household();
      const current = {
        bytes: v.kind === 1 ? h.passphraseKeyFile : h.recoveryKeyFile,
        generation: v.kind === 1 ? h.passphraseGeneration : h.recoveryGeneration,
      };
      if (!(await repo.replaceKeyFile(v.kind, current, v.bytes, 'kinvaultd keys restore', null)))
        throw new KinvaultError('CONFLICT', 'The key file changed meanwhile; try again.', {
          retryable: true,
        });
      await keyFilesChanged();
      announce(v.kind, 'kinvaultd keys restore', current.bytes, v.bytes);
      return { kind: KIND_NAME[v.kind], sha256: shortHash(v.bytes) };
    },
  };
}

export type HouseholdService = ReturnType<typeof householdService>;
