/**
 * Fills a stopped gateway's data dir with history for the soak benchmark (bench/soak.ts), OFFLINE,
 * through the gateway's own modules and write paths: the store is opened by `openAccounts` exactly
 * as `coulomb start` opens it (LevelDB, `Ledger.open(new LevelLedgerStore(db))`, payments, policies,
 * the L402 authority of the data dir), and every kind of history is made by the call the gateway
 * makes for it. Lightning is the in-memory stand-in (bench/soak-lightning.ts over the unit tests'
 * test/support/fake-lightning.ts: requests are base64 JSON, no BOLT11 signing): the invoices and
 * payments it makes up are unknown to the real LND the measured gateway starts against, so every
 * Lightning payment written here is a FAILED one (LND's "not found" agrees with it at start;
 * a succeeded one would be a reconciliation mismatch that freezes its account).
 *
 * The ledger's synchronous steps go in waves (one `ensure` of the wave's accounts, the steps, one
 * wait for durability); the async payments/L402 calls run many at once so their durable waits share
 * group-commit batches.
 *
 * One small function per kind of history, so each can follow its write path when that changes.
 * The calls into the ledger/payments API are marked `API:` for whoever adapts them.
 */
import { pino } from 'pino';
import { DEFAULTS } from '../src/config/load.js';
import { msat } from '../src/domain/msat.js';
import { L402Gate, type ServiceTerms } from '../src/l402/gate.js';
import type { Ledger } from '../src/ledger/ledger.js';
import { openAccounts } from '../src/main.js';
import type { PaymentsService } from '../src/payments/service.js';
import type { PolicyRegistry } from '../src/policy/registry.js';
import { tierPolicy } from '../src/policy/tiers.js';
import { fakeRequest } from '../test/support/fake-lightning.js';
import { SoakLightning } from './soak-lightning.js';

/** How much history, at scale 1 the figures of issue #12's acceptance. */
export interface SoakCounts {
  agents: number;
  /** Internal posted transfers between agents. */
  transfers: number;
  /** L402 credentials bought (challenge, then the paid credential presented) and used. */
  credentials: number;
  /** Metered requests charged to each credential. */
  usesPerCredential: number;
  /** Final payments: half internal (succeeded, each settling an agent's invoice), half Lightning (failed). */
  payments: number;
  /** Settled invoices: the internal payments' ones plus this many more settled over Lightning. */
  invoices: number;
  /** L402 challenges issued and never paid (unexpired). */
  challenges: number;
}

export function countsFor(scale: number): SoakCounts {
  const n = (x: number): number => Math.max(10, Math.round(x * scale));
  const payments = n(1_000_000);
  return {
    agents: n(100_000),
    transfers: n(10_000_000),
    credentials: n(1_000_000),
    usesPerCredential: 2,
    payments,
    // With the internal payments' invoices, settled invoices reach the payments' count.
    invoices: payments - Math.floor(payments / 2),
    challenges: n(1_000_000),
  };
}

export interface PhaseTiming {
  phase: string;
  count: number;
  seconds: number;
  perSec: number;
}

/** The service `npm start` sells through its L402 proxy (src/proxy/config.ts sampleProxyConfig). */
const SERVICE: ServiceTerms = {
  name: 'sample-llm',
  creditMsat: msat(1_000_000),
  capabilities: ['chat', 'completions', 'embeddings'],
  lifetimeSeconds: 86_400,
};
const REVENUE = `svc:${SERVICE.name}`;
/** Calls of the payments/L402 paths in flight at once: their durable waits share group-commit batches. */
const INFLIGHT = 2000;
/** Items per wave of the ledger's synchronous steps: one `ensure`, then the steps, then one wait. */
const WAVE = 10_000;

interface Ctx {
  ledger: Ledger;
  payments: PaymentsService;
  gate: L402Gate;
  fake: SoakLightning;
  agents: string[];
}

/** Between chunks (nothing in flight) the stand-in Lightning forgets what it made. */
function forget(ctx: Ctx): void {
  ctx.fake.invoices.clear();
  ctx.fake.sent.clear();
  ctx.fake.canceled.length = 0;
}

/**
 * Runs job(0..n-1) with `inflight` at a time, in chunks; between chunks (nothing in flight) the
 * stand-in Lightning forgets what it made, so this process does not grow with the history it writes.
 */
