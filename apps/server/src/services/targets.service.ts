/**
 * Storage targets: adding one (checked with a probe first), listing, testing and
 * removing them. Targets are named by URL (design §19.3); credentials never appear in
 * what this service returns or throws.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { KinvaultError } from '@kinvault/protocol';
import {
  bytesBody,
  FileStore,
  needsAuthorisation,
  parseTargetUrl,
  readAll,
  sha256Hex,
  type Store,
  type Usage,
} from '@kinvault/stores';
import type { TargetsRepository, TargetRow } from '../repositories/targets.repository.js';

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

export interface ProbeResult {
  /** What the provider says of its space. */
  usage: Usage;
  /** Milliseconds the write, read back, list and delete took in all. */
  ms: number;
}

/** Writes, reads back, lists and deletes a probe object; throws what failed. */
export async function probe(store: Store): Promise<ProbeResult> {
  const started = Date.now();
  const key = `probe/${randomBytes(8).toString('hex')}`;
  const bytes = randomBytes(4096);
  await store.put(key, bytesBody(bytes));
  try {
    // An object in a frozen class (Glacier) cannot be read without a restore: its size
    // and recorded SHA-256 stand in for reading it back.
    const frozen = store.capabilities.needsRestore;
    const back = frozen ? await store.head(key) : null;
    const same = frozen
      ? back?.size === bytes.byteLength && (back.sha256 ?? sha256Hex(bytes)) === sha256Hex(bytes)
      : (await readAll(store, key)).equals(bytes);
    if (!same)
      throw new KinvaultError(
        'CHECKSUM_MISMATCH',
        `${store.label} gave back other bytes than written.`,
      );
    const listed = await store.list('probe/');
    if (!listed.objects.some((o) => o.key === key))
      throw new KinvaultError(
        'FAILED_PRECONDITION',
        `${store.label} does not list what was written.`,
      );
  } finally {
    await store.delete(key);
  }
  if (await store.head(key))
    throw new KinvaultError('FAILED_PRECONDITION', `${store.label} kept an object it deleted.`);
  return { usage: await store.usage(), ms: Date.now() - started };
}

export interface TargetsDeps {
  repo: TargetsRepository;
  /** The coordinator's data directory: a file target on its disk is no off-site copy. */
  dataDir: string;
  open(url: string): Store;
  /** Called after a target was added or removed: copies must be (re)placed. */
  changed(): Promise<void>;
}

/** The smallest volume an archive target may be given (design §21.4). */
export const MIN_VOLUME_SIZE = 8 * 1024 * 1024;

function checkRole(t: { role: string; quotaBytes: number | null; volumeSize?: number | null }) {
  if (t.role !== 'staging' && t.role !== 'archive')
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `--role ${t.role} is not a role: give --role staging (free tiers and disks that hold packs until they are archived) or --role archive (ISO volumes, e.g. Glacier Deep Archive).`,
    );
  if (t.role === 'staging' && (t.volumeSize ?? null) !== null)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      '--volume-size is for archive targets: give --role archive, or leave it out.',
    );
  if (t.role === 'archive' && t.quotaBytes !== null)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      '--quota is for staging targets: an archive target takes whole volumes (--volume-size).',
    );
  if (t.volumeSize !== undefined && t.volumeSize !== null && t.volumeSize < MIN_VOLUME_SIZE)
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `--volume-size must be at least 8MiB (5GB is the default; design §21.4 says how to choose).`,
    );
}

