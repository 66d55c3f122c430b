import { KinvaultError } from '@kinvault/protocol';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesBody, readAll } from '../body.js';
import { storeConformance } from '../testing/conformance.js';
import { FaultyStore } from '../testing/faulty.store.js';
import { metered } from '../wrappers/metered.js';
import { withRetry } from '../wrappers/retry.js';
import { MemoryStore } from './memory.store.js';

storeConformance('memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }));

describe('memory store, faulty twin and wrappers', () => {
  it('keeps a quota: a put that would exceed it is DISK_FULL', async () => {
    const store = new MemoryStore('memory://small', {}, 1000);
    await store.put('a', bytesBody(randomBytes(600)));
    await expect(store.put('b', bytesBody(randomBytes(600)))).rejects.toMatchObject({
      code: 'DISK_FULL',
    });
    await store.put('a', bytesBody(randomBytes(900))); // replacing frees the old bytes
  });

  it('retries retryable failures with backoff and re-reads the body; not others', async () => {
    const faulty = new FaultyStore(new MemoryStore());
    const waits: number[] = [];
    const store = withRetry(faulty, {
      attempts: 4,
      baseDelayMs: 100,
      maxDelayMs: 250,
      sleep: async (ms) => void waits.push(ms),
    });
    faulty.fail('put', { times: 3 });
    const bytes = randomBytes(1000);
    await store.put('k', bytesBody(bytes));
    expect(faulty.calls.put).toBe(4);
    expect(waits).toHaveLength(3);
    expect(waits[2]).toBeLessThanOrEqual(250);
    expect((await readAll(store, 'k')).equals(bytes)).toBe(true);

    faulty.fail('head', { error: () => Object.assign(new Error('not retryable')) });
    await expect(store.head('k')).rejects.toThrow('not retryable');
    expect(faulty.calls.head).toBe(1);
    faulty.fail('get', { times: 9 });
    await expect(store.get('k')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(faulty.calls.get).toBe(1 + 4);
  });

  it('leaves the codes a policy names to its caller, though retryable', async () => {
    const faulty = new FaultyStore(new MemoryStore());
    const store = withRetry(faulty, {
      attempts: 4,
      baseDelayMs: 1,
      maxDelayMs: 1,
      notHere: ['FAILED_PRECONDITION'],
    });
    const unmounted = () =>
      new KinvaultError('FAILED_PRECONDITION', 'not mounted', { retryable: true });
    faulty.fail('head', { times: 2, error: unmounted });
    await expect(store.head('k')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(faulty.calls.head).toBe(1);
  });

  it('corrupts a get on request, and fails the Nth call', async () => {
    const faulty = new FaultyStore(new MemoryStore());
    const bytes = randomBytes(1000);
    await faulty.put('k', bytesBody(bytes));
    faulty.corruptNextGet('flip');
    const flipped = await readAll(faulty, 'k');
    expect(flipped.length).toBe(1000);
    expect(flipped.equals(bytes)).toBe(false);
    faulty.corruptNextGet('truncate');
    expect((await readAll(faulty, 'k')).length).toBe(999);
    expect((await readAll(faulty, 'k')).equals(bytes)).toBe(true);
    faulty.fail('list', { after: 2 });
    await faulty.list('');
    await faulty.list('');
    await expect(faulty.list('')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await faulty.list('');
  });

  it('keeps other bytes than a put was sent, on request, and says nothing', async () => {
    const faulty = new FaultyStore(new MemoryStore());
    const bytes = randomBytes(1000);
    faulty.corruptNextPut('flip');
    await faulty.put('k', bytesBody(bytes));
    const kept = await readAll(faulty, 'k');
    expect(kept.length).toBe(1000);
    expect(kept.equals(bytes)).toBe(false);
    faulty.corruptNextPut('truncate');
    await faulty.put('k', bytesBody(bytes));
    expect((await readAll(faulty, 'k')).length).toBe(999);
    await faulty.put('k', bytesBody(bytes)); // once only
    expect((await readAll(faulty, 'k')).equals(bytes)).toBe(true);
  });

  it('meters requests and bytes', async () => {
    const store = metered(new MemoryStore());
    await store.put('k', bytesBody(randomBytes(1234)));
    await readAll(store, 'k', { offset: 0, length: 100 });
    await store.head('k');
    expect(store.meter).toEqual({
      requests: { put: 1, get: 1, head: 1, list: 0, delete: 0, usage: 0 },
      bytesSent: 1234,
      bytesReceived: 100,
    });
  });
});
