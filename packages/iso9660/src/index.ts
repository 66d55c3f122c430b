export { planIso, MAX_EXTENT } from './plan.js';
export type { IsoExtent, IsoOptions, IsoPlan, IsoPlannedFile } from './plan.js';
export type { IsoDirectoryEntry, IsoEntry, IsoFileEntry } from './tree.js';
export { writeIso } from './write.js';
export type { IsoSource, WriteIsoOptions } from './write.js';
export { readIso } from './read.js';
export type { IsoListedEntry, IsoListing, IsoRead, IsoTreeKind } from './read.js';
