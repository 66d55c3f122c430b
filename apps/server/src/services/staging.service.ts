/**
 * Staging: copies of packs and recovery objects at the staging targets (design §19.3).
 *
 * Contract:
 * - `stagePack(name)` places the pack at targets, in their order, until it has the
 *   policy's number of verified copies (each on a different target). A target whose
 *   quota (as configured) would be exceeded is skipped, as is one whose provider reports
 *   too little room or refused a write as full (recorded as full, not failing, and left
 *   alone for an hour, or until "target test" or a pack copy succeeds); one that fails is recorded as
 *   failing and the next is tried. Packs leave room at a quota for the recovery objects
 *   (as much again as a target holds of them, at least 1 MiB): a catalog is written
 *   before the one it replaces is deleted. A copy counts
 *   only once verified (size, and SHA-256 from the provider or by reading it back).
 *   When too few targets took it, it throws a retryable error: the job tries again.
 * - `stageRecovery()` copies every snapshot manifest, both key files and the catalogs
 *   from the NAS store to every staging target (they are small and every recovery
 *   needs them), skipping what a target already holds with the same SHA-256, and
 *   deletes catalogs the NAS no longer keeps. They count against a quota like packs.
 * - `unprotected()` names the packs that lack copies, for a scan to enqueue.
 * - A pack's upload to a target keeps its state in `uploads` (design §19.3), so that a
 *   put cut off by a crash resumes where it stopped; a copy already whole at the target
 *   is verified and recorded, not sent again.
 */
import { createHash } from 'node:crypto';
import { formatBytes, KinvaultError } from '@kinvault/protocol';
import {
  bytesBody,
  fileBody,
  listAll,
  objectKeys,
  readAll,
  sha256Hex,
  takeMeter,
  type MeteredStore,
  type ObjectInfo,
  type Store,
} from '@kinvault/stores';
import type { TargetRow, TargetsRepository } from '../repositories/targets.repository.js';
import { resumeAt, type UploadsRepository } from '../repositories/uploads.repository.js';
import type { PackStore } from '../stores/pack.store.js';

export interface StagingCheck {
  targets: number;
  packs: number;
  ok: number;
  bad: { target: string; pack: string; state: 'missing' | 'damaged'; detail: string }[];
  /** Recovery objects (manifests, key files, catalogs) recorded at the targets. */
  objects: number;
  badObjects: { target: string; key: string; state: 'missing' | 'damaged'; detail: string }[];
  unreachable: { target: string; error: string }[];
}

export interface StagingDeps {
  targets: TargetsRepository;
  /** Uploads under way at targets (resumed after a crash). */
  uploads: UploadsRepository;
  packs: PackStore;
  /** The NAS store (the data directory): manifests, key files, catalogs. */
  nas: Store;
  /** A target's store (metered: what it counts is added to the target's traffic). */
  open(url: string): MeteredStore;
  /** The adapter itself, for a file target's sweep. */
  raw(url: string): Store;
  copies: number;
}

const RECOVERY_PREFIXES = ['snapshots/', 'keys/', 'catalog/'];

/** Not retryable: a check finds the pack damaged, and the next backup stores it anew. */
function sourceDamaged(name: string, cause: unknown): KinvaultError {
  return new KinvaultError(
    'PACK_HASH_MISMATCH',
    `The NAS copy of pack ${name.slice(0, 12)} does not hash to its name, so it was not copied anywhere. Run "kinvaultd check": it records the damage, and the next backups store the data again.`,
    { cause, details: { pack: name } },
  );
}

const isSourceDamage = (e: unknown) =>
  e instanceof KinvaultError && e.code === 'PACK_HASH_MISMATCH';
const isFull = (e: unknown) => e instanceof KinvaultError && e.code === 'DISK_FULL';

/** How long a target whose provider said it is full is left alone (unless tested). */
const FULL_RETRY_MS = 60 * 60 * 1000;
const MiB = 1024 * 1024;

/** Bytes a quota keeps free of packs, for the next manifests and catalog. */
const recoveryReserve = (t: TargetRow) => Math.max(MiB, t.recoveryBytes);

/** Whether `size` more bytes fit under the target's configured quota. */
const fitsQuota = (t: TargetRow, size: number, reserve = 0) =>
  t.quotaBytes === null || t.usedBytes + size + reserve <= t.quotaBytes;

