/** SQL for the household: repository id, box and signing public keys, the two key files. */
import type { Sql } from 'postgres';

export interface HouseholdRow {
  repositoryId: Buffer;
  boxPublicKey: Buffer;
  /** Null for a household created before key files could be replaced (migration 5). */
  signPublicKey: Buffer | null;
  passphraseKeyFile: Buffer;
  recoveryKeyFile: Buffer;
}

export interface KeyFileVersion {
  id: string;
  kind: 1 | 2;
  bytes: Buffer;
  replacedAt: Date;
  replacedBy: string;
}

export function householdRepository(sql: Sql) {
  return {
    async get(): Promise<HouseholdRow | null> {
      const [h] = await sql<
        { repository_id: Buffer; box_public_key: Buffer; sign_public_key: Buffer | null }[]
      >`select * from household`;
      if (!h) return null;
      const files = await sql<{ kind: number; bytes: Buffer }[]>`select kind, bytes from key_files`;
      const file = (kind: number) => files.find((f) => f.kind === kind)?.bytes ?? Buffer.alloc(0);
      return {
        repositoryId: h.repository_id,
        boxPublicKey: h.box_public_key,
        signPublicKey: h.sign_public_key,
        passphraseKeyFile: file(1),
        recoveryKeyFile: file(2),
      };
    },

    /** Creates the household once; false if it already exists. */
    async create(h: HouseholdRow): Promise<boolean> {
      return sql.begin(async (tx) => {
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
     * Replaces a key file if it still is `expected` (compare and set), keeping the old
     * one in the history. False when it changed meanwhile.
     */
    async replaceKeyFile(
      kind: 1 | 2,
      expected: Buffer,
      next: Buffer,
      by: string,
      signature: Buffer | null,
    ): Promise<boolean> {
      return sql.begin(async (tx) => {
        const [current] = await tx<{ bytes: Buffer }[]>`
          select bytes from key_files where kind = ${kind} for update`;
        if (!current || !current.bytes.equals(expected)) return false;
        await tx`insert into key_file_history (kind, bytes, replaced_by, signature)
                 values (${kind}, ${current.bytes}, ${by}, ${signature})`;
        await tx`update key_files set bytes = ${next}, updated_at = now() where kind = ${kind}`;
        return true;
      });
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
