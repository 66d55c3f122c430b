/**
 * What a restore could not restore, and why, in words for the person restoring: which
 * file or folder, which pack. A pack that cannot be read fails only the files that need
 * it. Each damaged pack is reported once, for the coordinator (`damage()`).
 */
import { isKinvaultError } from '@kinvault/protocol';
import { isConnectionError } from './transport/retry.js';

export type DamageReason = 'missing' | 'unreadable' | 'corrupt';

/** A pack found missing or damaged, with the blobs this restore could not get from it. */
export interface PackDamage {
  pack: string;
  blobs: string[];
  reason: DamageReason;
}

/** A file (or a folder whose listing could not be read) that was not restored. */
export interface RestoreFailure {
  path: string;
  /** The pack it needed and could not get (null: the coordinator knows no pack). */
  pack: string | null;
  reason: string;
}

/** Why a blob cannot be had. */
export interface BlobProblem {
  pack: string | null;
  reason: string;
}

/** What the person restoring should do about failures (printed once after the list). */
export const FAILURE_ADVICE =
  'Ask whoever runs the NAS to run `kinvaultd check` there, then run this restore again: files already restored are skipped.';

const CORRUPT = new Set([
  'DECRYPT_FAILED',
  'BLOB_ID_MISMATCH',
  'PACK_CORRUPT',
  'PACK_UNSUPPORTED',
  'PACK_TOO_LARGE',
  'PACK_HASH_MISMATCH',
]);

const short = (hex: string) => hex.slice(0, 12);

/**
 * What a failure to read from a pack says about the pack, or null when it is about no
 * pack (a bug, a revoked device): those stop the restore.
 */
export function classify(error: unknown): DamageReason | 'unreachable' | null {
  if (!isKinvaultError(error) || error.code === 'INVALID_ARGUMENT' || error.code === 'UNAUTHORIZED')
    return null;
  if (isConnectionError(error)) return 'unreachable';
  // What the coordinator found of the pack (repository.ts `locate`), or its 404 answer.
  if (error.details.state === 'missing' || error.details.status === 404) return 'missing';
  if (CORRUPT.has(error.code)) return 'corrupt';
  return 'unreadable';
}

/** The reason shown for a pack that failed with `error`, of kind `kind`. */
function describe(pack: string, kind: DamageReason | 'unreachable', error: unknown): string {
  const p = short(pack);
  const e = error as { code?: string; message: string; details?: Record<string, unknown> };
  switch (kind) {
    case 'missing':
      return `pack ${p} is missing on the coordinator`;
    case 'unreachable':
      return `pack ${p} could not be fetched: the coordinator stopped answering`;
    case 'unreadable':
      return `pack ${p} could not be read (${e.message})`;
    case 'corrupt':
      if (e.details?.state === 'damaged') return `pack ${p} is damaged on the coordinator`;
      if (e.details?.listed === false)
        return `pack ${p} does not hold blob ${short(String(e.details.blob))}, though the coordinator's index says it does`;
      // openBlob names the blob that failed its AEAD or id check
      if (typeof e.details?.blobId === 'string')
        return `pack ${p} is damaged: blob ${short(e.details.blobId)} failed its integrity check`;
      return `pack ${p} is damaged: its header cannot be read`;
  }
}

export class RestoreFailures {
  readonly list: RestoreFailure[] = [];
  /**
   * The error of the first pack that could not be fetched because the coordinator
   * stopped answering (after the retries): later packs fail with it untried.
   */
  unreachable: unknown = undefined;
  private readonly blobs = new Map<string, BlobProblem>();
  private readonly damaged = new Map<string, { reason: DamageReason; blobs: Set<string> }>();

  /**
   * Records that these blobs cannot be had from `pack` (null: the coordinator knows no
   * pack for them) because of `error`; rethrows an error that says nothing about a pack.
   */
  unreadable(pack: string | null, hexes: Iterable<string>, error: unknown): void {
    const kind = classify(error);
    if (!kind) throw error;
    const ids = [...hexes];
    for (const hex of ids)
      this.blobs.set(hex, {
        pack,
        reason:
          pack === null
            ? `blob ${short(hex)} is in no pack the coordinator has`
            : describe(pack, kind, error),
      });
    if (pack === null) return;
    if (kind === 'unreachable') this.unreachable ??= error;
    else this.damage(pack, kind, ids);
  }

  /** A blob of `pack` failed its integrity check (AEAD or id). */
  corrupt(pack: string, hex: string): void {
    this.blobs.set(hex, {
      pack,
      reason: `pack ${short(pack)} is damaged: blob ${short(hex)} failed its integrity check`,
    });
    this.damage(pack, 'corrupt', [hex]);
  }

  /** The first problem among these blobs, if any. */
  problem(hexes: Iterable<string>): BlobProblem | undefined {
    for (const hex of hexes) {
      const p = this.blobs.get(hex);
      if (p) return p;
    }
    return undefined;
  }

  fail(path: string, problem: BlobProblem): void {
    this.list.push({ path, pack: problem.pack, reason: problem.reason });
  }

  /** The packs found missing or damaged, each once. */
  packs(): PackDamage[] {
    return [...this.damaged].map(([pack, d]) => ({ pack, reason: d.reason, blobs: [...d.blobs] }));
  }

  private damage(pack: string, reason: DamageReason, hexes: string[]): void {
    let d = this.damaged.get(pack);
    if (!d) this.damaged.set(pack, (d = { reason, blobs: new Set() }));
    // A pack missing or unreadable as a whole says more than one bad blob in it.
    if (reason !== 'corrupt') d.reason = reason;
    for (const hex of hexes) d.blobs.add(hex);
  }
}
