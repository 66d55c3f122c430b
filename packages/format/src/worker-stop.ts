/**
 * Stopping worker threads safely. Our workers load libsodium, whose module waits for
 * its WebAssembly with a top-level await; terminating a worker while such a module is
 * still evaluating aborts the whole process in Node 20 (V8 "Check failed: (location_)
 * != nullptr", nodejs/node#43182). So each worker body posts WORKER_READY once its
 * modules are loaded, and `stopper` terminates only after that (or once the worker
 * ended by itself).
 */
import type { Worker } from 'node:worker_threads';

export const WORKER_READY = 'kinvault-worker-ready';

/** How long a stop waits for a worker still loading before terminating it anyway. */
const LOAD_WAIT_MS = 30_000;

/** Returns the function that stops `worker`; call it right after creating the worker. */
export function stopper(worker: Worker): () => Promise<void> {
  let settled = false;
  const loaded = new Promise<void>((resolve) => {
    const done = () => {
      settled = true;
      resolve();
    };
    worker.on('message', (m) => {
      if (m === WORKER_READY) done();
    });
    worker.once('exit', done);
    worker.once('error', done);
  });
  return async () => {
    if (!settled) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([loaded, new Promise((r) => (timer = setTimeout(r, LOAD_WAIT_MS)))]);
      clearTimeout(timer);
    }
    await worker.terminate();
  };
}
