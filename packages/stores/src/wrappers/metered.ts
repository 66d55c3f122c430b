/** Counts requests and bytes per operation of a store (shown per target in status). */
import { Transform } from 'node:stream';
import { optionalMethods, type Body, type Store } from '../store.js';

export interface Meter {
  requests: Record<'put' | 'get' | 'head' | 'list' | 'delete' | 'usage', number>;
  bytesSent: number;
  bytesReceived: number;
}

export type MeteredStore = Store & { readonly meter: Meter; readonly inner: Store };

/** The counts so far, and zero again: each call gets what came since the last. */
export function takeMeter(meter: Meter): Meter {
  const taken: Meter = { ...meter, requests: { ...meter.requests } };
  for (const k of Object.keys(meter.requests) as (keyof Meter['requests'])[]) meter.requests[k] = 0;
  meter.bytesSent = 0;
  meter.bytesReceived = 0;
  return taken;
}

export function metered(inner: Store): MeteredStore {
  const meter: Meter = {
    requests: { put: 0, get: 0, head: 0, list: 0, delete: 0, usage: 0 },
    bytesSent: 0,
    bytesReceived: 0,
  };
  async function* count(chunks: AsyncIterable<Uint8Array>) {
    for await (const chunk of chunks) {
      meter.bytesSent += chunk.byteLength;
      yield chunk;
    }
  }
  const counted = (body: Body): Body => ({
    ...body,
    open: () => count(body.open()),
    ...(body.openAt ? { openAt: (offset: number) => count(body.openAt!(offset)) } : {}),
  });
  return {
    label: inner.label,
    capabilities: inner.capabilities,
    meter,
    inner,
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
    ...optionalMethods(inner),
  };
}
