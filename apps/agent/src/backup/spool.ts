/**
 * Finished packs wait in the spool until the coordinator has them:
 *   spool/<name>.pack   the pack
 *   spool/<name>.json   its declaration (size and blob list)
 * A pack is assembled in memory and written (spool/.tmp-*, rename) once complete; after
 * a crash leftover .tmp-* files and damaged packs are deleted and the blobs of unfinished
 * packs are packed again, so an interruption costs at most the packs being assembled.
 * Finished packs upload in the background, a few at a time; when too many wait, the
 * next pack's close waits too (backpressure). `drain` waits for all and reports the
 * first failure.
 */
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { copyBytes, toHex, type OpenPackSink, type PackInfo } from '@kinvault/format';
import type { UrlStorage } from 'tus-js-client';
import type { ApiClient, Connection } from '../transport/api.js';
import { uploadPack } from '../transport/upload.js';
import { writeAll } from '../fs-write.js';
import { KinvaultError } from '@kinvault/protocol';

export interface Declaration {
  name: string;
  size: number;
  blobs: { type: 1 | 2; id: string }[];
}

export interface Uploaded {
  name: string;
  size: number;
  info: PackInfo | null;
}

const PARALLEL_UPLOADS = 2;
const MAX_WAITING = 4;
export function spool(
  dir: string,
  api: ApiClient,
  conn: Connection & { token: string },
  urlStorage: UrlStorage,
  onUploaded: (u: Uploaded) => Promise<void> | void,
) {
  const running = new Set<Promise<void>>();
  const waiting: (() => Promise<void>)[] = [];
  let failure: unknown;
  const pump = () => {
    while (running.size < PARALLEL_UPLOADS && waiting.length > 0) {
      const job = waiting.shift()!;
      const p: Promise<void> = job()
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(() => {
          running.delete(p);
          pump();
        });
      running.add(p);
    }
  };
  /** Queues an upload; waits while too many are queued. */
  async function enqueue(job: () => Promise<void>): Promise<void> {
    if (failure !== undefined) throw failure;
    waiting.push(job);
    pump();
    while (waiting.length + running.size > MAX_WAITING && running.size > 0)
      await Promise.race(running);
    if (failure !== undefined) throw failure;
  }
  /** Declares the pack and uploads it (its bytes in hand, or read from the spool). */
  async function send(d: Declaration, info: PackInfo | null, bytes?: Buffer): Promise<void> {
    const { needed } = await api.packs.declare.mutate(d);
    if (needed) {
      await uploadPack({
        conn,
        name: d.name,
        // The whole pack as one buffer (at most ~24 MiB): tus slices it without copying,
        // where a stream source would be re-assembled chunk by chunk.
        data: bytes ?? (await readFile(join(dir, `${d.name}.pack`))),
        size: d.size,
        urlStorage,
      });
    }
    await onUploaded({ name: d.name, size: needed ? d.size : 0, info });
    await rm(join(dir, `${d.name}.pack`), { force: true });
    await rm(join(dir, `${d.name}.json`), { force: true });
  }

  return {
    /**
     * Uploads what an earlier, interrupted run left behind. Spool files are not fsynced:
     * a spooled pack is trusted only if its bytes still hash to its name (a crash of the
     * machine, not just of the agent, can leave it short or empty). Anything else —
     * half-written packs, a pack without its declaration, a damaged one — is deleted;
     * its blobs are not on the coordinator, so this run packs them again.
     */
    async resume(): Promise<number> {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const files = await readdir(dir);
      let sent = 0;
      for (const f of files) {
        const name = f.replace(/\.(pack|json)$/, '');
        if (f.startsWith('.tmp-') || (f.endsWith('.pack') && !files.includes(`${name}.json`))) {
          await rm(join(dir, f), { force: true });
          continue;
        }
        if (!f.endsWith('.json')) continue;
        const d = await readFile(join(dir, f), 'utf8')
          .then((t) => JSON.parse(t) as Declaration)
          .catch(() => null);
        const bytes = await readFile(join(dir, `${name}.pack`)).catch(() => null);
        if (
          !d ||
          d.name !== name ||
          !bytes ||
          bytes.byteLength !== d.size ||
          createHash('sha256').update(bytes).digest('hex') !== name
        ) {
          await rm(join(dir, `${name}.pack`), { force: true });
          await rm(join(dir, f), { force: true });
          continue;
        }
        await send(d, null, bytes);
        sent++;
      }
      return sent;
    },

    /** Waits for every queued upload; throws the first failure. */
    async drain(): Promise<void> {
      while (running.size > 0 || waiting.length > 0) await Promise.race(running);
      if (failure !== undefined) throw failure;
    },

    /**
     * Pack sinks for the BlobPacker: a pack is assembled in memory (or adopted whole
     * from the packer), written to the spool in one go when it is complete (then
     * renamed into place), and its upload queued with the bytes still in hand.
     */
    openSink: (() => {
      // Packers that write piece by piece (the inline one) get a copy of each piece.
      const parts: Uint8Array[] = [];
      let adopted: { pack: Buffer; release: () => void } | null = null;
      const append = (part: Uint8Array) => {
        if (adopted) throw new KinvaultError('INTERNAL', 'A pack sink was written after adopt.');
        parts.push(copyBytes(part));
      };
      return {
        write: (part: Uint8Array) => append(part),
        writev: (list: readonly Uint8Array[]) => {
          for (const part of list) append(part);
        },
        adopt: (pack: Uint8Array, release: () => void) => {
          if (parts.length > 0 || adopted)
            throw new KinvaultError('INTERNAL', 'A pack sink adopted a pack after a write.');
          adopted = { pack: Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength), release };
        },
        close: async (info: PackInfo) => {
          const pack = adopted ? adopted.pack : Buffer.concat(parts);
          if (pack.byteLength !== info.size) {
            throw new KinvaultError(
              'INTERNAL',
              `Pack ${info.name.slice(0, 12)} holds ${pack.byteLength} bytes but its header says ${info.size}.`,
            );
          }
          await mkdir(dir, { recursive: true, mode: 0o700 });
          const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
          const fh = await open(tmp, 'wx', 0o600);
          try {
            // No fsync: after a machine crash `resume` checks the pack against its name.
            await writeAll(fh, [pack]);
          } catch (e) {
            await fh.close().catch(() => {});
            await rm(tmp, { force: true });
            throw e;
          }
          await fh.close();
          const d: Declaration = {
            name: info.name,
            size: info.size,
            blobs: info.entries.map((e) => ({ type: e.type, id: toHex(e.id) })),
          };
          await rename(tmp, join(dir, `${info.name}.pack`));
          await writeFile(join(dir, `${info.name}.json`), JSON.stringify(d), { mode: 0o600 });
          // An adopted pack's memory goes back only after its upload succeeded (a failed
          // one may still be referenced by the request that failed).
          const release = adopted?.release;
          adopted = null;
          parts.length = 0;
          await enqueue(() => send(d, info, pack).then(() => release?.()));
        },
        abort: async () => {
          parts.length = 0;
          adopted?.release();
          adopted = null;
        },
      };
    }) satisfies OpenPackSink,
  };
}
