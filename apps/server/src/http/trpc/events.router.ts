/** Live events for enrolled devices (websocket): packs stored, snapshots committed. */
import { deviceProcedure, router } from './procedures.js';

export const eventsRouter = router({
  events: deviceProcedure.subscription(async function* ({ ctx, signal }) {
    yield* ctx.services.events.subscribe(signal);
  }),
});