/** Pack copies under way at a target (in this process). */
interface Underway {
  bytes: number;
  /** Each settles when its copy has ended (recorded or not). */
  copies: Set<Promise<void>>;
  /** Copies refused as full by the provider, counted. */
  refusals: number;
}

/** Why the provider has no room for `bytes` more, if it reports its usage and they do not fit. */
async function providerShort(store: Store, bytes: number): Promise<string | null> {
  const { usedBytes, quotaBytes } = await store.usage();
  if (usedBytes === null || quotaBytes === null || usedBytes + bytes <= quotaBytes) return null;
  return `it reports ${formatBytes(usedBytes)} of ${formatBytes(quotaBytes)} used`;
}

/**
 * Whether a recovery object read from the NAS is what its name says: manifests are
 * named by their SHA-256, catalogs carry theirs after the time. Key files are checked
 * by the agents that open them.
 */
const immutable = (key: string) => key.startsWith('snapshots/') || key.startsWith('catalog/');

function intact(key: string, sha256: string): boolean {
  if (key.startsWith('snapshots/')) return key.slice('snapshots/'.length) === sha256;
  if (key.startsWith('catalog/')) return key.endsWith(`/${sha256}`);
  return true;
}

/** The object's SHA-256 at the store: recorded by the provider, or read back. */
async function storedSha256(
  store: Store,
  key: string,
): Promise<{ size: number; sha256: string } | null> {
  const head = await store.head(key);
  if (!head) return null;
  if (head.sha256) return { size: head.size, sha256: head.sha256 };
  const hash = createHash('sha256');
  let size = 0;
  for await (const part of await store.get(key)) {
    hash.update(part as Buffer);
    size += (part as Buffer).byteLength;
  }
  return { size, sha256: hash.digest('hex') };
}

