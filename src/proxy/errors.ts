import { CodedError } from '../domain/errors.js';

/** Stable codes of the paid-services admin API (docs/L402.md, "Changing services live"). */
export const ProxyAdminErrorCode = {
  INVALID_SERVICE: 'INVALID_SERVICE',
  SERVICE_NOT_FOUND: 'SERVICE_NOT_FOUND',
  SERVICE_EXISTS: 'SERVICE_EXISTS',
  TOO_MANY_SERVICES: 'TOO_MANY_SERVICES',
  INVALID_ROUTING: 'INVALID_ROUTING',
} as const;
export type ProxyAdminErrorCode = (typeof ProxyAdminErrorCode)[keyof typeof ProxyAdminErrorCode];

const STATUS: Record<ProxyAdminErrorCode, number> = {
  INVALID_SERVICE: 400,
  SERVICE_NOT_FOUND: 404,
  SERVICE_EXISTS: 409,
  TOO_MANY_SERVICES: 409,
  INVALID_ROUTING: 400,
};

export class ProxyAdminError extends CodedError<ProxyAdminErrorCode> {
  constructor(code: ProxyAdminErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}
