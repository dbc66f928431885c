import { msat, type Msat } from '../domain/msat.js';
import type { ModelPricing, Service } from './config.js';

export const METERED_PATHS = new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings']);

/** A rough token count (about 4 characters a token), used only when the upstream reports none. */
export function estimateTokens(text: string): bigint {
  return BigInt(Math.ceil(text.length / 4));
}

export function pricingFor(service: Service, model: string | undefined): ModelPricing | undefined {
  return service.models?.get(model ?? '') ?? service.models?.get('*');
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

export function costOf(p: ModelPricing, promptTokens: bigint, completionTokens: bigint): Msat {
  return msat(promptTokens * p.inputPerTokenMsat + completionTokens * p.outputPerTokenMsat);
}

export function promptText(body: Record<string, unknown>): string {
  if (Array.isArray(body['messages'])) {
    return (body['messages'] as { content?: unknown }[])
      .map((m) =>
        typeof m.content === 'string' ? m.content : Array.isArray(m.content) ? JSON.stringify(m.content) : '',
      )
      .join('\n');
  }
  for (const k of ['prompt', 'input']) {
    const v = body[k];
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n');
  }
  return '';
}

/**
 * The most a request can cost: the prompt (estimated generously: twice the text estimate, and
 * never less than the whole body's size), plus the larger output limit times every completion it
 * asks for (`n`, `best_of`, one per prompt). Undefined when the request sets no output limit:
 * then the whole remaining credit is reserved.
 */
export function worstCase(
  p: ModelPricing,
  body: Record<string, unknown>,
  path: string,
  bodyBytes = 0,
): Msat | undefined {
  const text = estimateTokens(promptText(body)) * 2n;
  const whole = BigInt(Math.ceil(bodyBytes / 4));
  const prompt = (text > whole ? text : whole) + 16n;
  if (path === '/v1/embeddings') return costOf(p, prompt, 0n);
  const limits = [body['max_tokens'], body['max_completion_tokens']].filter(
    (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0,
  );
  if (limits.length === 0) return undefined;
  const count = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 1);
  const prompts = Array.isArray(body['prompt']) ? Math.max(1, (body['prompt'] as unknown[]).length) : 1;
  const completions = Math.max(count(body['n']), count(body['best_of'])) * prompts;
  return costOf(p, prompt, BigInt(Math.max(...limits)) * BigInt(completions));
}

/**
 * Follows an OpenAI SSE stream event by event: collects the usage chunk when the upstream sends
 * one and estimates output tokens from the deltas otherwise.
 */
export class StreamMeter {
  private buffer = '';
  outputChars = 0;
  usage: Usage | undefined;
  done = false;

  /** Splits off complete events (ending in a blank line); returns them, keeps the rest. */
  push(chunk: string): string[] {
    // Some servers end events with CRLF pairs: treat them as the blank line they are.
    this.buffer = (this.buffer + chunk).replace(/\r\n/g, '\n');
    const events: string[] = [];
    let i: number;
    while ((i = this.buffer.indexOf('\n\n')) >= 0) {
      const event = this.buffer.slice(0, i + 2);
      this.buffer = this.buffer.slice(i + 2);
      this.observe(event);
      events.push(event);
    }
    return events;
  }

  /** Whatever is left when the upstream ends (normally nothing). */
  rest(): string {
    const r = this.buffer;
    this.buffer = '';
    return r;
  }

  private observe(event: string): void {
    for (const line of event.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') {
        this.done = true;
        continue;
      }
      try {
        const obj = JSON.parse(data) as {
          usage?: Usage;
          choices?: { delta?: { content?: unknown }; text?: unknown }[];
        };
        if (obj.usage) this.usage = obj.usage;
        for (const c of obj.choices ?? []) {
          const piece =
            typeof c.delta?.content === 'string' ? c.delta.content : typeof c.text === 'string' ? c.text : '';
          this.outputChars += piece.length;
        }
      } catch {
        // Not JSON: nothing to meter.
      }
    }
  }

  estimatedOutputTokens(): bigint {
    return BigInt(Math.ceil(this.outputChars / 4));
  }
}

/** Whether an SSE event is the OpenAI stream's terminator, `data: [DONE]`. */
export function isDoneEvent(event: string): boolean {
  return event.split('\n').some((line) => line.startsWith('data:') && line.slice(5).trim() === '[DONE]');
}

/**
 * An SSE comment line (`: …`): SSE clients, the openai one included, skip comments, so the
 * proxy can tell the credential's final figure inside the stream without adding an event.
 */
export function sseComment(name: string, value: string): string {
  return `: ${name}=${value}\n\n`;
}

/**
 * A last, well-formed chunk and the terminator, for a stream cut when credit ran out;
 * `beforeDone` (e.g. an SSE comment) goes between the two.
 */
export function closingEvents(path: string, model: string | undefined, beforeDone = ''): string {
  const created = Math.floor(Date.now() / 1000);
  const chat = path === '/v1/chat/completions';
  const chunk = chat
    ? {
        id: 'l402-credit-exhausted',
        object: 'chat.completion.chunk',
        created,
        model: model ?? '',
        choices: [{ index: 0, delta: {}, finish_reason: 'length' }],
      }
    : {
        id: 'l402-credit-exhausted',
        object: 'text_completion',
        created,
        model: model ?? '',
        choices: [{ index: 0, text: '', finish_reason: 'length' }],
      };
  return `data: ${JSON.stringify(chunk)}\n\n${beforeDone}data: [DONE]\n\n`;
}
