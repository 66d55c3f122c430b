/**
 * Packs: declarations, verification of incoming packs, dedup queries. The
 * coordinator cannot read packs; it checks what it can without keys (size, SHA-256
 * name) and records what the uploading device declared.
 */
import type { Readable } from 'node:stream';
import type { TransactionSql } from 'postgres';
import { KinvaultError } from '@kinvault/protocol';
import { MAX_PACK_BYTES, MAX_PACK_ENTRIES } from '@kinvault/format';
import type { CopyState, PacksRepository } from '../repositories/packs.repository.js';
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

/**
 * A pack that has arrived at an edge (a finished upload), known only by what its sender
 * claims until the packs service has checked it. The edge builds it, and drops whatever
 * is left of it once `receive` has returned or thrown.
 */
export interface IncomingPack {
  /** The name its sender gave it, meant to be its SHA-256 (lowercase hex): unchecked. */
  readonly declaredName: string;
  /** How many bytes arrived. */
  size(): Promise<number>;
  /**
   * The SHA-256 (hex) of every byte that arrived. An edge that hashed them on their way
   * in answers without reading them again.
   */
  sha256(): Promise<string>;
  /**
   * Moves the bytes into the pack store as `name`, durably (PackStore.adopt: a rename
   * when the store is on the same file system, so the bytes are not copied). Called at
   * most once; afterwards the incoming pack holds nothing.
   */
  moveInto(store: Pick<PackStore, 'adopt'>, name: string): Promise<void>;
}

export interface DamageReport {
  pack: string;
  /** The blobs that failed at the agent (AEAD or id check); empty when the pack was unreadable. */
  blobs: string[];
  reason: 'missing' | 'unreadable' | 'corrupt';
}

/** A pack's NAS copy is re-hashed for a report at most this often. */
const REVERIFY_AFTER_MS = 60_000;
/** And one device's reports start at most this many re-hashes per window. */
const REPORTS_PER_WINDOW = 100;
const REPORT_WINDOW_MS = 10 * 60_000;

export interface PackHooks {
  /** Runs in the transaction that commits a pack (hex name): enqueue its copies there. */
  inCommit?(tx: TransactionSql, name: string): Promise<unknown>;
}

