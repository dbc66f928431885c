import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AuthenticatedLnd } from 'lightning';
import { ConfigError } from '../../domain/errors.js';

/*
 * ln-service's `authenticatedLndGrpc` parses all twelve of LND's service protos up front (most of
 * them import lightning.proto, parsed again each time): about a second of CPU at every start,
 * for services the gateway never calls (autopilot, watchtowers, wallet kit...). The handle built
 * here is the same object, from the same package's builders (lightning, the gRPC layer of
 * ln-service, pinned to its version), but each service is built on first use.
 */
const require = createRequire(import.meta.url);
interface GrpcServices {
  protoFiles: Record<string, string>;
  packageTypes: Record<string, string>;
  serviceTypes: Record<string, string>;
  grpcSslCipherSuites: string;
}
const grpcServices = require('lightning/grpc/grpc_services.json') as GrpcServices;
const grpcCredentials = require('lightning/lnd_grpc/grpc_credentials') as (creds: {
  cert: string;
  macaroon: string;
}) => { credentials: unknown };
const apiForProto = require('lightning/lnd_grpc/api_for_proto') as (args: {
  credentials: unknown;
  params: Record<string, number>;
  path: string;
  service: string;
  socket: string;
  type: string;
}) => unknown;
const protosDir = require.resolve('lightning/grpc/protos/lightning.proto').replace(/lightning\.proto$/, '');

/** An authenticated LND handle whose gRPC services are each built (proto parsed) on first access. */
function lazyLnd(socket: string, cert: string, macaroon: string): AuthenticatedLnd {
  const { credentials } = grpcCredentials({ cert, macaroon });
  // As ln-service does: LND's TLS needs these cipher suites in gRPC's environment.
  if (process.env['GRPC_SSL_CIPHER_SUITES'] !== grpcServices.grpcSslCipherSuites)
    process.env['GRPC_SSL_CIPHER_SUITES'] = grpcServices.grpcSslCipherSuites;
  const params = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };
  const lnd: Record<string, unknown> = {};
  for (const [key, service] of Object.entries(grpcServices.serviceTypes)) {
    let api: unknown;
    Object.defineProperty(lnd, key, {
      enumerable: true,
      get: () =>
        (api ??= apiForProto({
          credentials,
          params,
          service,
          path: protosDir + grpcServices.protoFiles[service]!,
          socket,
          type: grpcServices.packageTypes[service]!,
        })),
    });
  }
  return lnd as unknown as AuthenticatedLnd;
}

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
  return lazyLnd(creds.socket, certB64, macB64);
}
