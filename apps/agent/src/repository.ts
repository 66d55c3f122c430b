/**
 * The household repository as this agent sees it through the coordinator: where each
 * blob is (the coordinator says which pack; the pack's own header, read with two small
 * ranged GETs and cached, says where in it), and reading blobs, trees and snapshots.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlobType,
  BufferPool,
  blobId,
  bytesEqual,
  decodePackHeader,
  decodeTree,
  encodePackHeader,
  openBlob,
  openSnapshot,
  snapshotId,
  PACK_TRAILER_BYTES,
  readPackHeader,
  toHex,
  type PackEntry,
  type RepositoryKeys,
  type Snapshot,
  type Tree,
} from '@kinvault/format';
import { isKinvaultError, KinvaultError } from '@kinvault/protocol';
import pLimit from 'p-limit';
import type { ApiClient } from './transport/api.js';
import type { PackReader } from './transport/packs.js';

export interface Located {
  pack: string;
  entry: PackEntry;
}

/** Sealed blobs read in one request: `at` is each blob's offset within `bytes`. */
export interface RawRange {
  bytes: Uint8Array;
  blobs: { hex: string; id: Uint8Array; at: number; length: number }[];
}

/** A range of a pack that could not be read, and why. */
export interface FailedRange {
  pack: string;
  error: unknown;
  blobs: RawRange['blobs'];
}

/** Why a blob cannot be located: its pack (null when the coordinator knows none). */
export interface LostBlob {
  pack: string | null;
  error: unknown;
}

/**
 * A KinvaultError about reading a blob, given the blob and its pack in `details` (code,
 * message and retryability kept). Any other error is returned as it is (a bug, not data).
 */
export function blobError(hex: string, pack: string | null, error: unknown): unknown {
  if (!isKinvaultError(error)) return error;
  return new KinvaultError(error.code, error.message, {
    retryable: error.retryable,
    cause: error,
    details: { ...error.details, blob: hex, pack },
  });
}

const HAVE_BATCH = 20_000;

export class RemoteRepository {
  private readonly headers = new Map<string, Map<string, PackEntry>>();
  private treeDirMade = false;
  private readonly trees = new Map<string, { tree: Tree; bytes: Uint8Array }>();

  constructor(
    private readonly api: ApiClient,
    private readonly packs: PackReader,
    private readonly keys: RepositoryKeys,
    private readonly cacheDir: string,
  ) {}

  /** Gives the buffer of a range read back to the reader's pool once it is written. */
  recycle(bytes: Uint8Array): void {
    this.packs.recycle(bytes);
  }

