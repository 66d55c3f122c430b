/** Snapshot manifests: stored sealed; committed only when all their packs are. */
import { createHash } from 'node:crypto';
import { KinvaultError } from '@kinvault/protocol';
import { MAX_SNAPSHOT_BYTES } from '@kinvault/format';
import type { SnapshotsRepository } from '../repositories/snapshots.repository.js';
import { HEX_ID, type Device } from './packs.service.js';
import type { EventBus } from './events.js';

export interface SnapshotHooks {
  /** Runs once a snapshot is committed, before `commit` resolves; its failure is only reported. */
  afterCommit?(id: string, sealed: Uint8Array): Promise<void>;
  onHookError?(error: unknown): void;
}

export function snapshotsService(
  repo: SnapshotsRepository,
  events?: EventBus,
  hooks: SnapshotHooks = {},
) {
  return {
    async commit(
      device: Device,
      input: {
        id: string;
        sealed: Uint8Array;
        packs: string[];
        totals?: { files: number; bytes: number };
      },
    ): Promise<void> {
      if (!HEX_ID.test(input.id))
        throw new KinvaultError('INVALID_ARGUMENT', 'A snapshot id is 64 lowercase hex digits.');
      if (input.sealed.byteLength < 40 || input.sealed.byteLength > MAX_SNAPSHOT_BYTES) {
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `A sealed snapshot of ${input.sealed.byteLength} bytes is impossible.`,
        );
      }
      const actual = createHash('sha256').update(input.sealed).digest('hex');
      if (actual !== input.id)
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `The snapshot's bytes hash to ${actual}, not to its id ${input.id}.`,
        );
      for (const p of input.packs)
        if (!HEX_ID.test(p))
          throw new KinvaultError('INVALID_ARGUMENT', `"${p.slice(0, 80)}" is not a pack name.`);
      const missing = await repo.commit(
        Buffer.from(input.id, 'hex'),
        device.id,
        Buffer.from(input.sealed),
        [...new Set(input.packs)].map((p) => Buffer.from(p, 'hex')),
        input.totals ?? { files: 0, bytes: 0 },
      );
      if (missing.length > 0) {
        throw new KinvaultError(
          'CONFLICT',
          `The snapshot depends on ${missing.length} pack(s) the coordinator does not have in good state (first: ${missing[0]!.toString('hex')}). Run the backup again: it stores what is missing anew.`,
          { details: { missing: missing.map((m) => m.toString('hex')) } },
        );
      }
      await hooks
        .afterCommit?.(input.id, input.sealed)
        .catch((e: unknown) => hooks.onHookError?.(e));
      events?.publish({
        type: 'snapshot.committed',
        snapshot: input.id,
        device: device.name,
        at: new Date().toISOString(),
      });
    },
    async list() {
      return (await repo.list()).map((r) => ({
        id: r.id.toString('hex'),
        device: r.device,
        createdAt: r.created_at.toISOString(),
        size: r.size,
      }));
    },
    async get(id: string): Promise<Uint8Array> {
      if (!HEX_ID.test(id))
        throw new KinvaultError('INVALID_ARGUMENT', 'A snapshot id is 64 lowercase hex digits.');
      const sealed = await repo.get(Buffer.from(id, 'hex'));
      if (!sealed)
        throw new KinvaultError(
          'NOT_FOUND',
          `There is no snapshot ${id}. "kinvault snapshots" lists them.`,
        );
      return sealed;
    },
    perDevice: () => repo.perDevice(),
  };
}

export type SnapshotsService = ReturnType<typeof snapshotsService>;