async function pool(ctx: Ctx, n: number, inflight: number, job: (i: number) => Promise<void>): Promise<void> {
  const CHUNK = 20_000;
  for (let start = 0; start < n; start += CHUNK) {
    const end = Math.min(n, start + CHUNK);
    let next = start;
    await Promise.all(
      Array.from({ length: Math.min(inflight, end - start) }, async () => {
        while (next < end) await job(next++);
      }),
    );
    forget(ctx);
  }
}

/** Runs `wave(from, to)` over 0..n-1 in waves of `WAVE` items, one after the other. */
async function waves(ctx: Ctx, n: number, wave: (from: number, to: number) => Promise<void>): Promise<void> {
  for (let from = 0; from < n; from += WAVE) {
    await wave(from, Math.min(n, from + WAVE));
    forget(ctx);
  }
}

/** Agent accounts, each with the L3 policy (no daily limit) and funded by the operator. */
async function agents(ctx: Ctx, n: number, policies: PolicyRegistry): Promise<void> {
  const ids = Array.from({ length: n }, (_, i) => `soak-agent-${i}`);
  for (let start = 0; start < n; start += WAVE) {
    const wave = ids.slice(start, start + WAVE);
    // API: a chosen id is looked up first (`ensure`), then created in one synchronous step.
    await ctx.ledger.ensure({ accounts: wave });
    for (const id of wave) ctx.ledger.createAccount({ id, kind: 'agent', name: id });
    ctx.agents.push(...wave);
  }
  await ctx.ledger.flush();
  await pool(ctx, n, INFLIGHT, async (i) => {
    const id = ctx.agents[i]!;
    await policies.set(id, tierPolicy('L3'));
    await ctx.payments.fund(id, msat(10n ** 12n));
  });
}

/**
 * Internal posted transfers agent → agent, group-committed: a wave of `WAVE` is one `ensure` of
 * all its accounts, then the synchronous transfers, then one wait for their durability.
 */
async function internalTransfers(ctx: Ctx, n: number): Promise<void> {
  const a = ctx.agents;
  const pair = (i: number): [string, string] => {
    const from = a[i % a.length]!;
    const to = a[(i * 7 + 1) % a.length]!;
    return [from, to === from ? a[(i + 1) % a.length]! : to];
  };
  for (let done = 0; done < n; done += WAVE) {
    const end = Math.min(n, done + WAVE);
    const accounts = new Set<string>();
    for (let i = done; i < end; i++) for (const id of pair(i)) accounts.add(id);
    // API: `ensure` the wave's accounts, then the synchronous check-and-apply of each transfer.
    await ctx.ledger.ensure({ accounts: [...accounts] });
    const wave: Promise<void>[] = [];
    for (let i = done; i < end; i++) {
      const [from, to] = pair(i);
      wave.push(
        ctx.ledger.transfer({
          debitAccountId: from,
          creditAccountId: to,
          amount: msat(1000),
          code: 'transfer',
        }).durable,
      );
    }
    await Promise.all(wave);
  }
}

/**
 * L402 credentials bought and used: the gate's challenge (invoice + macaroon, the service invoice
 * recorded by payments), the credential presented with its preimage (the gate credits the
 * `l402:<tokenId>` account once, key `invoice:<hash>`, and writes the settled invoice record),
 * then metered requests as the proxy charges them (a pending `l402_usage` reservation of the worst
 * case, posted at the cost used; src/proxy/server.ts).
 */
async function l402Credentials(ctx: Ctx, n: number, uses: number): Promise<void> {
  // API: async read of an account.
  if (!(await ctx.ledger.getAccount(REVENUE)))
    await ctx.ledger.createAccount({ id: REVENUE, kind: 'service', name: `revenue of ${SERVICE.name}` })
      .durable;
  await waves(ctx, n, async (from, to) => {
    // Bought: challenges and first presentations, the wave's calls all in flight at once.
    const credentials = await Promise.all(
      Array.from({ length: to - from }, async () => {
        const c = await ctx.gate.challenge(SERVICE);
        const { paymentHash } = await ctx.fake.decodeInvoice(c.invoice);
        const preimage = ctx.fake.invoices.get(paymentHash)!.preimage!;
        const auth = await ctx.gate.authorize(`L402 ${c.macaroon}:${preimage}`, SERVICE.name);
        if (!auth.ok) throw new Error(`a paid credential was refused: ${auth.message}`);
        return auth.accountId;
      }),
    );
    // Used: the proxy's charge per request, a wave at a time (one `ensure`, synchronous steps).
    for (let u = 0; u < uses; u++) {
      // API: `ensure` the credential accounts, then synchronous transfer/post.
      await ctx.ledger.ensure({ accounts: [REVENUE, ...credentials] });
      const held = credentials.map((accountId) =>
        ctx.ledger.transfer({
          debitAccountId: accountId,
          creditAccountId: REVENUE,
          amount: msat(50_000),
          code: 'l402_usage',
          pending: true,
          memo: '/v1/chat/completions',
        }),
      );
      await Promise.all(held.map((r) => r.durable));
      await Promise.all(held.map((r) => ctx.ledger.post(r.value.id, msat(20_000)).durable));
    }
  });
}

