/**
 * Groups sealed blobs into packs of about `target` bytes.
 *
 * Contract: blobs are written to the current pack's sink as they arrive (constant
 * memory). Once a pack reaches `target` bytes or MAX_PACK_ENTRIES blobs it is
 * finished and its sink's `close` is awaited before `add` returns, so an upload can
 * apply backpressure. A pack is never finished without a blob in it.
 */
import type { BlobType } from './blob.js';
import type { RepositoryKeys } from './keys.js';
import { DEFAULT_PACK_TARGET, MAX_PACK_ENTRIES, PackWriter, type ByteSink, type PackInfo } from './pack.js';
import { systemRandom, type RandomSource } from './random.js';

export interface PackSink extends ByteSink {
  /** Called once the pack is complete, with its name; the sink may now store it. */
  close(info: PackInfo): Promise<void>;
  /** Called when the pack is abandoned (an error). */
  abort?(): Promise<void>;
}

export interface PackerOptions {
  target?: number;
  random?: RandomSource;
}

export class Packer {
  private current: { writer: PackWriter; sink: PackSink } | undefined;
  private readonly target: number;
  private readonly random: RandomSource;

  constructor(
    private readonly keys: Pick<RepositoryKeys, 'metadataKey'>,
    private readonly openSink: () => PackSink | Promise<PackSink>,
    options: PackerOptions = {},
  ) {
    this.target = options.target ?? DEFAULT_PACK_TARGET;
    this.random = options.random ?? systemRandom;
  }

  /** Bytes in the open pack so far. */
  get pendingBytes(): number {
    return this.current?.writer.size ?? 0;
  }

  /** Adds a sealed blob; returns the pack it completed, if any. */
  async add(type: BlobType, id: Uint8Array, sealed: Uint8Array): Promise<PackInfo | null> {
    if (!this.current) {
      const sink = await this.openSink();
      this.current = { writer: new PackWriter(this.keys, sink, this.random), sink };
    }
    await this.current.writer.add(type, id, sealed);
    const w = this.current.writer;
    return w.size >= this.target || w.count >= MAX_PACK_ENTRIES ? this.flush() : null;
  }

  /** Finishes the open pack, if it has any blob. */
  async flush(): Promise<PackInfo | null> {
    const c = this.current;
    if (!c) return null;
    if (c.writer.count === 0) {
      await this.abort();
      return null;
    }
    this.current = undefined;
    const info = await c.writer.finish();
    await c.sink.close(info);
    return info;
  }

  /** Drops the open pack without finishing it. */
  async abort(): Promise<void> {
    const c = this.current;
    this.current = undefined;
    await c?.sink.abort?.();
  }
}
