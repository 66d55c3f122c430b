/** kinvaultd init: data directory, configuration, TLS certificate, database. */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname, networkInterfaces, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isKinvaultError, KinvaultError } from '@kinvault/protocol';
import { dataPaths, saveConfig, type Config } from '../config.js';
import {
  checkTraversable,
  initEmbedded,
  openDatabase,
  stopOrphanedServer,
} from '../db/database.js';
import { killProcessesOn } from '../db/embedded-server.js';
import { migrate } from '../db/migrate.js';
import { createTls } from '../tls.js';

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `--listen "${value}" is not HOST:PORT (for example 0.0.0.0:7443 or 192.168.1.10:7443).`,
    );
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

/**
 * What init makes inside the data directory, and removes again when it fails (or when a
 * later init finds that an earlier one did not finish). config.json is written last.
 */
const MADE = ['.init-incomplete', 'config.json.tmp', 'tls', 'postgres', 'packs', 'uploads'];
const LOCKS = ['postgres.owner', 'postgres.lock'];

/** What is in the data directory now: init goes on only with "missing", "empty" or "unfinished". */
async function inspect(dataDir: string): Promise<'missing' | 'empty' | 'unfinished'> {
  const entries = await readdir(dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw new KinvaultError('INVALID_ARGUMENT', `Cannot read ${dataDir}: ${error.code}.`);
  });
  if (entries === null) return 'missing';
  if (entries.includes('config.json')) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `${dataDir} is already initialised. Start it with "kinvaultd start --data-dir ${dataDir}".`,
    );
  }
  if (entries.length === 0) return 'empty';
  const ours = [...MADE, ...LOCKS];
  if (entries.includes('.init-incomplete') && entries.every((e) => ours.includes(e)))
    return 'unfinished';
  throw new KinvaultError(
    'INVALID_ARGUMENT',
    `${dataDir} is not empty. Give an empty or new directory.`,
  );
}

/** Removes what init makes, stopping a database server an interrupted init left running. */
async function removeMade(dataDir: string): Promise<void> {
  await stopOrphanedServer(dataDir, (line) => console.log(line));
  // An init killed while initdb ran leaves initdb (or a server starting) writing there.
  await killProcessesOn(join(dataDir, 'postgres'));
  for (const name of [...MADE, ...LOCKS].reverse())
    await rm(join(dataDir, name), { recursive: true, force: true, maxRetries: 5 });
}

/** As root the embedded database runs as "postgres", which must be able to enter it. */
async function makeDataDir(dataDir: string, embedded: boolean): Promise<void> {
  const root = userInfo().uid === 0;
  if (embedded) await checkTraversable(dirname(dataDir));
  await mkdir(dataDir, { recursive: true, mode: root ? 0o711 : 0o700 });
  const mode = (await stat(dataDir)).mode & 0o7777;
  if (root && embedded && (mode & 0o001) === 0) await chmod(dataDir, mode | 0o711);
}

export async function runInit(opts: {
  dataDir: string;
  listen: string;
  publicUrl?: string;
  databaseUrl?: string;
}): Promise<void> {
  const dataDir = resolve(opts.dataDir);
  const listen = parseListen(opts.listen);
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  const advertised = wildcard ? (lanAddress() ?? hostname()) : listen.host;
  const publicUrl =
    opts.publicUrl ??
    `https://${advertised.includes(':') ? `[${advertised}]` : advertised}:${listen.port}`;
  if (!publicUrl.startsWith('https://')) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `--public-url must start with https:// (got "${publicUrl}").`,
    );
  }
  const found = await inspect(dataDir);
  if (found === 'unfinished') {
    console.log(
      `An earlier "kinvaultd init" did not finish in ${dataDir}; removing what it left …`,
    );
    await removeMade(dataDir);
  }
  await makeDataDir(dataDir, !opts.databaseUrl);
  const paths = dataPaths(dataDir);
  // Until config.json exists, this marks the directory as ours to clean up.
  await writeFile(paths.initMarker, `kinvaultd init started ${new Date().toISOString()}\n`);
  try {
    const fingerprint = await initialise(dataDir, {
      listen,
      publicUrl,
      wildcard,
      databaseUrl: opts.databaseUrl,
    });
    await rm(paths.initMarker, { force: true });
    console.log(`Kinvault coordinator initialised in ${dataDir}
  listens on        ${listen.host}:${listen.port}
  agents connect to ${publicUrl}
  certificate       ${fingerprint} (SHA-256, pinned by agents)
Next:
  kinvaultd start --data-dir ${dataDir}
  kinvaultd device add anna-laptop --data-dir ${dataDir}    # prints a code to paste into "kinvault setup"`);
  } catch (error) {
    const cleaned = await removeMade(dataDir).then(
      async () => {
        if (found === 'missing') await rmdir(dataDir).catch(() => {});
        return true;
      },
      () => false,
    );
    const why = error instanceof Error ? error.message : String(error);
    throw new KinvaultError(
      isKinvaultError(error) ? error.code : 'INTERNAL',
      `"kinvaultd init" did not finish: ${why} ` +
        (cleaned
          ? `Nothing was kept in ${dataDir}. Fix the cause, then run the same command again.`
          : `Run the same command again once the cause is fixed: it removes what is left first.`),
      { cause: error },
    );
  }
}

/** TLS certificate, folders, database; config.json last. Returns the fingerprint. */
async function initialise(
  dataDir: string,
  o: {
    listen: { host: string; port: number };
    publicUrl: string;
    wildcard: boolean;
    databaseUrl?: string;
  },
): Promise<string> {
  const config: Config = {
    version: 1,
    listen: o.listen,
    publicUrl: o.publicUrl,
    database: o.databaseUrl
      ? { kind: 'url', url: o.databaseUrl }
      : {
          kind: 'embedded',
          port: await freePort(),
          password: randomBytes(24).toString('base64url'),
        },
    enrollmentTtlMinutes: 24 * 60,
    uploadExpiryHours: 24,
    minOffsiteCopies: 1,
  };
  const paths = dataPaths(dataDir);
  const hosts = [
    ...new Set([
      new URL(o.publicUrl).hostname.replace(/^\[|\]$/g, ''),
      hostname(),
      'localhost',
      '127.0.0.1',
      ...(o.wildcard ? [] : [o.listen.host]),
    ]),
  ];
  const tls = await createTls(paths.tlsKey, paths.tlsCert, hosts);
  await mkdir(paths.packs, { recursive: true, mode: 0o700 });
  await mkdir(paths.uploads, { recursive: true, mode: 0o700 });
  console.log(
    `Creating the database${config.database.kind === 'embedded' ? ' (embedded PostgreSQL)' : ''} …`,
  );
  await initEmbedded(dataDir, config);
  const db = await openDatabase(dataDir, config);
  try {
    await migrate(db.sql);
  } finally {
    await db.close();
  }
  await saveConfig(dataDir, config);
  return tls.fingerprint;
}
