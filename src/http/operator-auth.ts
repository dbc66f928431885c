import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../domain/errors.js';

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Verifies the operator's bearer key against a stored SHA-256 digest, in constant time. */
export class OperatorAuth {
  private constructor(private readonly digest: Buffer) {}

  static fromKey(key: string): OperatorAuth {
    return new OperatorAuth(sha256(key));
  }

  static fromDigestHex(hex: string): OperatorAuth {
    if (!/^[0-9a-f]{64}$/.test(hex))
      throw new ConfigError('the stored operator key digest is corrupt: expected 64 hex characters');
    return new OperatorAuth(Buffer.from(hex, 'hex'));
  }

  static generateKey(): string {
    return `cop_${randomBytes(32).toString('base64url')}`;
  }

  get digestHex(): string {
    return this.digest.toString('hex');
  }

  verify(presented: string | undefined): boolean {
    if (!presented) return false;
    return timingSafeEqual(sha256(presented), this.digest);
  }
}
