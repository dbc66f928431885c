import type { Msat } from '../domain/msat.js';

export type StreamState = 'active' | 'paused' | 'stopped';

/**
 * Why a stream stopped: asked to; a cap (total or duration) was reached; the payer's funds or
 * policy refused the next chunk or payment; or inter-node payments kept failing.
 */
export type StopReason = 'requested' | 'cap_reached' | 'funds_exhausted' | 'policy_denied' | 'payment_failed';

/** How a stream accrues: a rational rate per time, or a price per metered unit. */
export type Rate =
  { kind: 'time'; rateMsat: Msat; perSeconds: number } | { kind: 'metered'; priceMsatPerUnit: Msat };

export interface Caps {
  maxTotalMsat?: Msat;
  maxDurationSeconds?: number;
}

/** Who is paid: an account of this gateway, or a remote node (optionally a recipient inbox there). */
export type StreamPayee = { accountId: string } | { nodePubkey: string; recipientId?: string };

export interface CreateStreamInput {
  payee: StreamPayee;
  /** Time streams: `rateMsat` per `perSeconds` (default 1). Exactly one of rateMsat and priceMsatPerUnit. */
  rateMsat?: Msat;
  perSeconds?: number;
  /** Metered streams: the price of one reported unit. */
  priceMsatPerUnit?: Msat;
  maxTotalMsat?: Msat;
  maxDurationSeconds?: number;
  /** Remote payees: seconds between keysends (default 1). */
  intervalSeconds?: number;
  /** Remote payees: smaller amounts carry to the next interval (default 1000 msat). */
  minPaymentMsat?: Msat;
  /** Local metered streams: the size of each prepaid chunk (default 1000 units). */
  prefundMsat?: Msat;
  memo?: string;
}

/** A stream as its parties see it: its terms as created, and where it stands. */
export interface PublicStream extends CreateStreamInput {
  id: string;
  payerAccountId: string;
  /** Set when the money stays inside the gateway (the payee named directly or through its inbox). */
  payeeAccountId?: string;
  mode: 'local' | 'remote';
  kind: Rate['kind'];
  state: StreamState;
  stopReason?: StopReason;
  /** The policy denial code or error code behind a stop that was not asked for. */
  stopCode?: string;
  stopMessage?: string;
  /** Whole seconds spent active (downtime of the gateway is not counted). */
  activeSeconds: number;
  /** Metered streams: units reported so far. */
  units?: bigint;
  /** What the stream owes by its terms so far (capped). */
  accruedMsat: Msat;
  /** Local: moved to the payee. Remote: sent, succeeded or still in flight. */
  paidMsat: Msat;
  /** accrued - paid: carried to the next tick or interval. */
  owedMsat: Msat;
  /** Remote: keysends started (the last sequence number). */
  payments?: number;
  createdAt: number;
  updatedAt: number;
  stoppedAt?: number;
}

/** A recipient endpoint on this gateway: remote payers stream to (our node, recipientId). */
export interface Inbox {
  recipientId: string;
  accountId: string;
  graceSeconds: number;
  createdAt: number;
}

/** What this gateway received of one incoming stream (by the payer's stream id). */
export interface IncomingStream {
  streamId: string;
  recipientId: string;
  accountId: string;
  totalMsat: Msat;
  payments: number;
  /** Highest sequence number seen; sequence numbers start at 1. */
  lastSeq: number;
  /** Sequence numbers below lastSeq that never arrived (tolerated, counted). */
  missingSeqs: number;
  firstPaymentAt: number;
  lastPaymentAt: number;
  lapsed: boolean;
}

export type StreamEvent =
  | { type: 'stream'; stream: PublicStream }
  | { type: 'stream_lapsed'; incoming: IncomingStream }
  | { type: 'stream_resumed'; incoming: IncomingStream };

export type StreamPublisher = (accountId: string, event: StreamEvent) => void;

/** Resolves a recipient id of this gateway to its account (implemented by StreamReceiver). */
export interface InboxDirectory {
  accountOf(recipientId: string): string | undefined;
}

/** One tick of the local scheduler, for benchmarks and monitoring. */
export interface TickStats {
  /** The tick's place on the 1 s grid (clock ms). */
  scheduledAt: number;
  startedAt: number;
  finishedAt: number;
  /** Active local streams visited. */
  streams: number;
  /** Ledger advances applied (streams that paid this tick). */
  advanced: number;
  /** Per paying stream: (clock when its advance was applied) - scheduledAt, in ms. */
  lagsMs: Float64Array;
  /** Resolves once everything this tick applied is durable. */
  durable: Promise<void>;
}
