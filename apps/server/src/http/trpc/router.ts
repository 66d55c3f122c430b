/**
 * The control plane (tRPC): every area's router, merged here and nowhere else. Procedure
 * paths are the agent's wire protocol (`enroll`, `events`, `household.*`, `blobs.*`,
 * `packs.*`, `snapshots.*`): renaming one breaks agents already installed. Each
 * procedure parses input with zod, authorises (procedures.ts) and calls one service.
 */
import { blobsRouter } from './blobs.router.js';
import { enrolmentRouter } from './enrolment.router.js';
import { eventsRouter } from './events.router.js';
import { householdRouter } from './household.router.js';
import { packsRouter } from './packs.router.js';
import { mergeRouters, router } from './procedures.js';
import { snapshotsRouter } from './snapshots.router.js';

export const appRouter = mergeRouters(
  enrolmentRouter,
  eventsRouter,
  router({
    household: householdRouter,
    blobs: blobsRouter,
    packs: packsRouter,
    snapshots: snapshotsRouter,
  }),
);

export type AppRouter = typeof appRouter;
