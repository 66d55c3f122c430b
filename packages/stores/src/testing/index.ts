export { memoryResume, storeConformance, type StoreFixture } from './conformance.js';
export { FaultyStore } from './faulty.store.js';
