/**
 * Base class of every error Coulomb raises on purpose. `code` is stable and machine-readable;
 * `status` is the HTTP status the error maps to at the edge.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number = 500,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = new.target.name;
  }

  toJSON(): { code: string; message: string; details?: Readonly<Record<string, unknown>> } {
    return this.details
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

/**
 * A family of errors with stable codes, each mapped to its HTTP status by the family's table
 * (ledger, payments, escrow, ...): subclasses only name their code type and pass their table.
 */
export abstract class CodedError<C extends string> extends AppError {
  declare readonly code: C;

  protected constructor(
    code: C,
    message: string,
    status: Readonly<Record<C, number>>,
    details?: Record<string, unknown>,
  ) {
    super(code, message, status[code], details);
  }
}

export class ConfigError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFIG_INVALID', message, 500, details);
  }
}
