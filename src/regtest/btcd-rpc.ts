import { request } from 'node:https';
import { readFileSync } from 'node:fs';

/** Minimal JSON-RPC client for btcd (TLS with its self-signed certificate). */
export class BtcdRpc {
  private id = 0;
  constructor(
    private readonly port: number,
    private readonly certFile: string,
    private readonly user: string,
    private readonly pass: string,
  ) {}

  call<T>(method: string, params: unknown[] = []): Promise<T> {
    const body = JSON.stringify({ jsonrpc: '1.0', id: ++this.id, method, params });
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          method: 'POST',
          path: '/',
          ca: readFileSync(this.certFile),
          servername: 'localhost',
          checkServerIdentity: () => undefined,
          auth: `${this.user}:${this.pass}`,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('aborted', () => reject(new Error(`btcd ${method}: connection closed mid-reply`)));
          res.on('error', reject);
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              const parsed = JSON.parse(text) as { result: T; error: { message: string } | null };
              if (parsed.error) reject(new Error(`btcd ${method}: ${parsed.error.message}`));
              else resolve(parsed.result);
            } catch {
              reject(new Error(`btcd ${method}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`btcd ${method}: timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
