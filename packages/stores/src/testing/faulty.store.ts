/**
 * A store that misbehaves on request, around another: fails the Nth call of an
 * operation, truncates or flips a bit in what a get returns or in what a put keeps, or
 * is slow. For tests of what must survive a bad target (jobs, staging, checks).
 */
import { Readable } from 'node:stream';
import { KinvaultError } from '@kinvault/protocol';
import type { Body, Store } from '../store.js';
import { bytesBody } from '../body.js';

type Op = 'put' | 'get' | 'head' | 'list' | 'delete' | 'usage';

interface Fault {
  op: Op;
  /** Calls of `op` to let through before failing. */
  after: number;
  /** Calls to fail once it starts. */
  times: number;
  error: () => unknown;
}

export class FaultyStore implements Store {
  readonly calls: Record<Op, number> = { put: 0, get: 0, head: 0, list: 0, delete: 0, usage: 0 };
  private faults: Fault[] = [];
  private corruption: 'truncate' | 'flip' | null = null;
  private putCorruption: 'truncate' | 'flip' | null = null;
  delayMs = 0;

  constructor(readonly inner: Store) {}

  get label() {
    return this.inner.label;
  }
  get capabilities() {
    return this.inner.capabilities;
  }

  /** The next `times` calls of `op`, after `after` more, fail (by default retryably). */
  fail(op: Op, opts: { after?: number; times?: number; error?: () => unknown } = {}): void {
    this.faults.push({
      op,
      after: opts.after ?? 0,
      times: opts.times ?? 1,
      error:
        opts.error ??
        (() =>
          new KinvaultError('UNAVAILABLE', `${this.label} failed on purpose (${op}).`, {
            retryable: true,
          })),
    });
  }

  /** The next get returns its bytes but the last one, or with one bit flipped. */
  corruptNextGet(how: 'truncate' | 'flip'): void {
    this.corruption = how;
  }

  /**
   * The next put keeps its bytes but the last one, or with one bit flipped, and answers
   * as if all went well: a provider that stores other bytes than it was sent.
   */
  corruptNextPut(how: 'truncate' | 'flip'): void {
    this.putCorruption = how;
  }

  private async enter(op: Op): Promise<void> {
    this.calls[op]++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const fault = this.faults.find((f) => f.op === op);
    if (!fault) return;
    if (fault.after > 0) {
      fault.after--;
      return;
    }
    if (--fault.times <= 0) this.faults = this.faults.filter((f) => f !== fault);
    throw fault.error();
  }

  put: Store['put'] = async (key, body, options) => {
    await this.enter('put');
    const how = this.putCorruption;
    if (!how) return this.inner.put(key, body, options);
    this.putCorruption = null;
    // The other bytes go in whole, as a body of their own (so the inner store takes them).
    return this.inner.put(key, corrupted(await readBody(body), how));
  };
  head: Store['head'] = async (key) => (await this.enter('head'), this.inner.head(key));
  list: Store['list'] = async (p, page) => (await this.enter('list'), this.inner.list(p, page));
  delete: Store['delete'] = async (key) => (await this.enter('delete'), this.inner.delete(key));
  usage: Store['usage'] = async () => (await this.enter('usage'), this.inner.usage());

  get: Store['get'] = async (key, range) => {
    await this.enter('get');
    const source = await this.inner.get(key, range);
    const how = this.corruption;
    if (!how) return source;
    this.corruption = null;
    const parts: Buffer[] = [];
    for await (const part of source) parts.push(part as Buffer);
    const bytes = Buffer.concat(parts);
    if (how === 'truncate')
      return Readable.from([bytes.subarray(0, Math.max(0, bytes.length - 1))]);
    if (bytes.length > 0) bytes[bytes.length >> 1]! ^= 0x10;
    return Readable.from([bytes]);
  };
}

async function readBody(body: Body): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body.open()) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

function corrupted(bytes: Buffer, how: 'truncate' | 'flip'): Body {
  if (how === 'truncate') return bytesBody(bytes.subarray(0, Math.max(0, bytes.length - 1)));
  const other = Buffer.from(bytes);
  if (other.length > 0) other[other.length >> 1]! ^= 0x10;
  return bytesBody(other);
}
