import pino, { type Logger } from 'pino';

/** Structured logs; anything that looks like a credential is redacted wherever it appears. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: {
      paths: [
        '*.macaroon',
        '*.cert',
        'operatorKey',
        '*.operatorKey',
        'req.headers.authorization',
        '*.preimage',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  });
}
