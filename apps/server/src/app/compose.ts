/**
 * The composition root: builds every repository, store and service of the coordinator
 * from the data directory, and wires their hooks (staging jobs enqueued where packs
 * and snapshots are committed). Commands and `kinvaultd start` get a Context from here.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { FileStore, openStore } from '@kinvault/stores';
import { loadConfig, dataPaths, type Config } from '../config.js';
import { openDatabase, type Database, type OpenOptions } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { repositoriesOf } from '../repositories/index.js';
import { devicesService, type DevicesService } from '../services/devices.service.js';
import { householdService } from '../services/household.service.js';
import { packsService } from '../services/packs.service.js';
import { snapshotsService } from '../services/snapshots.service.js';
import {
  recoveryObjectsService,
  type RecoveryObjectsService,
} from '../services/recovery-objects.service.js';
import { targetsService, type TargetsService } from '../services/targets.service.js';
import { stagingService, type StagingService } from '../services/staging.service.js';
import { checkService, type CheckService } from '../services/check.service.js';
import { volumesService, type VolumesService } from '../services/volumes.service.js';
import { packStore, type PackStore } from '../stores/pack.store.js';
import { targetStores } from '../stores/target-stores.js';
import type { Services } from '../services/services.js';
import { EventBus } from '../services/events.js';
import { jobQueue, type JobQueue } from '../queue/queue.js';
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
  targets: TargetsService;
  staging: StagingService;
  volumes: VolumesService;
}

/** Staging jobs retry for as long as it takes (at most hourly once backed off). */
export const STAGING_ATTEMPTS = 100_000;

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
  const repos = repositoriesOf(database.sql);
  const devices = devicesService(repos.devices, {
    publicUrl: config.publicUrl,
    fingerprint: tls.fingerprint,
    ttlMinutes: config.enrollmentTtlMinutes,
  });
  const store = packStore(paths.packs);
  const events = new EventBus();
  const queue = jobQueue(database.sql, { workerId: `${hostname()}:${process.pid}` });
  const stagingJob = (kind: string, key: string) =>
    queue.enqueue(database.sql, kind, key, {}, { maxAttempts: STAGING_ATTEMPTS });
  const nasObjects = new FileStore(dataDir);
  await nasObjects.initialise();
  const recovery = recoveryObjectsService({
    store: nasObjects,
    household: repos.household,
    recovery: repos.recovery,
  });
  const reportRecoveryError = (e: unknown) =>
    console.error(
      `kinvaultd: writing the recovery objects in ${dataDir} failed (${(e as Error).message}); they are written again at the next start.`,
    );
  const services: Services = {
    events,
    devices,
    household: householdService(repos.household, events, {
      afterKeyFiles: async () => {
        await recovery.keyFilesChanged();
        await stagingJob('stage.recovery', 'all');
      },
      onHookError: reportRecoveryError,
    }),
    packs: packsService(repos.packs, store, events, undefined, {
      inCommit: async (tx, name) => {
        await queue.enqueue(tx, 'stage.pack', name, {}, { maxAttempts: STAGING_ATTEMPTS });
        await queue.enqueue(tx, 'volume.fill', 'all', {}, { maxAttempts: STAGING_ATTEMPTS });
      },
    }),
    snapshots: snapshotsService(repos.snapshots, events, {
      afterCommit: async (id, sealed) => {
        await recovery.keyFilesChanged();
        await recovery.snapshotCommitted(id, sealed);
        await stagingJob('recovery.catalog', 'all'); // then stage.recovery copies them
      },
      onHookError: reportRecoveryError,
    }),
  };
  const checks = checkService(services.packs);
  const targetsRepo = repos.targets;
  const targets = targetsService({
    repo: targetsRepo,
    dataDir,
    open: openStore,
    // A target added, removed, changed or tested again: what waits for one goes now.
    changed: async () => {
      await stagingJob('stage.scan', 'all');
      await queue.dueNow(['stage.pack', 'stage.recovery', 'volume.fill', 'volume.upload']);
    },
  });
  const stores = targetStores();
  const staging = stagingService({
    targets: targetsRepo,
    uploads: repos.uploads,
    packs: store,
    nas: nasObjects,
    open: stores.open,
    raw: stores.raw,
    copies: config.minOffsiteCopies,
  });
  const volumes = volumesService({
    volumes: repos.volumes,
    targets: targetsRepo,
    household: repos.household,
    uploads: repos.uploads,
    packs: store,
    nas: nasObjects,
    open: stores.open,
    copies: config.minOffsiteCopies,
  });
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
    queue,
    targets,
    staging,
    volumes,
  };
}