export function targetsService(deps: TargetsDeps) {
  const { repo } = deps;

  async function get(name: string): Promise<TargetRow> {
    const t = (await repo.list()).find((r) => r.name === name);
    if (!t)
      throw new KinvaultError(
        'NOT_FOUND',
        `There is no target "${name}" ("kinvaultd target list" lists them).`,
      );
    return t;
  }

  return {
    get,
    list: () => repo.list(),

    async add(input: {
      name: string;
      url: string;
      role: string;
      quotaBytes: number | null;
      /** An archive target's volume size (null: the default). */
      volumeSize?: number | null;
      /** Accept a folder on the data directory's own disk. */
      sameDisk?: boolean;
    }) {
      if (!NAME.test(input.name))
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `"${input.name}" is not a target name: 1–32 lowercase letters, digits and "-".`,
        );
      checkRole(input);
      parseTargetUrl(input.url);
      if ((await repo.list()).some((t) => t.name === input.name))
        throw new KinvaultError('ALREADY_EXISTS', `A target named "${input.name}" exists already.`);
      const store = deps.open(input.url);
      if (store instanceof FileStore) {
        await store.initialise();
        if (!input.sameDisk && (await stat(store.root)).dev === (await stat(deps.dataDir)).dev)
          throw new KinvaultError(
            'FAILED_PRECONDITION',
            `${store.root} is on the same disk as the coordinator's data directory, so a copy there does not survive that disk. Is the USB disk mounted? Mount it and try again, or give --allow-same-disk if a second copy on this disk is what you want.`,
          );
      }
      // A Google Drive target is added before "target auth" gives it its authorisation.
      const tested: ProbeResult | { needsAuthorisation: true } = await probe(store).catch(
        (e: unknown) => {
          if (needsAuthorisation(e)) return { needsAuthorisation: true as const };
          throw e;
        },
      );
      const { sameDisk: _sameDisk, ...row } = input;
      if (!(await repo.add(row)))
        throw new KinvaultError('ALREADY_EXISTS', `A target named "${input.name}" exists already.`);
      await deps.changed();
      return tested;
    },

    async test(name: string): Promise<ProbeResult> {
      const t = await get(name);
      try {
        const r = await probe(deps.open(t.url));
        await repo.succeeded(name);
        if (t.fullSince) await repo.hasRoom(name); // tested after space was freed
        // Full or failing until now (space freed, disk mounted, access given again): the
        // copies waiting for it are tried at once.
        if (t.fullSince || t.failingSince) await deps.changed();
        return r;
      } catch (e) {
        await repo.failed(name, (e as Error).message);
        throw e;
      }
    },

    /** Changes the quota (null: none); packs waiting for room are placed again. */
    async setQuota(name: string, quotaBytes: number | null): Promise<TargetRow> {
      await get(name);
      await repo.setQuota(name, quotaBytes);
      await deps.changed();
      return get(name);
    },

    /** Removes a target (its objects stay where they are); refused while it holds the only copy. */
    async remove(name: string, force: boolean): Promise<{ unprotected: number }> {
      const t = await get(name);
      const only = await repo.onlyCopiesAt(name);
      if (only.length > 0 && !force)
        throw new KinvaultError(
          'FAILED_PRECONDITION',
          `Target "${name}" holds the only off-site copy of ${only.length} pack(s). Add another target first (they are copied there by themselves), or give --force: those packs are then on the NAS alone until copied elsewhere.`,
          { details: { packs: only.length } },
        );
      await repo.remove(name);
      await deps.changed();
      return { unprotected: only.length, ...(t.usedBytes ? { leftBytes: t.usedBytes } : {}) };
    },

    /** Every location of a pack, or of every pack a snapshot needs. */
    async where(ref: string) {
      if (!/^[0-9a-f]{64}$/.test(ref))
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `"${ref.slice(0, 80)}" is not a pack name or snapshot id: give all 64 hex digits ("kinvault snapshots" lists snapshots).`,
        );
      const id = Buffer.from(ref, 'hex');
      const ofSnapshot = await repo.packsOfSnapshot(id);
      const packs = ofSnapshot ?? [id];
      const rows = await repo.locationsOf(packs);
      if (!ofSnapshot && rows.length === 0)
        throw new KinvaultError('NOT_FOUND', `No pack or snapshot is named ${ref}.`);
      return {
        kind: ofSnapshot ? ('snapshot' as const) : ('pack' as const),
        packs: packs.map((p) => ({
          pack: p.toString('hex'),
          locations: rows
            .filter((r) => r.pack.equals(p))
            .map((r) => ({
              location: r.location,
              state: r.state,
              verifiedAt: r.verified_at?.toISOString() ?? null,
            })),
        })),
      };
    },
  };
}

export type TargetsService = ReturnType<typeof targetsService>;
