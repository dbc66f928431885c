import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * SAMPLE UPSTREAM — not a model. A tiny OpenAI-compatible server so that `npm start` has a paid
 * service to show and tests have a real upstream process: it answers with deterministic words,
 * streams them as SSE, and reports usage (one token per word) like OpenAI does.
 */
export interface SampleUpstreamOptions {
  port?: number;
  host?: string;
  /** Pause between streamed tokens. */
  tokenDelayMs?: number;
}

const WORDS =
  'lightning pays for every token this sample upstream streams back to you one word at a time'.split(' ');

function countTokens(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

function promptOf(body: Record<string, unknown>): string {
  if (Array.isArray(body['messages'])) {
    return (body['messages'] as { content?: unknown }[])
      .map((m) => (typeof m.content === 'string' ? m.content : ''))
      .join(' ');
  }
  if (typeof body['prompt'] === 'string') return body['prompt'];
  if (typeof body['input'] === 'string') return body['input'];
  if (Array.isArray(body['input'])) return (body['input'] as unknown[]).join(' ');
  return '';
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

export function startSampleUpstream(
  options: SampleUpstreamOptions = {},
): Promise<{ server: Server; url: string }> {
  const delay = options.tokenDelayMs ?? 20;
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) =>
      json(res, 400, { error: { message: (err as Error).message, type: 'invalid_request_error' } }),
    );
  });
  // Long streams must never be cut by a server-side timeout.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      return json(res, 200, {
        object: 'list',
        data: [
          { id: 'sample-small', object: 'model', owned_by: 'coulomb-sample' },
          { id: 'sample-large', object: 'model', owned_by: 'coulomb-sample' },
        ],
      });
    }
    if (req.method === 'GET' && path === '/health') return json(res, 200, { ok: true, sample: true });
    if (req.method !== 'POST') return json(res, 404, { error: { message: 'not found' } });
    const body = await readJson(req);
    const model = typeof body['model'] === 'string' ? body['model'] : 'sample-small';
    const promptTokens = countTokens(promptOf(body));
    if (path === '/v1/embeddings') {
      return json(res, 200, {
        object: 'list',
        model,
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      });
    }
    if (path !== '/v1/chat/completions' && path !== '/v1/completions')
      return json(res, 404, { error: { message: 'not found' } });
    const chat = path === '/v1/chat/completions';
    // Without a limit it talks on (200 words), as a real model would until its context runs out.
    const maxTokens = typeof body['max_tokens'] === 'number' ? body['max_tokens'] : 200;
    const n = Math.max(0, Math.min(maxTokens, 4096));
    const words = Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]!);
    const id = `sample-${Date.now()}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
    if (body['stream'] !== true) {
      const text = words.join(' ');
      return json(
        res,
        200,
        chat
          ? {
              id,
              object: 'chat.completion',
              created,
              model,
              choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'length' }],
              usage,
            }
          : {
              id,
              object: 'text_completion',
              created,
              model,
              choices: [{ index: 0, text, finish_reason: 'length' }],
              usage,
            },
      );
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    let closed = false;
    res.on('close', () => (closed = true));
    const chunk = (piece: Record<string, unknown>, finish: string | null) =>
      chat
        ? {
            id,
            object: 'chat.completion.chunk',
            created,
            model,
            choices: [{ index: 0, delta: piece, finish_reason: finish }],
          }
        : {
            id,
            object: 'text_completion',
            created,
            model,
            choices: [{ index: 0, text: piece['content'] ?? '', finish_reason: finish }],
          };
    if (chat) res.write(`data: ${JSON.stringify(chunk({ role: 'assistant', content: '' }, null))}\n\n`);
    for (let i = 0; i < words.length && !closed; i++) {
      res.write(`data: ${JSON.stringify(chunk({ content: (i ? ' ' : '') + words[i] }, null))}\n\n`);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    }
    if (closed) return;
    res.write(`data: ${JSON.stringify(chunk({}, 'length'))}\n\n`);
    const includeUsage =
      (body['stream_options'] as { include_usage?: boolean } | undefined)?.include_usage === true;
    if (includeUsage)
      res.write(
        `data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion', created, model, choices: [], usage })}\n\n`,
      );
    res.end('data: [DONE]\n\n');
  }

  return new Promise((resolve) => {
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({ server, url: `http://${options.host ?? '127.0.0.1'}:${port}` });
    });
  });
}
