/**
 * The chunk → id → dedup → seal → pack pipeline over one source, as the benchmark runs
 * it and as the agent composes it: this thread reads and chunks, the blob packer
 * hashes, seals and builds packs. Blobs already known are dropped, not sealed.
 */
import { BlobType } from '../src/blob.js';
import type { BlobPacker } from '../src/blob-packer.js';
import { toHex } from '../src/bytes.js';
import {
  chunkSource,
  type ChunkOptions,
  type PreparedChunker,
  type ReadIntoSource,
} from '../src/chunker.js';

export interface PipelineResult {
  chunks: number;
  bytes: number;
  newChunks: number;
  packs: number;
}

export async function runPipeline(
  source: ReadIntoSource,
  chunker: PreparedChunker,
  packer: BlobPacker,
  known: Set<string>,
  maxInFlight: number,
  chunkOptions: ChunkOptions = {},
): Promise<PipelineResult> {
  const result: PipelineResult = { chunks: 0, bytes: 0, newChunks: 0, packs: 0 };
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const process = async (data: Uint8Array): Promise<void> => {
    const held = await packer.hash(BlobType.data, data);
    const key = toHex(held.id);
    if (known.has(key)) {
      packer.drop(held);
      return;
    }
    known.add(key);
    result.newChunks++;
    if (await packer.seal(held)) result.packs++;
  };

  for await (const chunk of chunkSource(source, chunker, chunkOptions)) {
    result.chunks++;
    result.bytes += chunk.data.byteLength;
    const task = process(chunk.data).catch((e: unknown) => {
      failure ??= e;
    });
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
    if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    if (failure) throw failure;
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  result.packs += (await packer.flush()).length;
  return result;
}
