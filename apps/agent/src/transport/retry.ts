/**
 * Retries with backoff when the coordinator cannot be reached (restarting, network
 * blip). Only connection-level failures are retried, and HTTP 503 (a coordinator
 * stopping or starting); any other HTTP answer never is.
 */
const RETRYABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'HTTP_503',
]);

/** The cause to attach to an HTTP 503 answer so that it is retried. */
export function unavailable(): Error {
  return Object.assign(new Error('HTTP 503'), { code: 'HTTP_503' });
}

/** Seconds to wait before each retry once a long job has reached the coordinator: ~90 s. */
export const BACKOFF_S = [0.25, 0.5, 1, 2, 4, 8, 15, 30, 30];
/** Before that, and for interactive commands: a few seconds, then a clear failure. */
export const SHORT_BACKOFF_S = [0.25, 0.5, 1, 2];

/**
 * How long a connection keeps retrying. Interactive commands (snapshots, ls, setup)
 * fail within a few seconds when the coordinator is down; a backup or restore does too
 * until its first answer, and from then on rides out a restart (`long`).
 */
export interface RetryPolicy {
  long: boolean;
  /** Set once any answer has come back from the coordinator. */
  contacted: boolean;
}

export function backoffFor(policy: RetryPolicy | undefined): readonly number[] {
  return policy?.long && policy.contacted ? BACKOFF_S : SHORT_BACKOFF_S;
}

function codeOf(error: unknown): string | undefined {
  for (
    let e = error as { code?: string; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.code === 'string' && RETRYABLE.has(e.code)) return e.code;
  }
  return undefined;
}

export function isConnectionError(error: unknown): boolean {
  return codeOf(error) !== undefined;
}

export async function withRetry<T>(
  what: string,
  fn: () => Promise<T>,
  onRetry?: (what: string, attempt: number, error: unknown) => void,
  policy?: RetryPolicy,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const wait = backoffFor(policy)[attempt];
      if (wait === undefined || !isConnectionError(error)) throw error;
      onRetry?.(what, attempt + 1, error);
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
  }
}
