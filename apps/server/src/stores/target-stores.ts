/**
 * The coordinator's stores for its targets: one per target URL, kept for the process's
 * life, so that S3 clients keep their connections and Google Drive its access token and
 * folder id across jobs. Each is metered (requests and bytes, which staging adds to the
 * target's totals in PostgreSQL after each piece of work) and retries what failed
 * retryably, a few times with a short backoff (jobs retry the rest, for as long as it
 * takes); Drive targets' calls are spaced to stay under its rate limit.
 */
import {
  metered,
  openStore,
  rateLimited,
  withRetry,
  type MeteredStore,
  type RateLimit,
  type Store,
} from '@kinvault/stores';

const RETRY = {
  attempts: 3,
  baseDelayMs: 1000,
  maxDelayMs: 10_000,
  notHere: ['FAILED_PRECONDITION', 'DISK_FULL', 'UNAUTHORIZED'],
};
/** Google Drive's default quota: about 1,000 requests per 100 s per user. */
const LIMITS: Record<string, RateLimit> = { 'gdrive:': { calls: 10, perMs: 1000 } };

export interface TargetStores {
  /** The metered, retrying store of a target URL. */
  open(url: string): MeteredStore;
  /** The adapter itself, for what is particular to one (a file target's sweep). */
  raw(url: string): Store;
}

export function targetStores(open: (url: string) => Store = openStore): TargetStores {
  const cache = new Map<string, { raw: Store; store: MeteredStore }>();
  const entry = (url: string) => {
    let e = cache.get(url);
    if (!e) {
      const raw = open(url);
      const limit = LIMITS[new URL(url).protocol];
      // Under the retries: each try counts, and waits its turn.
      const counted = metered(limit ? rateLimited(raw, limit) : raw);
      e = { raw, store: { ...withRetry(counted, RETRY), meter: counted.meter, inner: raw } };
      cache.set(url, e);
    }
    return e;
  };
  return { open: (url) => entry(url).store, raw: (url) => entry(url).raw };
}
