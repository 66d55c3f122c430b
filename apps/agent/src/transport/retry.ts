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

/** How long a backup or restore keeps retrying, by default, once it reached the coordinator. */
export const DEFAULT_RETRY_FOR_S = 90;

/**
 * Seconds to wait before each retry of a long job: 0.25 s doubling up to 30 s, then 30 s
 * each, until they add up to `totalS` (the last wait shortened to fit). 90 s gives nine.
 */
export function backoffSchedule(totalS: number): number[] {
  const waits: number[] = [];
  let left = totalS;
  for (let i = 0; left > 0; i++) {
    const wait = Math.min(i < 6 ? 0.25 * 2 ** i : i === 6 ? 15 : 30, left);
    waits.push(wait);
    left -= wait;
  }
  return waits;
}

/** The waits of a long job once it has reached the coordinator, by default: ~90 s. */
export const BACKOFF_S: readonly number[] = backoffSchedule(DEFAULT_RETRY_FOR_S);
/** Before that, and for interactive commands: a few seconds, then a clear failure. */
export const SHORT_BACKOFF_S = [0.25, 0.5, 1, 2];

/**
 * How long a connection keeps retrying. Interactive commands (snapshots, ls, setup)
 * fail within a few seconds when the coordinator is down; a backup or restore does too
 * until its first answer, and from then on rides out a restart (`long`): each call
 * retries by `schedule` (BACKOFF_S unless the user chose another window: --retry-for),
 * and all calls give up once the outage has lasted the schedule's sum, however many
 * calls were made one after another meanwhile.
 */
export interface RetryPolicy {
  long: boolean;
  /** Set once any answer has come back from the coordinator. */
  contacted: boolean;
  schedule?: readonly number[];
  /** When the outage began: the first connection failure since the last answer. */
  downSince?: number;
}

/** An answer came back (HTTP `status`): the outage is over, unless it says "stopping" (503). */
export function answered(policy: RetryPolicy | undefined, status: number): void {
  if (!policy) return;
  policy.contacted = true;
  if (status !== 503) policy.downSince = undefined;
}

/**
 * After a connection failure: the milliseconds a long job has left to ride out this
 * outage (0: give up). Unlimited (Infinity) for the short policy, which counts attempts.
 */
export function outageLeftMs(policy: RetryPolicy | undefined): number {
  if (!policy?.long || !policy.contacted) return Infinity;
  const now = Date.now();
  policy.downSince ??= now;
  const windowMs = (policy.schedule ?? BACKOFF_S).reduce((a, b) => a + b, 0) * 1000;
  return Math.max(0, policy.downSince + windowMs - now);
}

/** The waits before each retry for this policy now. */
export function backoffFor(policy: RetryPolicy | undefined): readonly number[] {
  return policy?.long && policy.contacted ? (policy.schedule ?? BACKOFF_S) : SHORT_BACKOFF_S;
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
  onRetry?: (what: string, attempt: number, error: unknown, waitS: number) => void,
  policy?: RetryPolicy,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const next = backoffFor(policy)[attempt];
      if (next === undefined || !isConnectionError(error)) throw error;
      const left = outageLeftMs(policy);
      if (left <= 0) throw error;
      const wait = Math.min(next, left / 1000);
      onRetry?.(what, attempt + 1, error, wait);
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
  }
}