/** Invoices of agents settled over Lightning: created by payments, settled by LND's update. */
async function lightningInvoices(ctx: Ctx, n: number): Promise<void> {
  const a = ctx.agents;
  await pool(ctx, n, INFLIGHT, async (i) => {
    const inv = await ctx.payments.createInvoice(a[i % a.length]!, { amountMsat: msat(5000) });
    await ctx.payments.onInvoice(ctx.fake.settle(inv.paymentHash));
  });
}

/**
 * Final payments. Even ones: an agent pays another agent's invoice (an internal payment, succeeded;
 * the invoice settled internally, its LND twin canceled). Odd ones: a Lightning payment to another
 * node that fails (reserved, sent, voided).
 */
async function finalPayments(ctx: Ctx, n: number): Promise<void> {
  const a = ctx.agents;
  ctx.fake.behaviour = (hash) => ({
    status: 'failed',
    paymentHash: hash,
    reason: 'NO_ROUTE',
    message: 'no route',
  });
  await pool(ctx, n, INFLIGHT, async (i) => {
    const payer = a[i % a.length]!;
    if (i % 2 === 0) {
      const inv = await ctx.payments.createInvoice(a[(i + 1) % a.length]!, { amountMsat: msat(2000) });
      const p = await ctx.payments.pay(payer, { request: inv.request });
      if (p.status !== 'succeeded') throw new Error(`internal payment ${p.status}`);
    } else {
      const p = await ctx.payments.pay(payer, { request: fakeRequest({ amountMsat: 3000n }).request });
      if (p.status !== 'failed') throw new Error(`lightning payment ${p.status}`);
    }
  });
}

/** L402 challenges never paid: what a challenge flood leaves behind (unexpired: an hour to live). */
async function unpaidChallenges(ctx: Ctx, n: number): Promise<void> {
  await pool(ctx, n, INFLIGHT, async () => {
    await ctx.gate.challenge(SERVICE);
  });
}

/** Populates `dataDir` (the gateway must be stopped); reports each phase as it ends. */
export async function populate(
  dataDir: string,
  counts: SoakCounts,
  report: (t: PhaseTiming) => void,
): Promise<PhaseTiming[]> {
  const fake = new SoakLightning();
  const stack = await openAccounts({ ...DEFAULTS, dataDir }, fake, pino({ level: 'silent' }));
  const s = stack.services;
  const ctx: Ctx = {
    ledger: s.ledger,
    payments: s.payments,
    gate: new L402Gate(s.l402!.authority, fake, s.payments),
    fake,
    agents: [],
  };
  const timings: PhaseTiming[] = [];
  const phase = async (name: string, count: number, run: () => Promise<void>): Promise<void> => {
    const t0 = process.hrtime.bigint();
    await run();
    await ctx.ledger.flush();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const t = {
      phase: name,
      count,
      seconds: Number(seconds.toFixed(1)),
      perSec: Math.round(count / seconds),
    };
    timings.push(t);
    report(t);
  };
  try {
    await phase('agents (funded, L3 policy)', counts.agents, () => agents(ctx, counts.agents, s.policies));
    await phase('internal transfers', counts.transfers, () => internalTransfers(ctx, counts.transfers));
    await phase(`L402 credentials (x${counts.usesPerCredential} uses)`, counts.credentials, () =>
      l402Credentials(ctx, counts.credentials, counts.usesPerCredential),
    );
    await phase('invoices settled over Lightning', counts.invoices, () =>
      lightningInvoices(ctx, counts.invoices),
    );
    await phase('final payments (internal / failed)', counts.payments, () =>
      finalPayments(ctx, counts.payments),
    );
    // Last, so that they are still unexpired when the gateway starts on them.
    await phase('unpaid L402 challenges', counts.challenges, () => unpaidChallenges(ctx, counts.challenges));
    // The cancels of internally paid invoices complete in the background: let them land.
    await new Promise((r) => setTimeout(r, 200));
    await ctx.ledger.flush();
  } finally {
    await stack.close();
  }
  return timings;
}
