/**
 * SQL for uploads under way at targets (upload_sessions): the store adapter's opaque
 * state of an upload that has not completed, per target and key, so that a restarted
 * coordinator resumes it. States may be secrets (a Drive session URI): nothing here
 * returns them but to the adapter.
 */
import type { Db } from './db.js';
import type { UploadResume } from '@kinvault/stores';

export function uploadsRepository(sql: Db) {
  return {
    async load(target: string, key: string): Promise<string | null> {
      const [row] = await sql<{ state: string }[]>`
        select state from upload_sessions where target = ${target} and key = ${key}`;
      return row?.state ?? null;
    },

    async save(target: string, key: string, state: string): Promise<void> {
      await sql`
        insert into upload_sessions (target, key, state) values (${target}, ${key}, ${state})
        on conflict (target, key) do update set state = excluded.state, updated_at = now()`;
    },

    async clear(target: string, key: string): Promise<void> {
      await sql`delete from upload_sessions where target = ${target} and key = ${key}`;
    },

    /**
     * Forgets the uploads of packs that no longer need a copy at `target` (placed there or
     * at enough other targets meanwhile, or gone from the NAS): their uploads are then
     * swept away at the provider, which would keep (and bill) their parts for ever.
     */
    async dropSettled(target: string, copies: number): Promise<number> {
      const rows = await sql`
        delete from upload_sessions s
        where s.target = ${target} and s.key like 'packs/%' and not exists (
          select 1 from packs p
          where p.name = decode(split_part(s.key, '/', 3), 'hex')
            and exists (select 1 from pack_locations n where n.pack = p.name
                        and n.location = 'nas' and n.state = 'ok')
            and not exists (select 1 from pack_locations l where l.pack = p.name
                            and l.location = 'staging:' || s.target and l.state = 'ok')
            and (select count(*) from pack_locations l where l.pack = p.name and l.state = 'ok'
                 and (l.location like 'staging:%' or l.location like 'volume:%')) < ${copies})
        returning s.key`;
      return rows.length;
    },

    /** Every state saved for a target (for its sweep: the uploads to keep). */
    async statesAt(target: string): Promise<string[]> {
      const rows = await sql<{ state: string }[]>`
        select state from upload_sessions where target = ${target}`;
      return rows.map((r) => r.state);
    },
  };
}

export type UploadsRepository = ReturnType<typeof uploadsRepository>;

/** The UploadResume a put of `key` at `target` keeps its state in. */
export function resumeAt(repo: UploadsRepository, target: string, key: string): UploadResume {
  return {
    load: () => repo.load(target, key),
    save: (state) => repo.save(target, key, state),
    clear: () => repo.clear(target, key),
  };
}
