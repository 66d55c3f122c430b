/** SQL that `kinvaultd cost` needs beside the targets' and volumes' own (design §22). */
import type { Db } from './db.js';

export function costRepository(sql: Db) {
  return {
    /** The packs with a copy in good state on the NAS, and their bytes. */
    async nas(): Promise<{ packs: number; bytes: number }> {
      const [r] = await sql<{ packs: string; bytes: string }[]>`
        select count(*) as packs, coalesce(sum(p.size), 0) as bytes
        from pack_locations l join packs p on p.name = l.pack
        where l.location = 'nas' and l.state = 'ok'`;
      return { packs: Number(r?.packs ?? 0), bytes: Number(r?.bytes ?? 0) };
    },
  };
}

export type CostRepository = ReturnType<typeof costRepository>;
