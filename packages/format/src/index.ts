/**
 * @kinvault/format — repository format v1. Pure: no network, no database; files only
 * through the streams and sources handed in. docs/design.md specifies every byte.
 */
export * from './aead.js';
export * from './blob.js';
export * from './blob-packer.js';
export * from './pack-builder.js';
export * from './bytes.js';
export * from './catalog.js';
export * from './chunker.js';
export * from './file-times.js';
export * from './keyfile.js';
export * from './keyfile-replacement.js';
export * from './keys.js';
export * from './pack.js';
export { systemRandom, type RandomSource } from './random.js';
export * from './recovery-code.js';
export * from './snapshot.js';
export * from './tree.js';
export * from './worker-stop.js';
export { sodium } from './sodium.js';
