import { readFile } from 'node:fs/promises';
import { authenticatedLndGrpc } from 'ln-service';
import type { AuthenticatedLnd } from 'lightning';
import { ConfigError } from '../../domain/errors.js';

/** Where and how to reach an LND node's gRPC interface. */
export interface LndCredentials {
  /** host:port of LND's gRPC listener. */
  socket: string;
  /** TLS certificate: a file path (PEM) or the PEM/base64 contents. */
  cert: string;
  /** Macaroon: a file path or the hex/base64 contents. */
  macaroon: string;
}

async function readMaybeFile(value: string, what: string): Promise<Buffer | string> {
  if (
    value.startsWith('/') ||
    value.startsWith('./') ||
    value.startsWith('~') ||
    /\.(cert|pem|macaroon)$/.test(value)
  ) {
    try {
      return await readFile(value.replace(/^~(?=\/)/, process.env['HOME'] ?? '~'));
    } catch (err) {
      throw new ConfigError(`cannot read the LND ${what} at ${value}: ${(err as Error).message}`);
    }
  }
  return value;
}

/** Builds an authenticated ln-service handle; connecting is lazy, so this does not touch the network. */
export async function connectLnd(creds: LndCredentials): Promise<AuthenticatedLnd> {
  if (!/^[^:\s]+:\d{1,5}$/.test(creds.socket))
    throw new ConfigError(`LND socket must be host:port, got "${creds.socket}"`);
  const cert = await readMaybeFile(creds.cert, 'TLS certificate');
  const macaroon = await readMaybeFile(creds.macaroon, 'macaroon');
  const certB64 = Buffer.isBuffer(cert)
    ? cert.toString('base64')
    : cert.includes('BEGIN CERTIFICATE')
      ? Buffer.from(cert).toString('base64')
      : cert;
  const macB64 = Buffer.isBuffer(macaroon)
    ? macaroon.toString('base64')
    : /^[0-9a-f]+$/i.test(macaroon)
      ? Buffer.from(macaroon, 'hex').toString('base64')
      : macaroon;
  const { lnd } = authenticatedLndGrpc({ socket: creds.socket, cert: certB64, macaroon: macB64 });
  return lnd;
}
