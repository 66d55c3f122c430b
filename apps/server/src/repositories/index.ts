/** Every repository, on the pool or on a transaction a caller opened (see db.ts). */
import type { Db } from './db.js';
import { devicesRepository } from './devices.repository.js';
import { householdRepository } from './household.repository.js';
import { packsRepository } from './packs.repository.js';
import { recoveryRepository } from './recovery.repository.js';
import { snapshotsRepository } from './snapshots.repository.js';
import { targetsRepository } from './targets.repository.js';
import { uploadsRepository } from './uploads.repository.js';
import { volumesRepository } from './volumes.repository.js';

export function repositoriesOf(db: Db) {
  return {
    devices: devicesRepository(db),
    household: householdRepository(db),
    packs: packsRepository(db),
    recovery: recoveryRepository(db),
    snapshots: snapshotsRepository(db),
    targets: targetsRepository(db),
    uploads: uploadsRepository(db),
    volumes: volumesRepository(db),
  };
}

export type Repositories = ReturnType<typeof repositoriesOf>;
export { atomically, type Db } from './db.js';
