/** Counts requests and bytes per operation of a store (shown per target in status). */
import { Transform } from 'node:stream';
import type { Body, Store } from '../store.js';

export interface Meter {
  requests: Record<'put' | 'get' | 'head' | 'list' | 'delete' | 'usage', number>;
  bytesSent: number;
  bytesReceived: number;
}

export function metered(inner: Store): Store & { readonly meter: Meter } {
  const meter: Meter = {
    requests: { put: 0, get: 0, head: 0, list: 0, delete: 0, usage: 0 },
    bytesSent: 0,
    bytesReceived: 0,
  };
  const counted = (body: Body): Body => ({
    ...body,
    async *open() {
      for await (const chunk of body.open()) {
        meter.bytesSent += chunk.byteLength;
        yield chunk;
      }
    },
  });
  return {
    label: inner.label,
    capabilities: inner.capabilities,
    meter,
    put: (key, body, options) => (meter.requests.put++, inner.put(key, counted(body), options)),
    get: async (key, range) => {
      meter.requests.get++;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          meter.bytesReceived += chunk.byteLength;
          done(null, chunk);
        },
      });
      const source = await inner.get(key, range);
      source.on('error', (e) => counter.destroy(e));
      return source.pipe(counter);
    },
    head: (key) => (meter.requests.head++, inner.head(key)),
    list: (prefix, page) => (meter.requests.list++, inner.list(prefix, page)),
    delete: (key) => (meter.requests.delete++, inner.delete(key)),
    usage: () => (meter.requests.usage++, inner.usage()),
    ...(inner.sweep ? { sweep: inner.sweep.bind(inner) } : {}),
  };
}
