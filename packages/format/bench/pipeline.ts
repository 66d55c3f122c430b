/**
 * The chunk → id → dedup → seal → pack pipeline over one byte stream, as the benchmark
 * runs it and as the agent composes it: the main thread chunks and writes packs, the
 * worker pool hashes and seals. Blobs already seen in this run are not sealed again.
 */
import { BlobType } from '../src/blob.js';
import type { BlobCrypto } from '../src/blob-crypto.js';
import { chunkStream, type PreparedChunker } from '../src/chunker.js';
import type { Packer } from '../src/packer.js';
import { toHex } from '../src/bytes.js';

export interface PipelineResult {
  chunks: number;
  bytes: number;
  newChunks: number;
  sealedBytes: number;
}

export async function runPipeline(
  source: AsyncIterable<Uint8Array>,
  chunker: PreparedChunker,
  crypto: BlobCrypto,
  packer: Packer,
  known: Set<string>,
  maxInFlight: number,
): Promise<PipelineResult> {
  const result: PipelineResult = { chunks: 0, bytes: 0, newChunks: 0, sealedBytes: 0 };
  const inFlight = new Set<Promise<void>>();
  let packing: Promise<unknown> = Promise.resolve();
  let failure: unknown;

  const process = async (data: Uint8Array): Promise<void> => {
    const { id, data: back } = await crypto.hash(BlobType.data, data);
    const key = toHex(id);
    if (known.has(key)) return;
    known.add(key);
    const sealed = await crypto.seal(BlobType.data, id, back);
    result.newChunks++;
    result.sealedBytes += sealed.byteLength;
    packing = packing.then(() => packer.add(BlobType.data, id, sealed));
    await packing;
  };

  for await (const chunk of chunkStream(source, chunker)) {
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
  await packing;
  if (failure) throw failure;
  await packer.flush();
  return result;
}
