export * from './store.js';
export * from './keys.js';
export * from './body.js';
export * from './registry.js';
export { FileStore, MARKER } from './file/file.store.js';
export { MemoryStore } from './memory/memory.store.js';
export { metered, type Meter } from './wrappers/metered.js';
export { withRetry, DEFAULT_RETRY, type RetryPolicy } from './wrappers/retry.js';
