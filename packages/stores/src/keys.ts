/**
 * Object keys and the paths of what Kinvault stores (docs/design.md §19): the same
 * layout on every target, so a directory copied from one to another is still a store.
 */
import { KinvaultError } from '@kinvault/protocol';

const SEGMENT = '[a-z0-9][a-z0-9._-]*';
const KEY = new RegExp(`^${SEGMENT}(/${SEGMENT})*$`);
const PREFIX = new RegExp(`^(${SEGMENT}(/${SEGMENT})*/?)?$`);
export const MAX_KEY_LENGTH = 512;

/** Throws INVALID_ARGUMENT unless `key` is a valid object key. */
export function checkKey(key: string): void {
  if (key.length > MAX_KEY_LENGTH || !KEY.test(key) || key.split('/').includes('..'))
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `"${key.slice(0, 80)}" is not an object key: lowercase letters, digits, ".", "_", "-" and "/" only, at most ${MAX_KEY_LENGTH} characters.`,
    );
}

/** Throws INVALID_ARGUMENT unless `prefix` is empty or a valid key prefix. */
export function checkPrefix(prefix: string): void {
  if (prefix.length > MAX_KEY_LENGTH || !PREFIX.test(prefix) || prefix.split('/').includes('..'))
    throw new KinvaultError('INVALID_ARGUMENT', `"${prefix.slice(0, 80)}" is not a key prefix.`);
}

const HEX64 = /^[0-9a-f]{64}$/;

function hex64(what: string, value: string): string {
  if (!HEX64.test(value))
    throw new KinvaultError('INVALID_ARGUMENT', `A ${what} is 64 lowercase hex digits.`);
  return value;
}

/** Where each kind of object lives at a target. */
export const objectKeys = {
  pack: (name: string) => `packs/${hex64('pack name', name).slice(0, 2)}/${name}`,
  snapshot: (id: string) => `snapshots/${hex64('snapshot id', id)}`,
  keyFile: (kind: 'passphrase' | 'recovery') => `keys/${kind}`,
  /**
   * Catalogs sort by the time they were written (13-digit ms), then by their SHA-256; a
   * folder per time, so that no name passes the 64 characters Joliet (an ISO volume's
   * tree that 7-Zip reads) allows.
   */
  catalog: (writtenAtMs: number, sha256: string) =>
    `catalog/${String(Math.trunc(writtenAtMs)).padStart(13, '0')}/${hex64('catalog SHA-256', sha256)}`,
  /** An ISO volume at an archive target (design §21). */
  volume: (id: number) => `volumes/kinvault-${String(id).padStart(6, '0')}.iso`,
} as const;

/** The folders of Kinvault's objects at a target (and of `target test`'s probe). */
const KINDS = /^(packs|snapshots|keys|catalog|volumes|probe)\//;

/**
 * Whether a key (relative to a target's root) is one of Kinvault's object kinds: what a
 * target's sweep may touch. Anything else there (another target's objects under a longer
 * prefix, the user's own files) is left alone.
 */
export function isObjectKey(key: string): boolean {
  return KINDS.test(key);
}
