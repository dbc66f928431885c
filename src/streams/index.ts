// The streams feature: what the composition root and the HTTP layer use.
export { StreamsService, type StreamsDeps, type StreamsOptions } from './service.js';
export { StreamReceiver, type ReceiverDeps, DEFAULT_GRACE_SECONDS } from './receiver.js';
export { StreamError, StreamErrorCode } from './errors.js';
export { systemClock, type Clock } from './clock.js';
export type { StreamPayments } from './ports.js';
export type {
  CreateStreamInput,
  Inbox,
  IncomingStream,
  PublicStream,
  StopReason,
  StreamEvent,
  StreamPayee,
  StreamPublisher,
  StreamState,
  TickStats,
} from './types.js';
