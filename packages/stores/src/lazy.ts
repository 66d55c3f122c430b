/**
 * A store whose adapter is loaded on its first call: the AWS SDK takes a fifth of a
 * second to import, which every kinvaultd command would otherwise pay, whether or not it
 * touches an S3 target. Label and capabilities are known without the adapter.
 */
import type { Store, StoreCapabilities } from './store.js';

export function lazyStore(
  label: string,
  capabilities: StoreCapabilities,
  load: () => Promise<Store>,
  /** The part size of a body of `size` bytes, where the store uploads in parts. */
  partSizeFor?: (size: number) => number,
): Store {
  let loading: Promise<Store> | undefined;
  const store = () => (loading ??= load());
  return {
    label,
    capabilities,
    put: async (...a) => (await store()).put(...a),
    get: async (...a) => (await store()).get(...a),
    head: async (...a) => (await store()).head(...a),
    list: async (...a) => (await store()).list(...a),
    delete: async (...a) => (await store()).delete(...a),
    usage: async () => (await store()).usage(),
    sweep: async (...a) => (await store()).sweep?.(...a),
    ...(partSizeFor ? { partSizeFor } : {}),
  };
}
