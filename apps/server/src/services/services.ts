/**
 * The services the edges are given (the HTTPS edge and the commands), one instance of
 * each, built by the composition root (app/compose.ts). Nothing here knows an edge.
 */
import type { DevicesService } from './devices.service.js';
import type { EventBus } from './events.js';
import type { HouseholdService } from './household.service.js';
import type { PacksService } from './packs.service.js';
import type { SnapshotsService } from './snapshots.service.js';

export interface Services {
  events: EventBus;
  devices: DevicesService;
  household: HouseholdService;
  packs: PacksService;
  snapshots: SnapshotsService;
}
