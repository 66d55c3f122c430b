/** A store in memory, for tests of what uses stores (jobs, staging). Passes the suite. */
import { Readable } from 'node:stream';
import { KinvaultError } from '@kinvault/protocol';
import { checkRange, checkedBytes, sha256Hex } from '../body.js';
import { checkKey, checkPrefix } from '../keys.js';
import type {
  Body,
  ListPage,
  ObjectInfo,
  Range,
  Store,
  StoreCapabilities,
  Usage,
} from '../store.js';

export class MemoryStore implements Store {
  readonly objects = new Map<string, Uint8Array>();
  readonly capabilities: StoreCapabilities;

  constructor(
    readonly label = 'memory://',
    capabilities: Partial<StoreCapabilities> = {},
    /** A quota: puts that would exceed it fail with DISK_FULL. */
    private readonly quotaBytes: number | null = null,
  ) {
    this.capabilities = {
      rangedReads: true,
      needsRestore: false,
      maxObjectBytes: Number.MAX_SAFE_INTEGER,
      recordsSha256: true,
      ...capabilities,
    };
  }

  private used(): number {
    let n = 0;
    for (const v of this.objects.values()) n += v.byteLength;
    return n;
  }

  async put(key: string, body: Body): Promise<ObjectInfo> {
    checkKey(key);
    if (
      this.quotaBytes !== null &&
      this.used() - (this.objects.get(key)?.byteLength ?? 0) + body.size > this.quotaBytes
    )
      throw new KinvaultError('DISK_FULL', `${this.label} is full: no room for ${key}.`);
    const checked = checkedBytes(body, this.label, key);
    const parts: Uint8Array[] = [];
    for await (const chunk of checked.chunks()) parts.push(Uint8Array.from(chunk));
    checked.finish();
    this.objects.set(key, Buffer.concat(parts));
    return { key, size: body.size, sha256: body.sha256 };
  }

  async get(key: string, range?: Range): Promise<Readable> {
    checkKey(key);
    const bytes = this.objects.get(key);
    if (!bytes) throw new KinvaultError('NOT_FOUND', `${key} is not at ${this.label}.`);
    const { offset, length } = checkRange(this.label, key, bytes.byteLength, range);
    return Readable.from([Buffer.from(bytes.subarray(offset, offset + length))]);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    const bytes = this.objects.get(key);
    return bytes ? { key, size: bytes.byteLength, sha256: sha256Hex(bytes) } : null;
  }

  async list(
    prefix: string,
    page: { after?: string | null; limit?: number } = {},
  ): Promise<ListPage> {
    checkPrefix(prefix);
    const limit = Math.max(1, Math.min(page.limit ?? 1000, 1000));
    const keys = [...this.objects.keys()]
      .filter((k) => k.startsWith(prefix) && k > (page.after ?? ''))
      .sort();
    const chosen = keys.slice(0, limit);
    return {
      objects: chosen.map((key) => {
        const bytes = this.objects.get(key)!;
        return { key, size: bytes.byteLength, sha256: sha256Hex(bytes) };
      }),
      next: keys.length > limit ? chosen[chosen.length - 1]! : null,
    };
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    this.objects.delete(key);
  }

  async usage(): Promise<Usage> {
    return { usedBytes: this.used(), quotaBytes: this.quotaBytes };
  }
}