export function stagingService(deps: StagingDeps) {
  const { targets } = deps;
  // Decisions at one target run one at a time: each counts the target's use afresh, plus
  // the bytes of the pack copies under way there, before it writes, so jobs running side
  // by side cannot together pass its quota. The copies themselves run outside the lock,
  // side by side (one's reading and hashing overlaps another's upload). Near a limit, a
  // decision waits for the copies under way and decides as if they ran one at a time.
  const underway = new Map<string, Underway>();
  const underwayAt = (target: string): Underway => {
    let u = underway.get(target);
    if (!u) underway.set(target, (u = { bytes: 0, copies: new Set(), refusals: 0 }));
    return u;
  };
  const withUnderway = (t: TargetRow): TargetRow => ({
    ...t,
    usedBytes: t.usedBytes + (underway.get(t.name)?.bytes ?? 0),
  });
  const queues = new Map<string, Promise<unknown>>();
  const exclusive = <T>(target: string, work: () => Promise<T>): Promise<T> => {
    const run = (queues.get(target) ?? Promise.resolve()).then(work, work);
    queues.set(
      target,
      run.catch(() => {}),
    );
    return run;
  };
  const staging = async () => (await targets.list()).filter((t) => t.role === 'staging');
  const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

  /**
   * Runs `work` against a target, recording its failure, and its success unless
   * `reached` is false (the work may not have reached the provider: S3 answers its
   * usage without a request, which proves nothing about the bucket).
   */
  async function at<T>(
    t: TargetRow,
    work: (store: Store) => Promise<T>,
    reached = true,
  ): Promise<T> {
    const store = deps.open(t.url);
    try {
      const r = await work(store);
      if (reached) await targets.succeeded(t.name);
      return r;
    } catch (e) {
      if (isFull(e)) await targets.providerFull(t.name, message(e));
      else if (!isSourceDamage(e)) await targets.failed(t.name, message(e));
      throw e;
    } finally {
      const m = takeMeter(store.meter);
      const requests = Object.values(m.requests).reduce((a, b) => a + b, 0);
      await targets
        .addTraffic(t.name, { requests, sent: m.bytesSent, received: m.bytesReceived })
        .catch(() => undefined); // only a count: never in the way of what went wrong
    }
  }

  /**
   * Places one copy at a target: a problem to report, or null once the copy is recorded.
   * Whether it has room is decided under the target's lock; the copy runs outside it.
   */
  async function placePack(target: string, name: string, size: number): Promise<string | null> {
    const u = underwayAt(target);
    const decided = await exclusive(target, async () => {
      for (;;) {
        const row = (await staging()).find((r) => r.name === target);
        if (!row) return `"${target}" was removed`;
        const pending = u.copies.size > 0;
        const problem = await roomFor(row, size + u.bytes, !pending);
        if (problem === null) {
          u.bytes += size;
          let done = () => {};
          const copy = new Promise<void>((resolve) => (done = resolve));
          u.copies.add(copy);
          return {
            row,
            release: () => {
              u.bytes -= size;
              u.copies.delete(copy);
              done();
            },
          };
        }
        if (!pending) return problem;
        await Promise.all(u.copies);
      }
    });
    if (typeof decided === 'string') return decided;
    try {
      return await copyTo(decided.row, name, size, u);
    } finally {
      decided.release();
    }
  }

  /**
   * Why `t` has no room for `size` more bytes of packs (those of the copies under way
   * there included), or null. `record`: a provider short of room is recorded as full.
   */
  async function roomFor(t: TargetRow, size: number, record: boolean): Promise<string | null> {
    if (!fitsQuota(t, size, recoveryReserve(t)))
      return `"${t.name}" is full (${formatBytes(t.usedBytes)} of its ${formatBytes(t.quotaBytes!)} quota used)`;
    const said = t.fullCheckedAt;
    if (said && Date.now() - said.getTime() < FULL_RETRY_MS)
      return `"${t.name}" is full (${t.fullReason ?? 'its provider said so'})`;
    const short = await at(t, (store) => providerShort(store, size + recoveryReserve(t)), false);
    if (!short) return null;
    if (record) await targets.providerFull(t.name, short);
    return `"${t.name}" is full (${short})`;
  }

  /**
   * Copies and records the pack at `t`: a problem to report, or null. A copy that
   * succeeds clears the target's "full", unless another was refused as full meanwhile.
   */
  async function copyTo(
    t: TargetRow,
    name: string,
    size: number,
    u: Underway,
  ): Promise<string | null> {
    const refusals = u.refusals;
    try {
      const recorded = await copyPack(t, name, size);
      if (u.refusals === refusals) await targets.hasRoom(t.name);
      return recorded ? null : `"${t.name}" was removed`;
    } catch (e) {
      if (isSourceDamage(e)) throw e;
      if (!isFull(e)) return `"${t.name}": ${message(e)}`;
      u.refusals++;
      return `"${t.name}" is full (its provider said so)`;
    }
  }

  async function copyPack(t: TargetRow, name: string, size: number): Promise<boolean> {
    const key = objectKeys.pack(name);
    await at(t, async (store) => {
      // Whole there already (a crash came between the upload and its record): not sent again.
      const already = await storedSha256(store, key);
      if (already?.size === size && already.sha256 === name) return;
      const resume = resumeAt(deps.uploads, t.name, key);
      await store
        .put(key, await fileBody(deps.packs.path(name), name), { resume })
        .catch((e: unknown) => {
          // The NAS's bytes do not hash to the name: the NAS copy is damaged, not the target.
          if (e instanceof KinvaultError && e.code === 'CHECKSUM_MISMATCH')
            throw sourceDamaged(name, e);
          throw e;
        });
      const there = await storedSha256(store, key);
      if (there?.size !== size || there.sha256 !== name)
        throw new KinvaultError(
          'CHECKSUM_MISMATCH',
          `The copy of pack ${name.slice(0, 12)} at target "${t.name}" does not read back as written.`,
          { retryable: true },
        );
    });
    const recorded = await targets.recordPackCopy(Buffer.from(name, 'hex'), t.name);
    await deps.uploads.clear(t.name, key);
    return recorded;
  }

  /**
   * Copies the recovery objects `t` lacks (their NAS copies intact), then deletes the
   * catalogs the NAS no longer keeps; refused, writing nothing, if the new objects would
   * pass its quota.
   */
  async function copyRecovery(
    t: TargetRow,
    objects: ObjectInfo[],
    catalogs: Set<string>,
    damaged: Set<string>,
  ): Promise<number> {
    const known = await targets.objectsAt(t.name);
    // Manifests and catalogs never change (their names hold their SHA-256): one recorded
    // at this target is not read again. Key files are compared by SHA-256 below.
    const wanted = objects.filter((o) => !(immutable(o.key) && known.has(o.key)));
    const adding = wanted.filter((o) => !known.has(o.key)).reduce((n, o) => n + o.size, 0);
    if (!fitsQuota(t, adding)) {
      const e = new KinvaultError(
        'DISK_FULL',
        `"${t.name}" has no room under its quota for ${formatBytes(adding)} of snapshots, key files and catalogs (${formatBytes(t.usedBytes)} of ${formatBytes(t.quotaBytes!)} used): raise it ("kinvaultd target set ${t.name} --quota SIZE") or add a target.`,
      );
      await targets.failed(t.name, e.message); // status says so: its copies are not whole
      throw e;
    }
    return at(t, async (store) => {
      let n = 0;
      for (const o of wanted) {
        const bytes = await readAll(deps.nas, o.key).catch((e: unknown) => {
          // A catalog pruned on the NAS since it was listed: a newer one is there.
          if (e instanceof KinvaultError && e.code === 'NOT_FOUND') return null;
          throw e;
        });
        if (!bytes) continue;
        const sha256 = sha256Hex(bytes);
        if (!intact(o.key, sha256)) {
          damaged.add(o.key); // never spread a damaged copy over a good one
          continue;
        }
        if (known.get(o.key) === sha256) continue;
        await store.put(o.key, bytesBody(bytes, sha256));
        const there = await storedSha256(store, o.key);
        if (there?.sha256 !== sha256)
          throw new KinvaultError(
            'CHECKSUM_MISMATCH',
            `${o.key} at "${t.name}" does not read back as written.`,
            { retryable: true },
          );
        await targets.recordObjectCopy(t.name, o.key, bytes.byteLength, Buffer.from(sha256, 'hex'));
        n++;
      }
      // Catalogs the NAS no longer keeps go, but never the last ones a target has.
      const intactCatalogs = [...catalogs].filter((k) => !damaged.has(k));
      for (const old of intactCatalogs.length > 0 ? await listAll(store, 'catalog/') : [])
        if (!catalogs.has(old.key)) {
          await store.delete(old.key);
          await targets.forgetObject(t.name, old.key);
        }
      return n;
    });
  }

  return {
    async stagePack(name: string, size: number): Promise<{ copies: string[] }> {
      const copies = await targets.packCopies(Buffer.from(name, 'hex'));
      // Copies in verified volumes count: a pack archived needs fewer staging copies.
      const needed = deps.copies - copies.volumes;
      const have = new Set(copies.staging);
      const problems: string[] = [];
      for (const { name: target } of await staging()) {
        if (have.size >= needed) break;
        if (have.has(target)) continue;
        const problem = await placePack(target, name, size);
        if (problem) problems.push(problem);
        else have.add(target);
      }
      if (have.size < needed && (await staging()).length > 0)
        throw new KinvaultError(
          'UNAVAILABLE',
          `Pack ${name.slice(0, 12)} has ${have.size + copies.volumes} of ${deps.copies} off-site copies: ${problems.join('; ') || 'not enough staging targets'}.`,
          { retryable: true },
        );
      return { copies: [...have] };
    },

    async stageRecovery(): Promise<{ copied: number }> {
      const objects = (
        await Promise.all(RECOVERY_PREFIXES.map((p) => listAll(deps.nas, p)))
      ).flat();
      const catalogs = new Set(
        objects.filter((o) => o.key.startsWith('catalog/')).map((o) => o.key),
      );
      let copied = 0;
      const problems: string[] = [];
      const damaged = new Set<string>();
      for (const { name: target } of await staging()) {
        try {
          copied += await exclusive(target, async () => {
            const t = (await staging()).find((r) => r.name === target);
            return t ? copyRecovery(withUnderway(t), objects, catalogs, damaged) : 0;
          });
        } catch (e) {
          problems.push(`"${target}": ${message(e)}`);
        }
      }
      if (damaged.size > 0)
        problems.push(
          `the NAS copies of ${[...damaged].join(', ')} are damaged (not copied; the next start rewrites them from the database)`,
        );
      if (problems.length > 0)
        throw new KinvaultError(
          'UNAVAILABLE',
          `Copying the recovery objects failed: ${problems.join('; ')}.`,
          {
            retryable: true,
          },
        );
      return { copied };
    },

    unprotected: (limit?: number, after?: Buffer) =>
      targets.unprotectedPacks(deps.copies, limit, after),

    /**
     * Removes what interrupted puts left at the targets (temporary files, multipart
     * uploads no saved state refers to, or only the state of a pack that needs no copy
     * there any more); only while none runs.
     */
    async sweepTargets(): Promise<void> {
      for (const t of await targets.list()) {
        const store = deps.raw(t.url);
        await deps.uploads.dropSettled(t.name, deps.copies);
        const states = await deps.uploads.statesAt(t.name);
        await store.sweep?.(states).catch(() => {}); // unreachable or unmounted: next start
      }
    },

    /**
     * Checks every pack copy and recovery object recorded at the staging targets: there,
     * of its size, and of its SHA-256 (the provider's record, or read back). A copy found
     * missing or changed stops counting (a scan then places the pack, or copies the
     * recovery objects, again). Unreachable targets are reported.
     */
    async verify(): Promise<StagingCheck> {
      const result: StagingCheck = {
        targets: 0,
        packs: 0,
        ok: 0,
        bad: [],
        objects: 0,
        badObjects: [],
        unreachable: [],
      };
      for (const t of await staging()) {
        result.targets++;
        try {
          await at(t, async (store) => {
            for (const p of await targets.packsAt(t.name)) {
              result.packs++;
              const name = p.name.toString('hex');
              const there = await storedSha256(store, objectKeys.pack(name));
              const problem = !there
                ? 'missing'
                : there.size !== p.size || there.sha256 !== name
                  ? 'damaged'
                  : null;
              if (!problem) {
                result.ok++;
                continue;
              }
              const detail = problem === 'missing' ? 'not at the target' : 'its bytes changed';
              // Changed bytes are of no use to anyone: removed, so a copy can take their place.
              if (problem === 'damaged') await store.delete(objectKeys.pack(name));
              await targets.markPackCopy(p.name, t.name, problem, detail);
              result.bad.push({ target: t.name, pack: name, state: problem, detail });
            }
            for (const [key, sha256] of await targets.objectsAt(t.name)) {
              result.objects++;
              const there = await storedSha256(store, key);
              if (there?.sha256 === sha256) continue;
              // Recorded anew meanwhile (the coordinator just copied a new key file or
              // catalog there): nothing to judge.
              if ((await targets.objectsAt(t.name)).get(key) !== sha256) continue;
              const state = there ? ('damaged' as const) : ('missing' as const);
              // Not deleted: the next copy replaces it whole (a put is atomic), and a key
              // file at a target is never removed on a guess.
              await targets.forgetObject(t.name, key);
              const detail = there ? 'its bytes changed' : 'not at the target';
              result.badObjects.push({ target: t.name, key, state, detail });
            }
          });
        } catch (e) {
          result.unreachable.push({ target: t.name, error: message(e) });
        }
      }
      return result;
    },

    /**
     * For status: the copy policy, the targets, and the packs not yet protected. A target
     * is full when its provider said so, or when its quota cannot take the next pack
     * waiting for a copy there (by the rule placement uses, room for the recovery objects
     * kept); with none waiting, when its quota has no room left at all.
     */
    async offsite() {
      const [list, p, waiting] = await Promise.all([
        targets.list(),
        targets.protection(deps.copies),
        targets.smallestWaiting(deps.copies),
      ]);
      return {
        copiesRequired: deps.copies,
        targets: list.map((t) => {
          const next = waiting.get(t.name) ?? null;
          const quotaFull = !fitsQuota(t, next ?? 1, recoveryReserve(t));
          return {
            name: t.name,
            role: t.role,
            usedBytes: t.usedBytes,
            quotaBytes: t.quotaBytes,
            objects: t.objects,
            packs: t.packs,
            full: t.fullSince !== null || quotaFull,
            /** Its quota cannot take the next pack waiting (or anything, when none waits). */
            quotaFull,
            /** The size of the next pack waiting for a copy there; null if none waits. */
            nextPackBytes: next,
            fullSince: t.fullSince?.toISOString() ?? null,
            fullReason: t.fullSince ? t.fullReason : null,
            traffic: t.traffic,
            failingSince: t.failingSince?.toISOString() ?? null,
            lastError: t.failingSince ? t.lastError : null,
          };
        }),
        unprotectedPacks: p.unprotected,
        unprotectedSince: p.since?.toISOString() ?? null,
      };
    },
  };
}

export type StagingService = ReturnType<typeof stagingService>;
