export * from './errors.js';
export * from './enrollment.js';
export * from './paths.js';
export * from './heap.js';
export * from './terminal.js';
export * from './cli-env.js';
export * from './error-edges.js';
