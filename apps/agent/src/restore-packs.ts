/**
 * Writing restored files pack by pack. Each pack's blobs are read with a few range
 * requests and written wherever they belong, by worker threads (restore-writer.ts). A
 * file whose chunks all lie in one pack is created, filled and finished by one write
 * request; a file spread over several packs is created under a temporary name, filled
 * piece by piece as its packs arrive, and finished by its last piece. A piece that
 * cannot be had (pack unreadable, blob bad) fails its file, and only its file.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  ftruncateSync,
  futimesSync,
  openSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { KinvaultError, type ErrorCode } from '@kinvault/protocol';
import {
  SEAL_OVERHEAD,
  toHex,
  utimeArg,
  type FileNode,
  type RepositoryKeys,
} from '@kinvault/format';
import pLimit from 'p-limit';
import type { Located, RemoteRepository } from './repository.js';
import { restoreWriters, type FilePiece, type WriteResult } from './restore-writer.js';
import type { BlobProblem, RestoreFailures } from './restore-failures.js';

export interface FileJob {
  path: string;
  node: FileNode;
  /** In a directory this restore created (nothing to compare with). */
  fresh: boolean;
  state: 'todo' | 'done' | 'skipped' | 'failed';
  problem?: BlobProblem;
}

/** A file whose chunks lie in several packs: written under `tmp`, piece by piece. */
interface Spread {
  file: FileJob;
  tmp: string;
  /** Pieces not yet written (or given up). */
  left: number;
  /** Set when a piece could not be had: the file is dropped once no piece is in flight. */
  problem?: BlobProblem;
}

/** Marks a file failed and lists it. */
export function failFile(failures: RestoreFailures, f: FileJob, problem: BlobProblem): void {
  f.state = 'failed';
  f.problem = problem;
  failures.fail(f.path, problem);
}

/** A temporary name beside `path` (backups skip such names). */
export function tempName(path: string): string {
  return join(path, '..', `.kinvault-restore-${randomBytes(6).toString('hex')}`);
}

