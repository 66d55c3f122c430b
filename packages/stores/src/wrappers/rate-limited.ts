/**
 * Spaces a store's calls to stay under a provider's rate limit (Google Drive: about ten
 * requests a second per user before it answers 403 userRateLimitExceeded). At most
 * `calls` calls start in any window of `perMs` milliseconds; the rest wait their turn,
 * in order. A call that makes several requests (a resumable upload's chunks) counts once.
 */
import pThrottle from 'p-throttle';
import { optionalMethods, type Store } from '../store.js';

export interface RateLimit {
  calls: number;
  perMs: number;
}

export function rateLimited(inner: Store, limit: RateLimit): Store {
  const turn = pThrottle({ limit: limit.calls, interval: limit.perMs, strict: true })(
    () => undefined,
  );
  const gated =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await turn();
      return call(...args);
    };
  return {
    label: inner.label,
    capabilities: inner.capabilities,
    put: gated((...a: Parameters<Store['put']>) => inner.put(...a)),
    get: gated((...a: Parameters<Store['get']>) => inner.get(...a)),
    head: gated((...a: Parameters<Store['head']>) => inner.head(...a)),
    list: gated((...a: Parameters<Store['list']>) => inner.list(...a)),
    delete: gated((...a: Parameters<Store['delete']>) => inner.delete(...a)),
    usage: gated(() => inner.usage()),
    ...optionalMethods(inner),
  };
}
