/**
 * Garbage-collection headroom for the commands that move gigabytes through Buffers
 * (`kinvaultd start`, `kinvault backup` and `restore`).
 *
 * V8 counts Buffer memory allocated since the last full collection against the old
 * generation's limit, and for our small heaps (12–25 MB live) that limit sits only
 * about 20 MB above the live size: uploading 1 GB cost the coordinator about 70 full
 * collections, a quarter of its CPU. This raises V8's heap growing factor so the limit
 * sits about `HEADROOM` above the live heap (at most 11× it), and re-checks every few
 * seconds as the live heap changes. Memory stays bounded: the limit never exceeds V8's
 * maximum heap size, and garbage Buffers are collected once it is reached.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

const HEADROOM = 192 * 1024 * 1024;
const CHECK_EVERY_MS = 5_000;

/** Keeps the headroom for the rest of the process (the check does not keep it alive). */
export function keepHeapHeadroom(): void {
  let current = 0;
  const tune = () => {
    const live = Math.max(getHeapStatistics().used_heap_size, 8 * 1024 * 1024);
    // V8's factor is 1 + percent/100; steps of 10 avoid resetting it for small changes.
    const percent = Math.min(1000, Math.max(100, Math.round((HEADROOM / live) * 10) * 10));
    if (percent !== current) {
      setFlagsFromString(`--heap-growing-percent=${percent}`);
      current = percent;
    }
  };
  tune();
  setInterval(tune, CHECK_EVERY_MS).unref();
}
