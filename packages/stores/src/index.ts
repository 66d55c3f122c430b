export * from './store.js';
export * from './keys.js';
export * from './body.js';
export * from './registry.js';
export { FileStore, MARKER } from './file/file.store.js';
export {
  DEFAULT_PART_SIZE,
  parseS3Url,
  partSizeFor,
  s3Capabilities,
  STORAGE_CLASSES,
  type S3Target,
  type StorageClass,
} from './s3/url.js';
export { GDriveStore, type GDriveStoreOptions } from './gdrive/gdrive.store.js';
export { parseDriveUrl, type DriveTarget } from './gdrive/url.js';
export { MemoryStore } from './memory/memory.store.js';
export { metered, takeMeter, type Meter, type MeteredStore } from './wrappers/metered.js';
export { rateLimited, type RateLimit } from './wrappers/rate-limited.js';
export { withRetry, DEFAULT_RETRY, type RetryPolicy } from './wrappers/retry.js';
export {
  checkTokenPath,
  startDriveAuthorization,
  writeTokenFile,
  type DriveAuthorization,
} from './gdrive/authorize.js';
export { needsAuthorisation } from './gdrive/needs-auth.js';
