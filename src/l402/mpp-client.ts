import { L402ClientError, readInvoice, type L402Payer } from './client.js';
import {
  challengeFromParams,
  decodeRequest,
  formatCredential,
  hashOf,
  parseReceipt,
  type MppChallenge,
  type MppIntent,
  type MppPayload,
  type MppReceipt,
} from './mpp.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

export interface MppFetchOptions {
  payer: L402Payer;
  /** The most one challenge may cost (a charge's price, a session's deposit); dearer ones are not paid. */
  maxCostMsat: bigint;
  /** The intent to use when the server offers both (default: charge). */
  intent?: MppIntent;
  /** For sessions: an invoice without an amount, for the refund of what is left at close. */
  returnInvoice?: () => Promise<string>;
  fetch?: typeof fetch;
  onPayment?: (info: { origin: string; invoice: string; amountMsat: bigint; intent: MppIntent }) => void;
}

export interface MppCloseAnswer {
  status: string;
  refundSats: number;
  refundMsat?: string;
  refundStatus: string;
  refundPending?: boolean;
}

export interface MppClient {
  /** A `fetch` that pays `Payment` (MPP, Lightning) challenges. */
  fetch: typeof fetch;
  /** The receipt of the last paid response. */
  lastReceipt(): MppReceipt | undefined;
  /** Closes the open sessions (with `url`'s origin, or all): the unused deposit is refunded. */
  close(url?: string): Promise<MppCloseAnswer[]>;
}

interface Session {
  origin: string;
  /** A URL of the service, for the close request. */
  url: string;
  challenge: MppChallenge;
  sessionId: string;
  preimage: string;
}

/** The `Payment` challenges of a response, with the Lightning method. */
export function paymentChallenges(res: Response): MppChallenge[] {
  const out: MppChallenge[] = [];
  for (const c of parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '')) {
    if (c.scheme.toLowerCase() !== 'payment') continue;
    const ch = challengeFromParams(c.params);
    if (ch && ch.method === 'lightning') out.push(ch);
  }
  return out;
}

/**
 * An MPP client: on a 402 with a `Payment` challenge of the chosen intent it checks the invoice
 * (its amount within `maxCostMsat` and equal to what the request states, its hash the one the
 * request names, the challenge unexpired), pays it and retries with the credential. A charge
 * credential is never reused (each request pays its own); a session is opened once per origin
 * and service and drawn on with bearer credentials until its deposit runs out (then a new one
 * is opened), and `close()` ends it with a refund to `returnInvoice`.
 */
export function createMppClient(options: MppFetchOptions): MppClient {
  const base = options.fetch ?? fetch;
  const want = options.intent ?? 'charge';
  const sessions: Session[] = [];
  let receipt: MppReceipt | undefined;

  const send = (
    request: Request,
    body: ArrayBuffer | undefined,
    auth: string | undefined,
    url = request.url,
  ): Promise<Response> => {
    const headers = new Headers(request.headers);
    if (auth) headers.set('authorization', auth);
    return base(url, {
      method: request.method,
      headers,
      signal: request.signal,
      ...(body !== undefined ? { body } : {}),
    });
  };
  const credential = (challenge: MppChallenge, payload: MppPayload): string =>
    formatCredential({ challenge, payload });
  const keep = (res: Response): Response => {
    const r = parseReceipt(res.headers.get('payment-receipt'));
    if (r && res.ok) receipt = r;
    return res;
  };

  const mppFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const body = request.body ? await request.arrayBuffer() : undefined;
    const origin = new URL(request.url).origin;
    const open = want === 'session' ? sessions.findLast((s) => s.origin === origin) : undefined;
    const first = await send(
      request,
      body,
      open
        ? credential(open.challenge, { action: 'bearer', sessionId: open.sessionId, preimage: open.preimage })
        : undefined,
    );
    if (first.status !== 402) return keep(first);
    const offer = paymentChallenges(first).find((c) => c.intent === want);
    const details = offer ? decodeRequest(offer.request) : undefined;
    if (!offer || !details) return first;
    if (offer.expires !== undefined && Date.parse(offer.expires) <= Date.now())
      throw new L402ClientError('BAD_CHALLENGE', 'the Payment challenge has expired');
    const invoice = want === 'charge' ? details.methodDetails?.invoice : details.depositInvoice;
    const hash = want === 'charge' ? details.methodDetails?.paymentHash : details.paymentHash;
    const stated = want === 'charge' ? details.amount : (details.depositAmount ?? details.amount);
    if (!invoice || !hash || !/^[0-9]+$/.test(stated))
      throw new L402ClientError('BAD_CHALLENGE', 'the Payment challenge has no invoice');
    const parsed = readInvoice(invoice);
    if (!parsed) throw new L402ClientError('BAD_CHALLENGE', 'the challenge carries an invalid invoice');
    const amount = parsed.amountMsat;
    // The invoice is what gets paid: it must be what the request states, and within the cap.
    if (parsed.paymentHash !== hash || amount !== BigInt(stated) * 1000n)
      throw new L402ClientError('BAD_CHALLENGE', 'the invoice does not match the Payment challenge');
    if (amount > options.maxCostMsat) return first;
    await first.arrayBuffer().catch(() => undefined);
    const returnInvoice = want === 'session' ? await options.returnInvoice?.() : undefined;
    const { preimage } = await options.payer.pay(invoice);
    if (hashOf(preimage.toLowerCase()) !== hash)
      throw new L402ClientError('PAYMENT_FAILED', 'the payment returned a preimage of another hash');
    options.onPayment?.({ origin, invoice, amountMsat: amount, intent: want });
    if (want === 'charge') return keep(await send(request, body, credential(offer, { preimage })));
    const session: Session = { origin, url: request.url, challenge: offer, sessionId: hash, preimage };
    sessions.push(session);
    return keep(
      await send(
        request,
        body,
        credential(offer, { action: 'open', preimage, ...(returnInvoice ? { returnInvoice } : {}) }),
      ),
    );
  };

  return {
    fetch: mppFetch as typeof fetch,
    lastReceipt: () => receipt,
    async close(url) {
      const origin = url ? new URL(url).origin : undefined;
      const answers: MppCloseAnswer[] = [];
      for (const s of sessions.filter((x) => origin === undefined || x.origin === origin)) {
        const res = await base(s.url, {
          method: 'GET',
          headers: {
            authorization: credential(s.challenge, {
              action: 'close',
              sessionId: s.sessionId,
              preimage: s.preimage,
            }),
          },
        });
        if (res.status !== 200)
          throw new L402ClientError('PAYMENT_FAILED', `closing the session answered ${res.status}`);
        answers.push((await res.json()) as MppCloseAnswer);
        sessions.splice(sessions.indexOf(s), 1);
      }
      return answers;
    },
  };
}
