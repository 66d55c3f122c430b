/**
 * The work a pack-building thread does, without any I/O: hash a blob and hold it,
 * then seal it into the open pack or drop it; finish packs at the target size.
 * `blob-packer.ts` runs it inline or inside worker threads.
 *
 * Contract: a held blob is sealed or dropped exactly once; `seal` returns the sealed
 * bytes to write next and, when the pack reached its target, the pack's tail and info
 * (write the sealed bytes first, then the tail).
 */
import { KinvaultError } from '@kinvault/protocol';
import { blobId, sealBlobParts, type BlobType } from './blob.js';
import type { RepositoryKeys } from './keys.js';
import { PackAssembler, type PackInfo } from './pack.js';
import { systemRandom, type RandomSource } from './random.js';

export type BlobKeys = Pick<RepositoryKeys, 'idKey' | 'dataKey' | 'metadataKey'>;

export interface FinishedPack {
  readonly tail: Uint8Array;
  readonly info: PackInfo;
}

export interface SealResult {
  /** The sealed blob as parts to write in order (their concatenation is the blob). */
  readonly sealed: Uint8Array[];
  /** The plaintext buffer, no longer needed: callers may reuse it. */
  readonly plaintext: Uint8Array;
  readonly finished: FinishedPack | null;
}

interface Held {
  readonly type: BlobType;
  readonly id: Uint8Array;
  readonly data: Uint8Array;
}

export class PackBuilder {
  private readonly held = new Map<number, Held>();
  private pack: PackAssembler | undefined;

  constructor(
    private readonly keys: BlobKeys,
    private readonly target: number,
    private readonly random: RandomSource = systemRandom,
  ) {}

  /** Hashes `data` and keeps it under `handle` until `seal` or `drop`. */
  hash(handle: number, type: BlobType, data: Uint8Array): Uint8Array {
    const id = blobId(this.keys, type, data);
    this.held.set(handle, { type, id, data });
    return id;
  }

  /** Seals a held blob into the open pack. */
  seal(handle: number): SealResult {
    const h = this.held.get(handle);
    if (!h) throw new KinvaultError('INTERNAL', `No held blob ${handle} to seal.`);
    this.held.delete(handle);
    const sealed = sealBlobParts(this.keys, h.type, h.id, h.data, this.random);
    const pack = (this.pack ??= new PackAssembler(this.keys, this.random));
    pack.append(h.type, h.id, sealed);
    const finished = pack.size >= this.target || pack.full ? this.flush() : null;
    return { sealed, plaintext: h.data, finished };
  }

  /** Forgets a held blob; returns its buffer (the caller may reuse it). */
  drop(handle: number): Uint8Array | null {
    const h = this.held.get(handle);
    this.held.delete(handle);
    return h?.data ?? null;
  }

  /** Finishes the open pack, if it holds any blob. */
  flush(): FinishedPack | null {
    const pack = this.pack;
    this.pack = undefined;
    return pack && pack.count > 0 ? pack.finish() : null;
  }

  get heldCount(): number {
    return this.held.size;
  }
}
