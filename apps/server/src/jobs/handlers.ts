/**
 * The job kinds the coordinator runs, each a thin call into one service. Staging adds
 * its kinds here (issue 10 §4); none is defined yet, so the workers only keep the
 * queue healthy (reclaiming leases of workers that died).
 */
import type { JobHandler } from '../queue/workers.js';
import type { Context } from '../cli/context.js';

export function jobHandlers(_ctx: Context): Record<string, JobHandler> {
  return {};
}
