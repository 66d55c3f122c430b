import { describe, expect, it } from 'vitest';
import { bytesBody } from '../body.js';
import { MemoryStore } from '../memory/memory.store.js';
import type { Store } from '../store.js';
import { rateLimited } from './rate-limited.js';

/** A store that notes when each call reached it. */
function noting(inner: Store, at: number[]): Store {
  return {
    ...inner,
    label: inner.label,
    capabilities: inner.capabilities,
    head: (key) => (at.push(performance.now()), inner.head(key)),
    put: (key, body) => (at.push(performance.now()), inner.put(key, body)),
  };
}

describe('rateLimited', () => {
  it('lets at most `calls` calls through in any window, the rest in order, none lost', async () => {
    const at: number[] = [];
    const inner = new MemoryStore();
    const store = rateLimited(noting(inner, at), { calls: 4, perMs: 150 });
    await store.put('x', bytesBody(Buffer.from('hello')));
    const heads = await Promise.all(Array.from({ length: 12 }, () => store.head('x')));
    expect(heads.every((h) => h?.size === 5)).toBe(true);
    expect(at).toHaveLength(13);
    // Any 5 consecutive calls span at least one window (a little slack for timer rounding).
    for (let i = 4; i < at.length; i++) expect(at[i]! - at[i - 4]!).toBeGreaterThanOrEqual(145);
  });

  it('passes failures through unchanged', async () => {
    const store = rateLimited(new MemoryStore(), { calls: 10, perMs: 1000 });
    await expect(store.get('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
