/** Fault injection for tests: fail the next N requests of an operation, or cut a connection mid-body. */
import type { S3Error } from './errors.js';
import { errors } from './errors.js';

export type FailStatus = 500 | 503;

/** An operation name (PutObject, UploadPart, …) or '*' for any. */
export type OperationPattern = string;

interface Planned<T> {
  operation: OperationPattern;
  left: number;
  value: T;
}

function take<T>(list: Planned<T>[], operation: string): T | undefined {
  const i = list.findIndex((p) => p.operation === operation || p.operation === '*');
  if (i < 0) return undefined;
  const planned = list[i]!;
  if (--planned.left === 0) list.splice(i, 1);
  return planned.value;
}

export class Faults {
  private readonly failures: Planned<FailStatus>[] = [];
  private readonly cuts: Planned<number>[] = [];
  private readonly stalls: { operation: OperationPattern; skip: number; left: number }[] = [];

  /** The next `count` requests of `operation` answer 503 SlowDown (or 500 InternalError). */
  failNext(operation: OperationPattern, count = 1, status: FailStatus = 503): void {
    this.failures.push({ operation, left: count, value: status });
  }

  /**
   * The next `count` requests of `operation` lose their connection after `afterBytes` bytes of
   * body: the request body for uploads, the response body for GetObject.
   */
  cutNext(operation: OperationPattern, afterBytes: number, count = 1): void {
    this.cuts.push({ operation, left: count, value: afterBytes });
  }

  /**
   * After `skip` more requests of `operation`, the next `count` are never answered: each
   * waits until its client goes away (a killed process), then is dropped, storing nothing.
   */
  stallNext(operation: OperationPattern, count = 1, skip = 0): void {
    this.stalls.push({ operation, skip, left: count });
  }

  /** Drops the stalls planned that have not begun. */
  cancelStalls(): void {
    this.stalls.length = 0;
  }

  /** Drops the failures planned that have not happened. */
  cancelFailures(): void {
    this.failures.length = 0;
  }

  /** Whether this request of `operation` is to stall. */
  stall(operation: string): boolean {
    const i = this.stalls.findIndex((p) => p.operation === operation || p.operation === '*');
    if (i < 0) return false;
    const planned = this.stalls[i]!;
    if (planned.skip > 0) {
      planned.skip--;
      return false;
    }
    if (--planned.left === 0) this.stalls.splice(i, 1);
    return true;
  }

  failure(operation: string): S3Error | undefined {
    const status = take(this.failures, operation);
    if (status === undefined) return undefined;
    return status === 503 ? errors.slowDown() : errors.internalError();
  }

  cut(operation: string): number | undefined {
    return take(this.cuts, operation);
  }
}

/** Thrown inside a handler when a planned cut destroyed the socket. */
export class ConnectionCut extends Error {}

/** Passes the body through, then destroys the socket once `limit` bytes have gone by. */
export async function* cutAfter(
  source: AsyncIterable<Buffer>,
  limit: number,
  destroy: () => void,
): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of source) {
    if (seen + chunk.byteLength >= limit) {
      if (limit > seen) yield chunk.subarray(0, limit - seen);
      destroy();
      throw new ConnectionCut('connection cut by fault injection');
    }
    seen += chunk.byteLength;
    yield chunk;
  }
}
