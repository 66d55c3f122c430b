/** SQL for the household: repository id, box public key, the two key files. */
import type { Sql } from 'postgres';

export interface HouseholdRow {
  repositoryId: Buffer;
  boxPublicKey: Buffer;
  passphraseKeyFile: Buffer;
  recoveryKeyFile: Buffer;
}

export function householdRepository(sql: Sql) {
  return {
    async get(): Promise<HouseholdRow | null> {
      const [h] = await sql<
        { repository_id: Buffer; box_public_key: Buffer }[]
      >`select * from household`;
      if (!h) return null;
      const files = await sql<{ kind: number; bytes: Buffer }[]>`select kind, bytes from key_files`;
      const file = (kind: number) => files.find((f) => f.kind === kind)?.bytes ?? Buffer.alloc(0);
      return {
        repositoryId: h.repository_id,
        boxPublicKey: h.box_public_key,
        passphraseKeyFile: file(1),
        recoveryKeyFile: file(2),
      };
    },

    /** Creates the household once; false if it already exists. */
    async create(h: HouseholdRow): Promise<boolean> {
      return sql.begin(async (tx) => {
        const inserted = await tx`insert into household (id, repository_id, box_public_key)
          values (1, ${h.repositoryId}, ${h.boxPublicKey}) on conflict (id) do nothing returning id`;
        if (inserted.length === 0) return false;
        await tx`insert into key_files (kind, bytes) values (1, ${h.passphraseKeyFile}), (2, ${h.recoveryKeyFile})`;
        return true;
      });
    },

    async replaceKeyFile(kind: 1 | 2, bytes: Buffer): Promise<void> {
      await sql`update key_files set bytes = ${bytes}, updated_at = now() where kind = ${kind}`;
    },
  };
}

export type HouseholdRepository = ReturnType<typeof householdRepository>;
