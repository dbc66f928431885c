export type * from './types.js';
export type * from './backend.js';
export * from './errors.js';
export * from './limits.js';