  /** Which of these ids the coordinator has, and in which pack. */
  async have(ids: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < ids.length; i += HAVE_BATCH) {
      const { found } = await this.api.blobs.have.mutate({ ids: ids.slice(i, i + HAVE_BATCH) });
      for (const f of found) out.set(f.id, f.pack);
    }
    return out;
  }

  /**
   * The available packs that hold these ids (each once), and the ids that are in none
   * (their pack was lost or damaged on the coordinator: whoever still has the data must
   * store it again).
   */
  async packsOf(ids: readonly string[]): Promise<{ packs: Set<string>; missing: Set<string> }> {
    const packs = new Set<string>();
    const missing = new Set<string>();
    for (let i = 0; i < ids.length; i += HAVE_BATCH) {
      const r = await this.api.blobs.packsOf.mutate({ ids: ids.slice(i, i + HAVE_BATCH) });
      for (const p of r.packs) packs.add(p);
      for (const m of r.missing) missing.add(m);
    }
    return { packs, missing };
  }

  /**
   * Tells the coordinator that a pack could not be read or that blobs in it failed their
   * checks; it re-hashes its copy and records what it finds. Never throws: a report that
   * does not arrive only delays the finding (a check finds it too).
   */
  async reportDamage(r: {
    pack: string;
    blobs: string[];
    reason: 'missing' | 'unreadable' | 'corrupt';
  }): Promise<string | null> {
    try {
      return (await this.api.packs.reportDamage.mutate(r)).state;
    } catch {
      return null;
    }
  }

  /** Remembers a pack's entries (for packs this device wrote). */
  async rememberPack(name: string, entries: readonly PackEntry[]): Promise<void> {
    this.headers.set(name, new Map(entries.map((e) => [toHex(e.id), e])));
    await mkdir(this.cacheDir, { recursive: true, mode: 0o700 });
    await writeFile(join(this.cacheDir, name), encodePackHeader(entries), { mode: 0o600 });
  }

  private async entries(name: string): Promise<Map<string, PackEntry>> {
    const known = this.headers.get(name);
    if (known) return known;
    let list: PackEntry[];
    const cached = await readFile(join(this.cacheDir, name)).catch(() => null);
    if (cached) {
      list = decodePackHeader(cached, sumLengths(cached));
    } else {
      const { total } = await this.packs.tail(name, PACK_TRAILER_BYTES);
      list = await readPackHeader(
        { size: total, read: async (o, l) => (await this.packs.range(name, o, l)).bytes },
        this.keys,
      );
      await this.rememberPack(name, list);
    }
    const map = new Map(list.map((e) => [toHex(e.id), e]));
    this.headers.set(name, map);
    return map;
  }

  /** For ids in no available pack: the pack that held each, and whether it is damaged or missing. */
  private async whereLost(
    ids: readonly string[],
  ): Promise<Map<string, { pack: string; state: string }>> {
    const out = new Map<string, { pack: string; state: string }>();
    for (let i = 0; i < ids.length; i += HAVE_BATCH) {
      const { lost } = await this.api.blobs.lost.mutate({ ids: ids.slice(i, i + HAVE_BATCH) });
      for (const l of lost) out.set(l.id, { pack: l.pack, state: l.state });
    }
    return out;
  }

  /**
   * Where each blob is. A blob that cannot be located is in `lost`, with its pack (null
   * when the coordinator knows none for it) and why: the pack's header could not be read,
   * or does not list it. Only a failure to ask the coordinator at all throws.
   */
  async locate(
    ids: readonly string[],
  ): Promise<{ found: Map<string, Located>; lost: Map<string, LostBlob> }> {
    const packsOf = await this.have(ids);
    // A blob whose only pack is damaged is still read from it: each blob is checked, and
    // the damage may be elsewhere in the pack.
    const gone = await this.whereLost(ids.filter((id) => !packsOf.has(id)));
    for (const [id, was] of gone) if (was.state === 'damaged') packsOf.set(id, was.pack);
    // Pack headers not yet cached are two round trips each: fetch several at a time.
    const headers = pLimit(8);
    const entries = new Map(
      [...new Set(packsOf.values())].map((pack) => {
        const fetched = headers(() => this.entries(pack)).then(
          (map) => ({ map }),
          (error: unknown) => ({ error }),
        );
        return [pack, fetched];
      }),
    );
    const found = new Map<string, Located>();
    const lost = new Map<string, LostBlob>();
    for (const id of ids) {
      const pack = packsOf.get(id);
      if (!pack) {
        const was = gone.get(id);
        lost.set(id, {
          pack: was?.pack ?? null,
          error: new KinvaultError(
            'PACK_CORRUPT',
            was
              ? `pack ${was.pack.slice(0, 12)} is ${was.state} on the coordinator`
              : `blob ${id.slice(0, 12)} is in no pack the coordinator has`,
            { details: { pack: was?.pack ?? null, blob: id, state: was?.state } },
          ),
        });
        continue;
      }
      const header = await entries.get(pack)!;
      const entry = 'map' in header ? header.map.get(id) : undefined;
      if (entry) found.set(id, { pack, entry });
      else
        lost.set(id, {
          pack,
          error:
            'error' in header
              ? header.error
              : new KinvaultError(
                  'PACK_CORRUPT',
                  `Pack ${pack} does not hold blob ${id}, though the coordinator's index says it does.`,
                  { details: { pack, blob: id, listed: false } },
                ),
        });
    }
    return { found, lost };
  }

  /**
   * Reads and opens one blob. A failure is a KinvaultError with the cause's code and
   * `details.pack` (null when no pack holds it) and `details.blob`.
   */
  async loadBlob(type: BlobType, id: Uint8Array, where?: Located): Promise<Uint8Array> {
    const hex = toHex(id);
    let loc = where;
    if (!loc) {
      const { found, lost } = await this.locate([hex]);
      const why = lost.get(hex);
      if (why) throw blobError(hex, why.pack, why.error);
      loc = found.get(hex)!;
    }
    try {
      const { bytes } = await this.packs.range(loc.pack, loc.entry.offset, loc.entry.length);
      return openBlob(this.keys, type, id, bytes);
    } catch (error) {
      throw blobError(hex, loc.pack, error);
    }
  }

  /**
   * Reads the sealed bytes of many blobs with few requests: blobs of one pack that lie
   * close together are fetched as one range (gaps up to 256 KiB, spans up to 16 MiB).
   * Nothing is decrypted or verified here (see `openBlob`); each range owns its buffer.
   * A range that cannot be read is in `failed` with its error; the others are read.
   * Every id must be in `where`.
   */
  async readRanges(
    ids: readonly Uint8Array[],
    where: Map<string, Located>,
  ): Promise<{ ranges: RawRange[]; failed: FailedRange[] }> {
    const wanted = [...new Map(ids.map((id) => [toHex(id), id])).entries()].map(([hex, id]) => {
      const loc = where.get(hex);
      if (!loc) throw new KinvaultError('INTERNAL', `Blob ${hex} was asked for but never located.`);
      return { hex, id, loc };
    });
    wanted.sort((a, b) =>
      a.loc.pack < b.loc.pack
        ? -1
        : a.loc.pack > b.loc.pack
          ? 1
          : a.loc.entry.offset - b.loc.entry.offset,
    );
    const reads: Promise<RawRange | FailedRange>[] = [];
    let i = 0;
    while (i < wanted.length) {
      const first = wanted[i]!;
      const start = first.loc.entry.offset;
      let end = start + first.loc.entry.length;
      let j = i + 1;
      for (; j < wanted.length; j++) {
        const w = wanted[j]!.loc;
        if (
          w.pack !== first.loc.pack ||
          w.entry.offset - end > 256 * 1024 ||
          w.entry.offset + w.entry.length - start > 16 * 1024 * 1024
        )
          break;
        end = Math.max(end, w.entry.offset + w.entry.length);
      }
      const blobs = wanted.slice(i, j).map((w) => ({
        hex: w.hex,
        id: w.id,
        at: w.loc.entry.offset - start,
        length: w.loc.entry.length,
      }));
      reads.push(
        this.packs.range(first.loc.pack, start, end - start).then(
          ({ bytes }) => ({
            // Each range must own its buffer (it may move to a worker): a whole buffer or
            // one lent by the reader's pool is passed on, anything else copied.
            bytes:
              (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) ||
              BufferPool.lent(bytes.buffer)
                ? bytes
                : new Uint8Array(bytes),
            blobs,
          }),
          (error: unknown) => ({ pack: first.loc.pack, error, blobs }),
        ),
      );
      i = j;
    }
    const ranges: RawRange[] = [];
    const failed: FailedRange[] = [];
    for (const r of await Promise.all(reads)) {
      if ('error' in r) failed.push(r);
      else ranges.push(r);
    }
    return { ranges, failed };
  }

  /** Reads and opens (decrypts, verifies) many blobs; returns plaintexts by hex id. */
  async loadBlobs(
    type: BlobType,
    ids: readonly Uint8Array[],
    where: Map<string, Located>,
  ): Promise<Map<string, Uint8Array>> {
    const { ranges, failed } = await this.readRanges(ids, where);
    const out = new Map<string, Uint8Array>();
    try {
      const bad = failed[0];
      if (bad) throw blobError(bad.blobs[0]!.hex, bad.pack, bad.error);
      for (const r of ranges)
        for (const b of r.blobs) {
          try {
            out.set(
              b.hex,
              openBlob(this.keys, type, b.id, r.bytes.subarray(b.at, b.at + b.length)),
            );
          } catch (error) {
            throw blobError(b.hex, where.get(b.hex)!.pack, error);
          }
        }
    } finally {
      for (const r of ranges) this.recycle(r.bytes);
    }
    return out;
  }

  /**
   * Trees are immutable, so the agent keeps the ones it has seen (and the ones it made)
   * under cache/trees in its state directory: a re-run reads parent trees locally.
   */
  async rememberTree(id: Uint8Array, encoded: Uint8Array): Promise<void> {
    // Small files: synchronous calls cost far less than thread-pool round trips.
    const dir = join(this.cacheDir, 'trees');
    if (!this.treeDirMade) mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.treeDirMade = true;
    writeFileSync(join(dir, toHex(id)), encoded, { mode: 0o600 });
  }

  async loadTree(id: Uint8Array): Promise<Tree> {
    return (await this.loadTreeEntry(id)).tree;
  }

  /** A tree's encoded bytes (to tell whether a directory encodes exactly as before). */
  async loadTreeBytes(id: Uint8Array): Promise<Uint8Array> {
    return (await this.loadTreeEntry(id)).bytes;
  }

  private async loadTreeEntry(id: Uint8Array): Promise<{ tree: Tree; bytes: Uint8Array }> {
    const hex = toHex(id);
    let entry = this.trees.get(hex);
    if (!entry) {
      let cached: Buffer | null = null;
      try {
        cached = readFileSync(join(this.cacheDir, 'trees', hex));
      } catch {
        // not cached (or unreadable): fetched below
      }
      // A cached tree is used only if it still hashes to its id.
      let bytes: Uint8Array;
      if (cached && bytesEqual(blobId(this.keys, BlobType.tree, cached), id)) bytes = cached;
      else {
        bytes = await this.loadBlob(BlobType.tree, id);
        await this.rememberTree(id, bytes).catch(() => {});
      }
      entry = { tree: decodeTree(bytes), bytes };
      if (this.trees.size > 10_000) this.trees.clear();
      this.trees.set(hex, entry);
    }
    return entry;
  }

  async snapshots(): Promise<
    { id: string; device: string; createdAt: string; snapshot: Snapshot }[]
  > {
    const list = await this.api.snapshots.list.query();
    const dir = join(this.cacheDir, 'snapshots');
    const out = [];
    for (const s of list) {
      // Sealed snapshots never change: each is fetched once, then read from the cache
      // (used only if it still hashes to its id).
      let sealed = await readFile(join(dir, s.id)).catch(() => null);
      if (!sealed || snapshotId(sealed) !== s.id) {
        sealed = Buffer.from((await this.api.snapshots.get.query({ id: s.id })).sealed, 'base64');
        if (snapshotId(sealed) === s.id)
          await mkdir(dir, { recursive: true, mode: 0o700 })
            .then(() => writeFile(join(dir, s.id), sealed!, { mode: 0o600 }))
            .catch(() => {});
      }
      out.push({ ...s, snapshot: openSnapshot(this.keys, sealed) });
    }
    return out;
  }

  /**
   * A snapshot by full id or unique prefix (at least 6 hex digits), or "latest": the
   * newest snapshot of `device` (this device, unless the user names another). An id may
   * name any device's snapshot; with `device` given it must be that device's.
   */
  async findSnapshot(ref: string, device?: string) {
    const all = await this.snapshots();
    const mine = device === undefined ? all : all.filter((s) => s.device === device);
    if (ref === 'latest') {
      const last = mine[mine.length - 1];
      if (last) return last;
      const others = [...new Set(all.map((s) => s.device))];
      throw new KinvaultError(
        'NOT_FOUND',
        all.length === 0
          ? 'There are no snapshots yet. Run "kinvault backup PATH" first.'
          : `Device "${device}" has no snapshots. Give --device NAME for another device's latest (${others.join(', ')}), or a snapshot id ("kinvault snapshots" lists them).`,
      );
    }
    if (!/^[0-9a-f]{6,64}$/.test(ref))
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `"${ref}" is not a snapshot id: give at least 6 hex digits of one ("kinvault snapshots" lists them), or "latest".`,
      );
    const matches = mine.filter((s) => s.id.startsWith(ref));
    if (matches.length !== 1) {
      throw new KinvaultError(
        matches.length === 0 ? 'NOT_FOUND' : 'INVALID_ARGUMENT',
        matches.length === 0
          ? `No snapshot${device === undefined ? '' : ` of device "${device}"`} has an id starting with ${ref}.`
          : `${matches.length} snapshots start with ${ref}; give more digits.`,
      );
    }
    return matches[0]!;
  }
}

/** The blob area a cached header describes (its entries tile it from 0). */
function sumLengths(plain: Uint8Array): number {
  const view = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
  const count = plain.byteLength >= 4 ? view.getUint32(0, true) : 0;
  let total = 0;
  for (let i = 0; i < count && 4 + i * 41 + 41 <= plain.byteLength; i++)
    total += view.getUint32(4 + i * 41 + 37, true);
  return total;
}
