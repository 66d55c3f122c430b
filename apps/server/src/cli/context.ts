/** What every command that touches the database needs, built from the data directory. */
import { resolve } from 'node:path';
import { loadConfig, dataPaths, type Config } from '../config.js';
import { openDatabase, type Database, type OpenOptions } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { devicesRepository } from '../repositories/devices.repository.js';
import { devicesService, type DevicesService } from '../services/devices.service.js';
import { householdRepository } from '../repositories/household.repository.js';
import { packsRepository } from '../repositories/packs.repository.js';
import { snapshotsRepository } from '../repositories/snapshots.repository.js';
import { householdService } from '../services/household.service.js';
import { packsService } from '../services/packs.service.js';
import { snapshotsService } from '../services/snapshots.service.js';
import { recoveryRepository } from '../repositories/recovery.repository.js';
import {
  recoveryObjectsService,
  type RecoveryObjectsService,
} from '../services/recovery-objects.service.js';
import { FileStore } from '@kinvault/stores';
import { hostname } from 'node:os';
import { jobQueue, type JobQueue } from '../queue/queue.js';
import { checkService, type CheckService } from '../services/check.service.js';
import { packStore, type PackStore } from '../stores/pack.store.js';
import type { Services } from '../http/trpc.js';
import { EventBus } from '../services/events.js';
import { loadTls, type TlsMaterial } from '../tls.js';

export interface Context {
  dataDir: string;
  config: Config;
  tls: TlsMaterial;
  db: Database;
  devices: DevicesService;
  services: Services;
  checks: CheckService;
  packStore: PackStore;
  /** Snapshot manifests, key files and catalogs in the data directory (design §19.2). */
  recovery: RecoveryObjectsService;
  queue: JobQueue;
}

/** What a command tells the user about the database on the way (on stderr). */
const toStderr = (line: string) => console.error(`kinvaultd: ${line}`);

export async function openContext(
  dataDirOption: string,
  db: OpenOptions = { notice: toStderr },
): Promise<Context> {
  const dataDir = resolve(dataDirOption);
  const config = await loadConfig(dataDir);
  const paths = dataPaths(dataDir);
  const tls = await loadTls(paths.tlsKey, paths.tlsCert);
  const database = await openDatabase(dataDir, config, db);
  try {
    await migrate(database.sql);
  } catch (error) {
    await database.close();
    throw error;
  }
  const devices = devicesService(devicesRepository(database.sql), {
    publicUrl: config.publicUrl,
    fingerprint: tls.fingerprint,
    ttlMinutes: config.enrollmentTtlMinutes,
  });
  const store = packStore(paths.packs);
  const events = new EventBus();
  const nasObjects = new FileStore(dataDir);
  await nasObjects.initialise();
  const recovery = recoveryObjectsService({
    store: nasObjects,
    household: householdRepository(database.sql),
    recovery: recoveryRepository(database.sql),
  });
  const reportRecoveryError = (e: unknown) =>
    console.error(
      `kinvaultd: writing the recovery objects in ${dataDir} failed (${(e as Error).message}); they are written again at the next start.`,
    );
  const services: Services = {
    events,
    devices,
    household: householdService(householdRepository(database.sql), events),
    packs: packsService(packsRepository(database.sql), store, events),
    snapshots: snapshotsService(snapshotsRepository(database.sql), events, {
      afterCommit: async (id, sealed) => {
        await recovery.keyFilesChanged();
        await recovery.snapshotCommitted(id, sealed);
      },
      onHookError: reportRecoveryError,
    }),
  };
  events.listen((e) => {
    if (e.type === 'household.keyfile.replaced')
      recovery.keyFilesChanged().catch(reportRecoveryError);
  });
  const checks = checkService(services.packs);
  return {
    dataDir,
    config,
    tls,
    db: database,
    devices,
    services,
    checks,
    packStore: store,
    recovery,
    queue: jobQueue(database.sql, { workerId: `${hostname()}:${process.pid}` }),
  };
}

/** Runs `use` with a context and always closes the database. */
export async function withContext<T>(
  dataDir: string,
  use: (ctx: Context) => Promise<T>,
): Promise<T> {
  const ctx = await openContext(dataDir);
  try {
    return await use(ctx);
  } finally {
    await ctx.db.close();
  }
}
