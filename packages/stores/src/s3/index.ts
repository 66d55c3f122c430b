/** The S3 adapter itself (it loads the AWS SDK): `@kinvault/stores/s3`. */
export { S3Store, type S3StoreOptions } from './s3.store.js';
export { DEFAULT_PART_SIZE } from './url.js';