export function packsService(
  repo: PacksRepository,
  store: PackStore,
  events?: EventBus,
  now: () => Date = () => new Date(),
  hooks: PackHooks = {},
) {
  /** When a report last made this process hash a pack, and what it found (or will). */
  const reportChecks = new Map<string, { at: number; found: Promise<{ state: CopyState }> }>();
  /** Re-hashes started by each device's reports in the current window. */
  const reportBudget = new Map<string, { since: number; used: number }>();

  /**
   * Hashes a reported pack again, at most once a minute per pack (reports that arrive
   * meanwhile share the answer) and at most REPORTS_PER_WINDOW times per device per
   * window; beyond that the recorded state is answered without hashing.
   */
  async function hashForReport(device: Device, name: string): Promise<{ state: CopyState }> {
    const at = now().getTime();
    const last = reportChecks.get(name);
    if (last && at - last.at < REVERIFY_AFTER_MS) return last.found;
    let b = reportBudget.get(device.id);
    if (!b || at - b.since >= REPORT_WINDOW_MS)
      reportBudget.set(device.id, (b = { since: at, used: 0 }));
    if (b.used >= REPORTS_PER_WINDOW)
      return { state: (await repo.copyState(hexBuf(name, 'A pack name'), 'nas')) ?? 'ok' };
    b.used++;
    const found = verifyNas(name);
    reportChecks.set(name, { at, found });
    return found;
  }
  const publishCopy = (name: string, state: CopyState, detail: string | null) => {
    if (state !== 'ok')
      events?.publish({
        type: `pack.${state}`,
        pack: name,
        location: 'nas',
        detail: detail ?? '',
        at: now().toISOString(),
      });
  };

  /** Hashes the NAS copy and records what was found (a file that cannot be read is damaged). */
  async function verifyNas(name: string): Promise<{ state: CopyState; detail: string | null }> {
    const bytes = hexBuf(name, 'A pack name');
    let found: { state: CopyState; detail: string | null };
    try {
      const actual = await store.sha256(name);
      found =
        actual === null
          ? { state: 'missing', detail: 'the file is not in the pack store' }
          : actual !== name
            ? { state: 'damaged', detail: `its bytes hash to ${actual}` }
            : { state: 'ok', detail: null };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'an error';
      found = { state: 'damaged', detail: `the file cannot be read (${code})` };
    }
    await repo.setCopyState(bytes, 'nas', found.state, found.detail);
    publishCopy(name, found.state, found.detail);
    return found;
  }

  /**
   * Drops answers whose pack has vanished from the NAS store (a stat per pack), so that
   * dedup never counts a blob that is not there; such packs are recorded as missing.
   * Returns the packs found missing.
   */
  async function checkPresent(packs: Iterable<Buffer>): Promise<Buffer[]> {
    const gone: Buffer[] = [];
    for (const p of new Map([...packs].map((b) => [b.toString('hex'), b])).values()) {
      const name = p.toString('hex');
      // Only a file that is not there counts; one that cannot be read now is left to a check.
      if ((await store.size(name).catch(() => 0)) !== null) continue;
      gone.push(p);
      await repo.setCopyState(p, 'nas', 'missing', 'the file is not in the pack store');
      publishCopy(name, 'missing', 'the file is not in the pack store');
    }
    return gone;
  }

  /** `repo.have`, after making sure every pack it names is still on the NAS. */
  async function haveChecked(ids: Buffer[]): Promise<{ id: Buffer; pack: Buffer }[]> {
    const found = await repo.have(ids);
    if ((await checkPresent(found.map((r) => r.pack))).length === 0) return found;
    return repo.have(ids); // another copy of those blobs may still be available
  }

  return {
    /** Records what a pack will hold. `needed` is false if the pack is already available. */
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
      if (await repo.available(name)) return { needed: false };
      await repo.declare(
        name,
        device.id,
        d.size,
        d.blobs.map((b) => ({ type: b.type, id: hexBuf(b.id, 'A blob id') })),
      );
      return { needed: true };
    },

    /**
     * A pack arrived: check it against its declaration, size and name, move it into the
     * store and register it. On any mismatch it is refused (a KinvaultError), and nothing
     * is registered or moved.
     */
    async receive(device: Device, pack: IncomingPack): Promise<{ blobs: number }> {
      const declaredName = pack.declaredName;
      const name = hexBuf(declaredName, 'The pack name in the upload');
      const reject = (
        why: string,
        code: 'PACK_HASH_MISMATCH' | 'INVALID_ARGUMENT' = 'PACK_HASH_MISMATCH',
      ) =>
        new KinvaultError(
          code,
          `Pack ${declaredName} was refused: ${why}. Nothing was stored; the agent will upload it again.`,
        );
      const declaration = await repo.declaration(name, device.id);
      if (!declaration)
        throw reject('it was not declared by this device first', 'INVALID_ARGUMENT');
      const size = await pack.size();
      if (size !== declaration.size)
        throw reject(`it has ${size} bytes, ${declaration.size} were declared`);
      const actual = await pack.sha256();
      if (actual !== declaredName) throw reject(`its SHA-256 is ${actual}`);
      await pack.moveInto(store, declaredName);
      const committed = await repo.commit(name, size, device.id, (tx) =>
        Promise.resolve(hooks.inCommit?.(tx, declaredName)),
      );
      events?.publish({
        type: 'pack.stored',
        pack: declaredName,
        size,
        device: device.name,
        at: now().toISOString(),
      });
      return committed;
    },

    /** Which of these blob ids (hex) are in available packs, with the pack of each. */
    async have(ids: readonly string[]): Promise<{ id: string; pack: string }[]> {
      const found = await haveChecked(ids.map((id) => hexBuf(id, 'A blob id')));
      return found.map((r) => ({ id: r.id.toString('hex'), pack: r.pack.toString('hex') }));
    },

    /** The available packs (hex) that hold these blob ids, and the ids stored in none. */
    async packsOf(ids: readonly string[]): Promise<{ packs: string[]; missing: string[] }> {
      const wanted = ids.map((id) => hexBuf(id, 'A blob id'));
      let r = await repo.packsOf(wanted);
      if ((await checkPresent(r.packs)).length > 0) r = await repo.packsOf(wanted);
      return {
        packs: r.packs.map((p) => p.toString('hex')),
        missing: r.missing.map((m) => m.toString('hex')),
      };
    },

    /**
     * Where to read a pack from: its NAS copy, also when it is damaged (the agent checks
     * every blob it reads, and a damaged pack's other blobs are still good). Null when the
     * pack is not registered or its file is gone (then recorded as missing).
     */
    async source(
      name: string,
    ): Promise<{ size: number; read: (start?: number, end?: number) => Readable } | null> {
      const bytes = hexBuf(name, 'A pack name');
      if (!(await repo.exists(bytes))) return null;
      const size = await store.size(name);
      if (size === null) {
        await checkPresent([bytes]);
        return null;
      }
      return { size, read: (start, end) => store.read(name, start, end) };
    },

    /**
     * An agent could not use a pack (unreadable, or a blob failed its checks). The NAS
     * copy is hashed again (at most once a minute per pack) and its state recorded; the
     * answer says what the coordinator found. A device cannot make a good pack look bad:
     * only the hash decides.
     */
    async reportDamage(device: Device, r: DamageReport): Promise<{ state: CopyState }> {
      const bytes = hexBuf(r.pack, 'A pack name');
      for (const b of r.blobs) hexBuf(b, 'A blob id');
      if (!(await repo.exists(bytes)))
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `There is no pack ${r.pack} on this coordinator.`,
        );
      const found = await hashForReport(device, r.pack);
      if (found.state === 'ok' && r.reason === 'corrupt')
        events?.publish({
          type: 'pack.suspect',
          pack: r.pack,
          device: device.name,
          detail: `${r.blobs.length} blob(s) failed their checks on ${device.name}, but the pack hashes to its name: it was written so`,
          at: now().toISOString(),
        });
      return { state: found.state };
    },

    verifyNas,

    /**
     * Drops from the index the packs whose every copy is missing and whose every blob
     * was stored again in another pack. No file is deleted (there is none left).
     */
    async retireLost(): Promise<string[]> {
      const names = await repo.lostAndReplaced();
      await repo.retire(names);
      return names.map((b) => b.toString('hex'));
    },

    /**
     * Sets aside damaged packs whose every blob a later backup stored again (the NAS
     * owner's choice, `kinvaultd check --drop-replaced`): each file moves to the
     * quarantine folder, to be deleted by hand, and the pack leaves the index.
     */
    async dropReplaced(): Promise<string[]> {
      const names = (await repo.problems())
        .filter((p) => p.state === 'damaged' && p.replaced)
        .map((p) => p.name);
      for (const name of names) await store.quarantine(name.toString('hex'));
      await repo.retire(names);
      return names.map((b) => b.toString('hex'));
    },

    /** For blob ids in no available pack: a pack that held each, and what became of it. */
    async lost(ids: readonly string[]) {
      const rows = await repo.lost(ids.map((id) => hexBuf(id, 'A blob id')));
      return rows.map((r) => ({
        id: r.id.toString('hex'),
        pack: r.pack.toString('hex'),
        state: r.state,
      }));
    },

    /** Registered packs in name order, a page at a time. */
    page: (after: string | null, limit: number) =>
      repo
        .page(after === null ? null : hexBuf(after, 'A pack name'), limit)
        .then((rows) => rows.map((r) => ({ name: r.name.toString('hex'), size: r.size }))),

    /** Damaged and missing copies, oldest first. */
    async problems() {
      return (await repo.problems()).map((p) => ({
        pack: p.name.toString('hex'),
        size: p.size,
        location: p.location,
        state: p.state,
        detail: p.detail,
        since: p.changedAt.toISOString(),
        snapshots: p.snapshots,
        replaced: p.replaced,
      }));
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
