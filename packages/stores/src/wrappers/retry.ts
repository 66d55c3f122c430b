/**
 * Retries a store's calls that failed with a retryable error, with exponential backoff
 * and jitter. A retried put reads its body again from the start (Body.open).
 */
import { isKinvaultError } from '@kinvault/protocol';
import { optionalMethods, type Store } from '../store.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Wait before the first retry; doubles each time, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * Codes never retried here, though retryable (FAILED_PRECONDITION: a disk that is not
   * mounted is not mounted a second later; the caller's jobs come back to it).
   */
  notHere?: readonly string[];
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function withRetry(inner: Store, policy: RetryPolicy = DEFAULT_RETRY): Store {
  const sleep = policy.sleep ?? wait;
  async function retried<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (e) {
        if (attempt >= policy.attempts || !isKinvaultError(e) || !e.retryable) throw e;
        if (policy.notHere?.includes(e.code)) throw e;
        const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
        await sleep(delay / 2 + Math.random() * (delay / 2));
      }
    }
  }
  return {
    label: inner.label,
    capabilities: inner.capabilities,
    // A retried put with an UploadResume goes on from what the failed one saved.
    put: (key, body, options) => retried(() => inner.put(key, body, options)),
    get: (key, range) => retried(() => inner.get(key, range)),
    head: (key) => retried(() => inner.head(key)),
    list: (prefix, page) => retried(() => inner.list(prefix, page)),
    delete: (key) => retried(() => inner.delete(key)),
    usage: () => retried(() => inner.usage()),
    ...optionalMethods(inner),
  };
}
