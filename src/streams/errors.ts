import { CodedError } from '../domain/errors.js';

export const StreamErrorCode = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  STREAM_NOT_FOUND: 'STREAM_NOT_FOUND',
  STREAM_NOT_ACTIVE: 'STREAM_NOT_ACTIVE',
  STREAM_NOT_PAUSED: 'STREAM_NOT_PAUSED',
  STREAM_NOT_PAUSABLE: 'STREAM_NOT_PAUSABLE',
  STREAM_STOPPED: 'STREAM_STOPPED',
  STREAM_NOT_METERED: 'STREAM_NOT_METERED',
  STREAM_PAYEE_NOT_FOUND: 'STREAM_PAYEE_NOT_FOUND',
  INBOX_NOT_FOUND: 'INBOX_NOT_FOUND',
  STREAMS_NOT_RUNNING: 'STREAMS_NOT_RUNNING',
} as const;
export type StreamErrorCode = (typeof StreamErrorCode)[keyof typeof StreamErrorCode];

const STATUS: Record<StreamErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  STREAM_NOT_FOUND: 404,
  STREAM_NOT_ACTIVE: 409,
  STREAM_NOT_PAUSED: 409,
  STREAM_NOT_PAUSABLE: 409,
  STREAM_STOPPED: 409,
  STREAM_NOT_METERED: 400,
  STREAM_PAYEE_NOT_FOUND: 404,
  INBOX_NOT_FOUND: 404,
  STREAMS_NOT_RUNNING: 409,
};

export class StreamError extends CodedError<StreamErrorCode> {
  constructor(code: StreamErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}

export const invalid = (message: string, details?: Record<string, unknown>): StreamError =>
  new StreamError(StreamErrorCode.INVALID_ARGUMENT, message, details);
