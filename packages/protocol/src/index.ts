export * from './errors.js';
export * from './enrollment.js';
