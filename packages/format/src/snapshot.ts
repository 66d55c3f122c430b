/**
 * Snapshot manifests: small encrypted objects, one per backup run.
 *
 * Plaintext v1 (integers little-endian):
 *   u8 version = 1
 *   i64 start_ns, i64 end_ns           when the backup started and finished
 *   tree id[32]                          root tree
 *   u8 has_parent (0/1) ‖ [parent snapshot id[32]]
 *   str16 hostname, str16 device name
 *   u16 path count ‖ str16 paths…      what was backed up, as given
 *   u16 tag count ‖ str16 tags…
 *   u8 flags                             bit 0: partial (some files could not be read)
 *   u32 error count ‖ (str16 path ‖ str16 message)…
 *   u64 files, u64 dirs, u64 bytes     totals of the tree
 *   u64 files_new, u64 bytes_new       what this run had to upload
 * Sealed: XChaCha20-Poly1305(metadata key, random nonce, plaintext,
 *   ad = "kinvault snapshot v1"). Snapshot id = hex SHA-256 of the sealed bytes, so a
 *   coordinator can check integrity without any key.
 */
import { createHash } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import { NONCE_BYTES, open, seal } from './aead.js';
import { BLOB_ID_BYTES } from './blob.js';
import { ByteReader, ByteWriter, encodeUtf8 } from './bytes.js';
import type { RepositoryKeys } from './keys.js';
import { systemRandom, type RandomSource } from './random.js';

export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_AD = encodeUtf8('kinvault snapshot v1');
/** Snapshots are small; anything larger is refused before decryption. */
export const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;

export interface SnapshotError {
  readonly path: string;
  readonly message: string;
}

export interface SnapshotStats {
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly filesNew: number;
  readonly bytesNew: number;
}

export interface Snapshot {
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly tree: Uint8Array;
  readonly parent: Uint8Array | null;
  readonly hostname: string;
  readonly device: string;
  readonly paths: readonly string[];
  readonly tags: readonly string[];
  readonly partial: boolean;
  readonly errors: readonly SnapshotError[];
  readonly stats: SnapshotStats;
}

function invalid(why: string): never {
  throw new KinvaultError('SNAPSHOT_INVALID', `Invalid snapshot manifest: ${why}.`);
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  if (s.tree.byteLength !== BLOB_ID_BYTES) invalid('tree id is not 32 bytes');
  if (s.parent && s.parent.byteLength !== 32) invalid('parent id is not 32 bytes');
  if (s.paths.length > 0xffff || s.tags.length > 0xffff) invalid('too many paths or tags');
  if (s.partial !== s.errors.length > 0)
    invalid('partial must be set exactly when errors are listed');
  const w = new ByteWriter(512).u8(SNAPSHOT_VERSION).i64(s.startNs).i64(s.endNs).bytes(s.tree);
  if (s.parent) w.u8(1).bytes(s.parent);
  else w.u8(0);
  w.str16(s.hostname, 'The snapshot hostname')
    .str16(s.device, 'The snapshot device name')
    .u16(s.paths.length);
  for (const p of s.paths) w.str16(p);
  w.u16(s.tags.length);
  for (const t of s.tags) w.str16(t);
  w.u8(s.partial ? 1 : 0).u32(s.errors.length);
  for (const e of s.errors)
    w.str16(e.path, 'An error path').str16(
      e.message,
      `The error message for ${e.path.slice(0, 80)}`,
    );
  const st = s.stats;
  for (const v of [st.files, st.dirs, st.bytes, st.filesNew, st.bytesNew]) {
    if (!Number.isSafeInteger(v) || v < 0) invalid(`statistic ${v} is not a count`);
    w.u64(v);
  }
  if (w.length + 40 > MAX_SNAPSHOT_BYTES)
    invalid(
      `it would be ${w.length} bytes; the limit is ${MAX_SNAPSHOT_BYTES} (too many errors listed?)`,
    );
  return w.finish();
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const r = new ByteReader(bytes, 'SNAPSHOT_INVALID', 'Invalid snapshot manifest');
  const version = r.u8();
  if (version !== SNAPSHOT_VERSION)
    invalid(`version ${version} is not supported (this program reads ${SNAPSHOT_VERSION})`);
  const startNs = r.i64();
  const endNs = r.i64();
  const tree = r.copy(32);
  const hasParent = r.u8();
  if (hasParent > 1) invalid('has_parent is neither 0 nor 1');
  const parent = hasParent ? r.copy(32) : null;
  const hostname = r.str16();
  const device = r.str16();
  const paths: string[] = [];
  for (let n = r.u16(); n > 0; n--) paths.push(r.str16());
  const tags: string[] = [];
  for (let n = r.u16(); n > 0; n--) tags.push(r.str16());
  const flags = r.u8();
  if (flags > 1) invalid(`unknown flags ${flags}`);
  const errorCount = r.u32();
  if (errorCount > r.remaining / 4) invalid(`claims ${errorCount} errors in ${r.remaining} bytes`);
  const errors: SnapshotError[] = [];
  for (let i = 0; i < errorCount; i++) errors.push({ path: r.str16(), message: r.str16() });
  if ((flags === 1) !== errors.length > 0) invalid('partial flag and error list disagree');
  const stats = {
    files: r.u64(),
    dirs: r.u64(),
    bytes: r.u64(),
    filesNew: r.u64(),
    bytesNew: r.u64(),
  };
  r.end();
  return {
    startNs,
    endNs,
    tree,
    parent,
    hostname,
    device,
    paths,
    tags,
    partial: flags === 1,
    errors,
    stats,
  };
}

export function sealSnapshot(
  keys: Pick<RepositoryKeys, 'metadataKey'>,
  snapshot: Snapshot,
  random: RandomSource = systemRandom,
): { id: string; bytes: Uint8Array } {
  const bytes = seal(keys.metadataKey, random(NONCE_BYTES), encodeSnapshot(snapshot), SNAPSHOT_AD);
  return { id: snapshotId(bytes), bytes };
}

export function snapshotId(sealed: Uint8Array): string {
  return createHash('sha256').update(sealed).digest('hex');
}

export function openSnapshot(
  keys: Pick<RepositoryKeys, 'metadataKey'>,
  sealed: Uint8Array,
): Snapshot {
  if (sealed.byteLength > MAX_SNAPSHOT_BYTES)
    invalid(`${sealed.byteLength} bytes is larger than any snapshot`);
  let plain: Uint8Array;
  try {
    plain = open(keys.metadataKey, sealed, SNAPSHOT_AD);
  } catch (error) {
    throw new KinvaultError(
      'DECRYPT_FAILED',
      'The snapshot could not be decrypted: the master key is wrong or the snapshot is damaged.',
      { cause: error },
    );
  }
  return decodeSnapshot(plain);
}
