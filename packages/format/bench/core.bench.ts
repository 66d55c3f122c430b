/**
 * npm run bench:core [-- --size-mb N] — format-core throughput on random data.
 *
 * Writes N MiB (default 1024, env KINVAULT_BENCH_SIZE_MB) of random bytes to a file
 * in the system temp directory, then measures, each over the whole file:
 *   chunking (read + FastCDC), id hashing and sealing on one thread, and the whole
 *   chunk → id → seal → pack pipeline with the worker pool; then peak RSS.
 * The last line is one JSON object of the figures.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, open, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { blobId, BlobType, sealBlob } from '../src/blob.js';
import { workerBlobPacker } from '../src/blob-packer.js';
import { BufferPool } from '../src/bytes.js';
import { chunkSource, prepareChunker, type ReadIntoSource } from '../src/chunker.js';
import { deriveKeys, gearTable } from '../src/keys.js';
import { runPipeline } from './pipeline.js';

const MiB = 1024 * 1024;

function usage(): string {
  return `Usage: npm run bench:core [-- --size-mb N] [--threads N]

Measures the format core on N MiB of random data (default 1024).
  --size-mb N   data size in MiB (env KINVAULT_BENCH_SIZE_MB)
  --threads N   worker threads for the pipeline (default: CPU count, env KINVAULT_BENCH_THREADS)
  --help        this text
The last line of output is a JSON object with the figures.`;
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`bench:core: ${name} must be a positive integer, got "${value}".`);
    process.exit(2);
  }
  return n;
}

async function makeData(path: string, bytes: number): Promise<void> {
  const existing = await stat(path).catch(() => null);
  if (existing?.size === bytes) return;
  // AES-256-CTR keystream: incompressible, and much faster to make than crypto.randomBytes.
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zeros = Buffer.alloc(8 * MiB);
  const file = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; done += zeros.byteLength) {
      await file.write(cipher.update(zeros.subarray(0, Math.min(zeros.byteLength, bytes - done))));
    }
  } finally {
    await file.close();
  }
}

/** Reads a file straight into the chunker's window. */
async function withFile<T>(path: string, use: (source: ReadIntoSource) => Promise<T>): Promise<T> {
  const fh = await open(path, 'r');
  try {
    return await use({
      read: async (into) => (await fh.read(into, 0, into.byteLength, null)).bytesRead,
    });
  } finally {
    await fh.close();
  }
}
const mbs = (bytes: number, ns: bigint) => Math.round((bytes / 1e6 / (Number(ns) / 1e9)) * 10) / 10;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'size-mb': { type: 'string' },
      threads: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(usage());
    return;
  }
  const sizeMb = positive(
    '--size-mb',
    values['size-mb'] ?? process.env.KINVAULT_BENCH_SIZE_MB,
    1024,
  );
  const threads = positive(
    '--threads',
    values.threads ?? process.env.KINVAULT_BENCH_THREADS,
    availableParallelism(),
  );
  const dir = join(tmpdir(), 'kinvault-bench');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `random-${sizeMb}m.bin`);
  const bytes = sizeMb * MiB;
  console.log(`Preparing ${sizeMb} MiB of random data in ${path} …`);
  await makeData(path, bytes);

  const keys = deriveKeys(randomBytes(32));
  const chunker = prepareChunker(gearTable(keys.cdcSeed));

  // 1. Chunking (with the file read), and on the same chunks, hashing and sealing on one thread.
  let hashNs = 0n;
  let sealNs = 0n;
  let chunks = 0;
  let chunkNs = 0n;
  await withFile(path, async (source) => {
    let mark = process.hrtime.bigint();
    for await (const c of chunkSource(source, chunker)) {
      const a = process.hrtime.bigint();
      chunkNs += a - mark;
      const id = blobId(keys, BlobType.data, c.data);
      const b = process.hrtime.bigint();
      sealBlob(keys, BlobType.data, id, c.data);
      const d = process.hrtime.bigint();
      hashNs += b - a;
      sealNs += d - b;
      chunks++;
      mark = process.hrtime.bigint();
    }
  });
  const figures = {
    size_mib: sizeMb,
    chunks,
    avg_chunk_kib: Math.round(bytes / chunks / 1024),
    chunking_mb_s: mbs(bytes, chunkNs),
    id_hashing_mb_s: mbs(bytes, hashNs),
    sealing_mb_s: mbs(bytes, sealNs),
    pipeline_mb_s: 0,
    pipeline_threads: threads,
    /** CPU seconds per wall-clock second during the pipeline (all threads). */
    pipeline_cpu_cores: 0,
    packs: 0,
    peak_rss_mib: 0,
  };
  console.log(
    `chunking ${figures.chunking_mb_s} MB/s (${chunks} chunks), id hashing ${figures.id_hashing_mb_s} MB/s, sealing ${figures.sealing_mb_s} MB/s (one thread each)`,
  );

  // 2. The whole pipeline: packs go to a sink that only counts (the pack writer hashes them).
  let packs = 0;
  const buffers = new BufferPool();
  const packer = workerBlobPacker(
    keys,
    () => ({ write: () => {}, close: async () => void packs++ }),
    { threads, recycle: (b) => buffers.give(b) },
  );
  try {
    packer.drop(await packer.hash(BlobType.data, new Uint8Array(1))); // start the workers before timing
    const cpu0 = process.cpuUsage();
    const p0 = process.hrtime.bigint();
    const result = await withFile(path, (source) =>
      runPipeline(source, chunker, packer, new Set(), threads * 4, {
        allocate: (n) => buffers.take(n),
      }),
    );
    const ns = process.hrtime.bigint() - p0;
    const cpu = process.cpuUsage(cpu0);
    figures.pipeline_cpu_cores =
      Math.round((((cpu.user + cpu.system) * 1000) / Number(ns)) * 100) / 100;
    if (result.bytes !== bytes)
      throw new Error(`pipeline saw ${result.bytes} bytes, expected ${bytes}`);
    figures.pipeline_mb_s = mbs(bytes, ns);
    figures.packs = packs;
    if (result.packs !== packs)
      throw new Error(`pipeline reported ${result.packs} packs, sinks closed ${packs}`);
  } finally {
    await packer.close();
  }
  figures.peak_rss_mib = Math.round(process.resourceUsage().maxRSS / 1024);
  console.log(
    `pipeline ${figures.pipeline_mb_s} MB/s with ${threads} worker threads using ${figures.pipeline_cpu_cores} cores, ${packs} packs, peak RSS ${figures.peak_rss_mib} MiB`,
  );
  console.log(JSON.stringify(figures));
}

main().catch((error: unknown) => {
  console.error(`bench:core failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
