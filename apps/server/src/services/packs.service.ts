/**
 * Packs: declarations, verification of finished uploads, dedup queries. The
 * coordinator cannot read packs; it checks what it can without keys (size, SHA-256
 * name) and records what the uploading device declared.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { KinvaultError } from '@kinvault/protocol';
import { MAX_PACK_BYTES, MAX_PACK_ENTRIES } from '@kinvault/format';
import type { PacksRepository } from '../repositories/packs.repository.js';
import type { PackStore } from '../stores/pack.store.js';
import type { EventBus } from './events.js';

export const HEX_ID = /^[0-9a-f]{64}$/;

export interface Device {
  id: string;
  name: string;
}

export interface Declaration {
  name: string;
  size: number;
  blobs: { type: 1 | 2; id: string }[];
}

function hexBuf(hex: string, what: string): Buffer {
  if (!HEX_ID.test(hex))
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${what} must be 64 lowercase hex digits, got "${hex.slice(0, 80)}".`,
    );
  return Buffer.from(hex, 'hex');
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function packsService(repo: PacksRepository, store: PackStore, events?: EventBus) {
  return {
    /** Records what a pack will hold. Returns false if the pack is already stored. */
    async declare(device: Device, d: Declaration): Promise<{ needed: boolean }> {
      const name = hexBuf(d.name, 'A pack name');
      if (!Number.isSafeInteger(d.size) || d.size < 16 || d.size > MAX_PACK_BYTES) {
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `A pack of ${d.size} bytes is impossible (16 bytes to 4 GiB).`,
        );
      }
      if (d.blobs.length > MAX_PACK_ENTRIES)
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `A pack holds at most ${MAX_PACK_ENTRIES} blobs.`,
        );
      if (await repo.exists(name)) return { needed: false };
      await repo.declare(
        name,
        device.id,
        d.size,
        d.blobs.map((b) => ({ type: b.type, id: hexBuf(b.id, 'A blob id') })),
      );
      return { needed: true };
    },

    /**
     * A tus upload finished: check it against its declaration, size and name, move it
     * into the store and register it. On any mismatch the upload is deleted and
     * nothing is registered.
     */
    async finishUpload(
      device: Device,
      file: string,
      declaredName: string,
      /**
       * The SHA-256 (hex) of exactly `received.bytes` bytes, hashed while they arrived
       * (the file is read back only when this does not cover the whole file).
       */
      received?: { sha256: string; bytes: number },
    ): Promise<{ blobs: number }> {
      const name = hexBuf(declaredName, 'The pack name in the upload');
      const reject = async (
        why: string,
        code: 'PACK_HASH_MISMATCH' | 'INVALID_ARGUMENT' = 'PACK_HASH_MISMATCH',
      ) => {
        await rm(file, { force: true });
        return new KinvaultError(
          code,
          `Pack ${declaredName} was refused: ${why}. Nothing was stored; the agent will upload it again.`,
        );
      };
      const declaration = await repo.declaration(name);
      if (!declaration || declaration.deviceId !== device.id)
        throw await reject('it was not declared by this device first', 'INVALID_ARGUMENT');
      const size = (await stat(file)).size;
      if (size !== declaration.size)
        throw await reject(`it has ${size} bytes, ${declaration.size} were declared`);
      const actual = received?.bytes === size ? received.sha256 : await sha256File(file);
      if (actual !== declaredName) throw await reject(`its SHA-256 is ${actual}`);
      await store.adopt(file, declaredName);
      const committed = await repo.commit(name, size, device.id);
      events?.publish({
        type: 'pack.stored',
        pack: declaredName,
        size,
        device: device.name,
        at: new Date().toISOString(),
      });
      return committed;
    },

    /** Which of these blob ids (hex) are in committed packs, with the pack of each. */
    async have(ids: readonly string[]): Promise<{ id: string; pack: string }[]> {
      const found = await repo.have(ids.map((id) => hexBuf(id, 'A blob id')));
      return found.map((r) => ({ id: r.id.toString('hex'), pack: r.pack.toString('hex') }));
    },

    /** The packs (hex) that hold these blob ids, and how many of the ids are stored. */
    async packsOf(ids: readonly string[]): Promise<{ packs: string[]; found: number }> {
      const r = await repo.packsOf(ids.map((id) => hexBuf(id, 'A blob id')));
      return { packs: r.packs.map((p) => p.toString('hex')), found: r.found };
    },

    async isCommitted(name: string): Promise<boolean> {
      return repo.exists(hexBuf(name, 'A pack name'));
    },

    async missing(names: readonly string[]): Promise<string[]> {
      const have = new Set(
        (await repo.committed(names.map((n) => hexBuf(n, 'A pack name')))).map((b) =>
          b.toString('hex'),
        ),
      );
      return names.filter((n) => !have.has(n));
    },

    totals: () => repo.totals(),
  };
}

export type PacksService = ReturnType<typeof packsService>;