/** Moves a finished temp file into place (never over a directory). */
export function place(tmp: string, path: string): void {
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST')
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Refusing to replace the directory ${path} with a file.`,
      );
    throw e;
  }
}

/** The counters a PackWriter keeps up to date. */
export interface WriteCounts {
  files_restored: number;
  bytes_written: number;
}

export class PackWriter {
  private readonly pieces = new Map<string, FilePiece[]>(); // by pack
  private readonly owner = new Map<FilePiece, { file: FileJob; spread?: Spread }>();
  private readonly spread: Spread[] = [];
  private readonly idOf = new Map<string, Uint8Array>(); // hex → id
  private located = new Map<string, Located>(); // hex → where (every piece's chunks)

  constructor(
    private readonly repo: RemoteRepository,
    private readonly keys: RepositoryKeys,
    private readonly failures: RestoreFailures,
    private readonly summary: WriteCounts,
    private readonly onProgress?: (s: WriteCounts) => void,
  ) {}

  /** Removes the temporary files of spread files not finished (after a failed run). */
  cleanup(): void {
    for (const s of this.spread) if (s.left > 0 || s.problem) rmSync(s.tmp, { force: true });
  }

  /**
   * Finds where every chunk is and splits each file into pieces: runs of consecutive
   * chunks in one pack. A file whose chunks cannot all be located fails here. A file
   * in one pack is created and finished by one write request (in place when nothing
   * was there); a file spread over several is created under a temporary name now,
   * filled piece by piece as its packs arrive, and finished by the last piece.
   */
  async plan(todo: FileJob[], absent: ReadonlySet<string>): Promise<void> {
    const { found, lost } = await this.repo.locate([
      ...new Set(todo.flatMap((f) => f.node.chunks.map(toHex))),
    ]);
    this.located = found;
    for (const [hex, l] of lost) this.failures.unreadable(l.pack, [hex], l.error);
    for (const f of todo) {
      const hexes = f.node.chunks.map(toHex);
      const problem = this.failures.problem(hexes);
      if (problem) {
        failFile(this.failures, f, problem);
        continue;
      }
      const runs = this.runsOf(f, hexes, found);
      if (!runs) continue;
      const tmp = absent.has(f.path) && runs.length <= 1 ? f.path : tempName(f.path);
      if (runs.length === 0) {
        closeSync(openSync(tmp, 'wx', 0o600));
        this.complete(tmp, f);
      } else if (runs.length === 1) {
        const { pack, chunks } = runs[0]!;
        const { size, mode, mtimeNs } = f.node;
        const finish = { path: f.path, size, mode, mtime: utimeArg(mtimeNs) };
        this.add(pack, { tmp, create: true, position: 0, chunks, finish }, { file: f });
      } else {
        closeSync(openSync(tmp, 'wx', 0o600));
        const s: Spread = { file: f, tmp, left: runs.length };
        this.spread.push(s);
        for (const r of runs)
          this.add(
            r.pack,
            { tmp, create: false, position: r.position, chunks: r.chunks },
            { file: f, spread: s },
          );
      }
    }
  }

  /** The file's pieces, or null (the file failed) when its chunks do not add up. */
  private runsOf(f: FileJob, hexes: string[], where: Map<string, Located>) {
    const runs: { pack: string; position: number; chunks: string[] }[] = [];
    let at = 0;
    for (const [i, hex] of hexes.entries()) {
      const loc = where.get(hex)!;
      this.idOf.set(hex, f.node.chunks[i]!);
      const last = runs.at(-1);
      if (last?.pack === loc.pack) last.chunks.push(hex);
      else runs.push({ pack: loc.pack, position: at, chunks: [hex] });
      at += loc.entry.length - SEAL_OVERHEAD;
    }
    if (at === f.node.size) return runs;
    failFile(this.failures, f, {
      pack: null,
      reason: `the snapshot says ${f.node.size} bytes but its chunks hold ${at}`,
    });
    return null;
  }

  private add(pack: string, piece: FilePiece, owner: { file: FileJob; spread?: Spread }): void {
    const list = this.pieces.get(pack);
    if (list) list.push(piece);
    else this.pieces.set(pack, [piece]);
    this.owner.set(piece, owner);
  }

  /**
   * Pack by pack: each pack's blobs are read with a few range requests and written
   * wherever they belong (a backup interleaves the chunks of files it reads at once,
   * so this takes about one request per pack rather than several per file). After a
   * write error no further pack is started; those in flight finish first.
   */
  async write(): Promise<void> {
    const packJobs = pLimit(6);
    const writers = restoreWriters(this.keys, (bytes) => this.repo.recycle(bytes));
    let stop: { error: unknown } | undefined;
    try {
      await Promise.all(
        [...this.pieces.keys()].sort().map((pack) =>
          packJobs(async () => {
            if (!stop) await this.writePack(pack, writers);
          }).catch((error: unknown) => void (stop ??= { error })),
        ),
      );
    } finally {
      await writers.close();
    }
    if (stop) throw stop.error;
  }

  private async writePack(pack: string, writers: ReturnType<typeof restoreWriters>) {
    const list: FilePiece[] = [];
    for (const piece of this.pieces.get(pack)!) {
      // A piece of a spread file that already failed is not fetched.
      const s = this.owner.get(piece)!.spread;
      if (s?.problem) this.settle(piece, s.problem);
      else list.push(piece);
    }
    if (list.length === 0) return;
    const hexes = [...new Set(list.flatMap((p) => p.chunks))];
    let result: WriteResult = { written: 0, bad: [], skipped: [] };
    let sent: FilePiece[] = [];
    if (this.failures.unreachable !== undefined)
      this.failures.unreadable(pack, hexes, this.failures.unreachable);
    else {
      const ids = hexes.map((h) => this.idOf.get(h)!);
      const { ranges, failed } = await this.repo.readRanges(ids, this.located);
      try {
        for (const f of failed)
          this.failures.unreadable(
            pack,
            f.blobs.map((b) => b.hex),
            f.error,
          );
      } catch (e) {
        for (const r of ranges) this.repo.recycle(r.bytes);
        throw e;
      }
      sent = list.filter((p) => !this.failures.problem(p.chunks));
      if (sent.length) result = await writers.write(ranges, sent);
      else for (const r of ranges) this.repo.recycle(r.bytes);
    }
    for (const b of result.bad) this.failures.corrupt(pack, b.hex);
    this.summary.bytes_written += result.written;
    this.settleAll(list, sent, result);
    this.onProgress?.(this.summary);
    if (result.error) {
      const { code, errno, message } = result.error;
      throw new KinvaultError(code as ErrorCode, message, { details: errno ? { errno } : {} });
    }
  }

  /** Records what a write request did with each piece of the pack. */
  private settleAll(list: FilePiece[], sent: FilePiece[], result: WriteResult): void {
    const skipped = new Set(result.skipped);
    const stoppedAt = result.error?.done ?? sent.length;
    const sentSet = new Set(sent);
    for (const [i, piece] of sent.entries()) {
      if (i >= stoppedAt) break; // not written (the caller throws): cleaned up there
      if (!skipped.has(i)) this.settle(piece);
      else {
        const problem = this.failures.problem(piece.chunks);
        if (!problem) throw new KinvaultError('INTERNAL', `A restore writer skipped ${piece.tmp}.`);
        this.settle(piece, problem);
      }
    }
    for (const piece of list)
      if (!sentSet.has(piece)) this.settle(piece, this.failures.problem(piece.chunks)!);
  }

  /** A piece was written, or (with `problem`) will never be. */
  private settle(piece: FilePiece, problem?: BlobProblem): void {
    const { file, spread: s } = this.owner.get(piece)!;
    if (!s) {
      if (problem) failFile(this.failures, file, problem);
      else {
        file.state = 'done';
        this.summary.files_restored++;
      }
      return;
    }
    if (problem) s.problem ??= problem;
    if (--s.left > 0) return;
    if (s.problem) {
      rmSync(s.tmp, { force: true });
      failFile(this.failures, file, s.problem);
    } else this.complete(s.tmp, file);
  }

  /** Sets size (zeros at the end stay a hole), mode and mtime, and moves it into place. */
  private complete(tmp: string, f: FileJob): void {
    const fd = openSync(tmp, 'r+');
    try {
      ftruncateSync(fd, f.node.size);
      fchmodSync(fd, f.node.mode);
      const t = utimeArg(f.node.mtimeNs);
      futimesSync(fd, t, t);
    } finally {
      closeSync(fd);
    }
    if (tmp !== f.path) place(tmp, f.path);
    f.state = 'done';
    this.summary.files_restored++;
  }
}
