import type { Command } from 'commander';

/** A thin client of the gateway's HTTP API for the CLI. */
export class ApiClient {
  constructor(
    private readonly url: string,
    private readonly key: string | undefined,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.url.replace(/\/$/, '') + path, {
        method,
        headers: {
          ...(this.key ? { authorization: `Bearer ${this.key}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new CliError(
        `cannot reach the gateway at ${this.url}: ${(err as Error).message} (is it running? set --url or COULOMB_URL)`,
      );
    }
    const text = await res.text();
    const json: unknown = text ? JSON.parse(text) : {};
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } }).error;
      throw new CliError(`${res.status} ${e?.code ?? 'ERROR'}: ${e?.message ?? text}`);
    }
    return json;
  }
}

export class CliError extends Error {}

type Opts = { url?: string; key?: string };

/** The API client for a command, from its --url/--key options or the environment. */
export function client(cmd: Command): ApiClient {
  const o = cmd.optsWithGlobals<Opts>();
  return new ApiClient(
    o.url ?? process.env['COULOMB_URL'] ?? 'http://127.0.0.1:8402',
    o.key ?? process.env['COULOMB_API_KEY'] ?? process.env['COULOMB_OPERATOR_KEY'],
  );
}

export const print = (value: unknown): void =>
  void process.stdout.write(JSON.stringify(value, null, 2) + '\n');
