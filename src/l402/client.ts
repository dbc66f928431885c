import { parsePaymentRequest } from 'ln-service';
import type { LightningBackend } from '../lightning/backend.js';
import { msat } from '../domain/msat.js';
import { parseChallenge } from './header.js';

/** A BOLT11 invoice's amount and payment hash, read offline; undefined when it does not parse. */
export function readInvoice(request: string): { amountMsat: bigint; paymentHash: string } | undefined {
  try {
    const p = parsePaymentRequest({ request });
    return { amountMsat: BigInt(p.mtokens ?? '0'), paymentHash: p.id };
  } catch {
    return undefined;
  }
}

/** Pays a BOLT11 invoice and returns its preimage (hex). */
export interface L402Payer {
  pay(invoice: string): Promise<{ preimage: string }>;
}

export class L402ClientError extends Error {
  constructor(
    readonly code: 'TOO_EXPENSIVE' | 'PAYMENT_FAILED' | 'BAD_CHALLENGE',
    message: string,
  ) {
    super(message);
    this.name = 'L402ClientError';
  }
}

/** Pays through an LND node (any LightningBackend), waiting for the final outcome. */
export function lndPayer(
  backend: LightningBackend,
  options: { maxFeeMsat?: bigint; timeoutMs?: number } = {},
): L402Payer {
  return {
    async pay(invoice) {
      const outcome = await backend.payInvoice({
        request: invoice,
        maxFeeMsat: msat(options.maxFeeMsat ?? 10_000n),
        timeoutMs: options.timeoutMs ?? 60_000,
      });
      if (outcome.status !== 'succeeded')
        throw new L402ClientError('PAYMENT_FAILED', `the payment is ${outcome.status}`);
      return { preimage: outcome.preimage };
    },
  };
}

/** Pays from an account on a Coulomb gateway, with an API key holding the `pay` scope. */
export function accountPayer(options: {
  gatewayUrl: string;
  accountId: string;
  apiKey: string;
  maxFeeMsat?: bigint;
  fetch?: typeof fetch;
}): L402Payer {
  const f = options.fetch ?? fetch;
  return {
    async pay(invoice) {
      const res = await f(
        `${options.gatewayUrl.replace(/\/$/, '')}/v1/accounts/${encodeURIComponent(options.accountId)}/payments`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ request: invoice, maxFeeMsat: String(options.maxFeeMsat ?? 10_000n) }),
        },
      );
      const body = (await res.json()) as {
        status?: string;
        preimage?: string;
        error?: { code: string; message: string };
      };
      if (body.status !== 'succeeded' || !body.preimage) {
        throw new L402ClientError(
          'PAYMENT_FAILED',
          body.error ? `${body.error.code}: ${body.error.message}` : `the payment is ${body.status}`,
        );
      }
      return { preimage: body.preimage };
    },
  };
}

export interface L402FetchOptions {
  payer: L402Payer;
  /** The most one challenge may cost; dearer ones are not paid (the 402 is returned). */
  maxCostMsat: bigint;
  fetch?: typeof fetch;
  /** Called with each payment made, for bookkeeping. */
  onPayment?: (info: { origin: string; invoice: string; amountMsat: bigint }) => void;
  /** The credentials cache (origin → `L402 mac:preimage`): pass a map to read them, e.g. to refund. */
  credentials?: Map<string, string>;
}

/**
 * A `fetch` that pays L402 challenges: on a 402 it pays the invoice (within maxCostMsat),
 * caches the credential per origin, and retries; when a cached credential is refused (expired,
 * credit used up) it pays the new challenge once. Usable as the `fetch` of the `openai` client.
 */
export function createL402Fetch(options: L402FetchOptions): typeof fetch {
  const base = options.fetch ?? fetch;
  const cache = options.credentials ?? new Map<string, string>();
  const l402fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    // The body may be sent twice: keep it.
    const body = request.body ? await request.arrayBuffer() : undefined;
    const origin = new URL(request.url).origin;
    const send = (auth: string | undefined): Promise<Response> => {
      const headers = new Headers(request.headers);
      if (auth) headers.set('authorization', auth);
      return base(request.url, {
        method: request.method,
        headers,
        signal: request.signal,
        ...(body !== undefined ? { body } : {}),
      });
    };
    const cached = cache.get(origin);
    const first = await send(cached);
    if (first.status !== 402) return first;
    const challenge = parseChallenge(first.headers.get('www-authenticate') ?? '');
    if (!challenge) return first;
    let amount: bigint;
    try {
      amount = BigInt(parsePaymentRequest({ request: challenge.invoice }).mtokens ?? '0');
    } catch {
      throw new L402ClientError('BAD_CHALLENGE', 'the challenge carries an invalid invoice');
    }
    if (amount > options.maxCostMsat) return first;
    await first.arrayBuffer().catch(() => undefined);
    const { preimage } = await options.payer.pay(challenge.invoice);
    options.onPayment?.({ origin, invoice: challenge.invoice, amountMsat: amount });
    const auth = `L402 ${challenge.macaroon}:${preimage}`;
    cache.set(origin, auth);
    return send(auth);
  };
  return l402fetch as typeof fetch;
}

export interface L402RefundResult {
  status: 'succeeded' | 'failed' | 'pending' | 'skipped';
  refundMsat: string;
  destination: 'invoice' | 'account';
  closedAt: number;
  paymentId?: string;
  transferId?: string;
  feeMsat?: string;
}

/**
 * Closes an L402 credential on a Coulomb proxy and gets its unused credit back, to a BOLT11
 * invoice (without an amount, or of exactly the refund) or to an account of that gateway.
 * Exactly once: closing again answers the first refund (its status as it stands now); the
 * credential is refused from the moment it is closed.
 */
export async function refundL402(options: {
  /** The proxy's origin, e.g. `http://127.0.0.1:8403`. */
  proxyUrl: string;
  service: string;
  /** The credential, `L402 <macaroon>:<preimage>`. */
  authorization: string;
  to: { invoice: string; maxFeeMsat?: bigint } | { accountId: string };
  fetch?: typeof fetch;
}): Promise<L402RefundResult> {
  const f = options.fetch ?? fetch;
  const body =
    'invoice' in options.to
      ? {
          invoice: options.to.invoice,
          ...(options.to.maxFeeMsat !== undefined ? { maxFeeMsat: String(options.to.maxFeeMsat) } : {}),
        }
      : { accountId: options.to.accountId };
  const res = await f(
    `${options.proxyUrl.replace(/\/$/, '')}/l402/refund?service=${encodeURIComponent(options.service)}`,
    {
      method: 'POST',
      headers: { authorization: options.authorization, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    },
  );
  const answer = (await res.json()) as L402RefundResult & { error?: { code: string; message: string } };
  if (!res.ok)
    throw new L402ClientError(
      'PAYMENT_FAILED',
      answer.error ? `${answer.error.code}: ${answer.error.message}` : `the refund answered ${res.status}`,
    );
  return answer;
}
