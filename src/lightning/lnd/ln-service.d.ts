// ln-service ships no typings of its own; it re-exports the `lightning` package, which does.
declare module 'ln-service' {
  export * from 'lightning';
}
