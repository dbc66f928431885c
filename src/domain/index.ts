export * from './msat.js';
export * from './errors.js';
export * from './hex.js';
