import { CodedError } from '../domain/errors.js';

/** Stable codes a device sees (PROTOCOL.md, "Errors"). */
export const DeviceErrorCode = {
  BAD_ENVELOPE: 'BAD_ENVELOPE',
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  UNKNOWN_DEVICE: 'UNKNOWN_DEVICE',
  DEVICE_REVOKED: 'DEVICE_REVOKED',
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  REPLAYED: 'REPLAYED',
  CLOCK_SKEW: 'CLOCK_SKEW',
  UNKNOWN_METHOD: 'UNKNOWN_METHOD',
  INVALID_PARAMS: 'INVALID_PARAMS',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  ENROLLMENT_INVALID: 'ENROLLMENT_INVALID',
} as const;
export type DeviceErrorCode = (typeof DeviceErrorCode)[keyof typeof DeviceErrorCode];

const STATUS: Record<DeviceErrorCode, number> = {
  BAD_ENVELOPE: 400,
  UNSUPPORTED_VERSION: 400,
  UNKNOWN_DEVICE: 401,
  DEVICE_REVOKED: 401,
  BAD_SIGNATURE: 401,
  REPLAYED: 409,
  CLOCK_SKEW: 400,
  UNKNOWN_METHOD: 400,
  INVALID_PARAMS: 400,
  IDEMPOTENCY_CONFLICT: 409,
  ENROLLMENT_INVALID: 401,
};

export class DeviceError extends CodedError<DeviceErrorCode> {
  constructor(code: DeviceErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}
