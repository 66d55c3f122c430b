/** SQL for the household: repository id, box and signing public keys, the two key files. */
import { atomically, type Db } from './db.js';

export interface HouseholdRow {
  repositoryId: Buffer;
  boxPublicKey: Buffer;
  /** Null for a household created before key files could be replaced (migration 5). */
  signPublicKey: Buffer | null;
  passphraseKeyFile: Buffer;
  recoveryKeyFile: Buffer;
  /** How many times each key file was changed (signed replacements and undos). */
  passphraseGeneration: number;
  recoveryGeneration: number;
}

export interface KeyFileVersion {
  id: string;
  kind: 1 | 2;
  bytes: Buffer;
  replacedAt: Date;
  replacedBy: string;
}

export function householdRepository(sql: Db) {
  return {
    async get(): Promise<HouseholdRow | null> {
      const [h] = await sql<
        { repository_id: Buffer; box_public_key: Buffer; sign_public_key: Buffer | null }[]
      >`select * from household`;
      if (!h) return null;
      const files = await sql<
        { kind: number; bytes: Buffer; generation: string }[]
      >`select kind, bytes, generation from key_files`;
      const file = (kind: number) => files.find((f) => f.kind === kind);
      return {
        repositoryId: h.repository_id,
        boxPublicKey: h.box_public_key,
        signPublicKey: h.sign_public_key,
        passphraseKeyFile: file(1)?.bytes ?? Buffer.alloc(0),
        recoveryKeyFile: file(2)?.bytes ?? Buffer.alloc(0),
        passphraseGeneration: Number(file(1)?.generation ?? 0),
        recoveryGeneration: Number(file(2)?.generation ?? 0),
      };
    },

    /** Creates the household once; false if it already exists. */
    async create(
      h: Omit<HouseholdRow, 'passphraseGeneration' | 'recoveryGeneration'>,
    ): Promise<boolean> {
      return atomically(sql, async (tx) => {
        const inserted = await tx`
          insert into household (id, repository_id, box_public_key, sign_public_key)
          values (1, ${h.repositoryId}, ${h.boxPublicKey}, ${h.signPublicKey})
          on conflict (id) do nothing returning id`;
        if (inserted.length === 0) return false;
        await tx`insert into key_files (kind, bytes) values (1, ${h.passphraseKeyFile}), (2, ${h.recoveryKeyFile})`;
        return true;
      });
    },

    /**
     * Replaces a key file if it still is `expected` at `generation` (compare and set),
     * keeping the old one in the history and counting the change. False when it changed
     * meanwhile.
     */
    async replaceKeyFile(
      kind: 1 | 2,
      expected: { bytes: Buffer; generation: number },
      next: Buffer,
      by: string,
      signature: Buffer | null,
    ): Promise<boolean> {
      return atomically(sql, async (tx) => {
        const [current] = await tx<{ bytes: Buffer; generation: string }[]>`
          select bytes, generation from key_files where kind = ${kind} for update`;
        if (
          !current ||
          !current.bytes.equals(expected.bytes) ||
          Number(current.generation) !== expected.generation
        )
          return false;
        await tx`insert into key_file_history (kind, bytes, replaced_by, signature)
                 values (${kind}, ${current.bytes}, ${by}, ${signature})`;
        await tx`update key_files set bytes = ${next}, generation = generation + 1,
                 updated_at = now() where kind = ${kind}`;
        return true;
      });
    },

    /** The signature of the last change of this key file (null: none, or an undo). */
    async lastSignature(kind: 1 | 2): Promise<Buffer | null> {
      const [r] = await sql<{ signature: Buffer | null }[]>`
        select signature from key_file_history where kind = ${kind} order by id desc limit 1`;
      return r?.signature ?? null;
    },

    /** Replaced key files, newest first (or only the one with this id). */
    async history(id?: string): Promise<KeyFileVersion[]> {
      const rows = await sql<
        { id: string; kind: 1 | 2; bytes: Buffer; replaced_at: Date; replaced_by: string }[]
      >`select id, kind, bytes, replaced_at, replaced_by from key_file_history
        where ${id === undefined ? sql`true` : sql`id = ${id}`} order by id desc`;
      return rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        bytes: r.bytes,
        replacedAt: r.replaced_at,
        replacedBy: r.replaced_by,
      }));
    },
  };
}

export type HouseholdRepository = ReturnType<typeof householdRepository>;
