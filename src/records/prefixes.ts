/**
 * Every side-record key prefix of the code base, in one table: who owns it and what it holds.
 * Side records live beside the ledger (`Ledger.putRecords` / `getRecord` / `listRecords`); a
 * listing by prefix returns every record whose key starts with it, so no prefix may start with
 * another one (each is one lowercase word ended by `!`, and every prefix is unique: checked by
 * test/unit/records/prefixes.test.ts, which also checks that every prefix written in src/ is here).
 *
 * `memory` says what a running gateway keeps of it (docs/ARCHITECTURE.md, "What is in memory"):
 * `live` — loaded at start because it is open work; `lru` — read on demand into a bounded cache;
 * `disk` — read on demand, never cached beyond one request; `index` — index entries only.
 */
export interface PrefixEntry {
  readonly prefix: string;
  readonly owner: string;
  readonly meaning: string;
  readonly memory: 'live' | 'lru' | 'disk' | 'index';
}

const entry = (
  prefix: string,
  owner: string,
  memory: PrefixEntry['memory'],
  meaning: string,
): PrefixEntry => ({ prefix, owner, memory, meaning });

/** The entries of a `RecordIndex` collection (src/ledger/record-index.ts) named `name`. */
const indexed = (name: string, owner: string, what: string): PrefixEntry[] => [
  entry(`${name}!`, owner, 'lru', `${what} by id (open ones in memory, a cache of recent closed ones)`),
  entry(`${name}open!`, owner, 'live', `${what} not yet final: what a start loads`),
  entry(`${name}at!`, owner, 'index', `${what} by creation time (paged listings)`),
  entry(`${name}by!`, owner, 'index', `${what} by account and creation time (paged listings)`),
  entry(`${name}idx!`, owner, 'disk', `mark: the ${what} indexes cover every item`),
];

export const PREFIXES = {
  // ledger
  idem: entry(
    'idem!',
    'src/ledger/idempotency.ts',
    'lru',
    'client idempotency key → fingerprint, ref (32 days, then deleted by the sweep)',
  ),
  idemAt: entry(
    'idemat!',
    'src/ledger/idempotency.ts',
    'index',
    'client keys by time: idemat!<at, 15 digits>!<account>!<key> (the retention sweep)',
  ),
  idemIndexMark: entry(
    'idemidx!',
    'src/ledger/idempotency.ts',
    'disk',
    'mark: idemat! covers every idem! record (a cursor until done)',
  ),
  ledgerMark: entry('ledgermark!', 'src/ledger/ledger.ts', 'disk', 'one-off upgrades of the ledger done'),
  // payments (converted by their owners)
  // (payments and approvals are the `pay` and `appr` collections, INDEXED)
  paymentAttempt: entry(
    'payhash!',
    'src/payments/payment-store.ts',
    'index',
    'every attempt at a payment hash (one attempt per hash)',
  ),
  invoice: entry(
    'inv!',
    'src/payments',
    'lru',
    'an invoice of an account, by payment hash; settled internally, its payer',
  ),
  invoiceBy: entry('invby!', 'src/payments', 'index', 'invoices by account'),
  invoiceExpiry: entry('invexp!', 'src/payments', 'index', 'invoices by expiry (pruning)'),
  invoiceChallengeExpiry: entry(
    'invexpc!',
    'src/payments/invoice-store.ts',
    'index',
    'open L402 challenges by expiry (pruning; apart from reconciliation)',
  ),
  invoiceIndexMark: entry('invidx!', 'src/payments', 'disk', 'mark: the invoice indexes are built'),
  cancelIntent: entry(
    'invcancel!',
    'src/payments',
    'live',
    'intent to cancel in LND an invoice settled internally',
  ),
  // l402
  l402Revocation: entry('l402rev!', 'src/l402/revocations.ts', 'live', 'a revoked L402 token id'),
  credentialClose: entry(
    'credclose!',
    'src/l402/refund.ts',
    'disk',
    'a prepaid credential closed by its holder: the refund amount and destination',
  ),
  mppSession: entry(
    'mppses!',
    'src/proxy/mpp.ts',
    'lru',
    'an MPP session: service, return invoice, open or closed',
  ),
  // proxy
  proxyService: entry(
    'proxysvc!',
    'src/proxy/catalog.ts',
    'live',
    'a paid service added or changed by the admin API (or a removal mark for a seeded one)',
  ),
  proxyStats: entry(
    'proxystat!',
    'src/proxy/stats.ts',
    'disk',
    'per-service counters: proxystat!<service>!<h|d>!<start> (hourly 31 days, daily 2 years)',
  ),
  subscription: entry(
    'sub!',
    'src/proxy/subscriptions.ts',
    'lru',
    "a subscription credential's period and use (sub!<token id>): period, used, renewals, pending invoices",
  ),
  // policy
  policy: entry('pol!', 'src/policy/registry.ts', 'lru', "an account's policy (rules, tier)"),
  audit: entry(
    'aud!',
    'src/policy/audit.ts',
    'disk',
    'a policy decision: aud!<account>!<at, 15 digits>!<id>',
  ),
  // auth
  consoleSession: entry(
    'csess!',
    'src/http/console-session.ts',
    'lru',
    'a console session on a shared store, by the SHA-256 of its token (CSRF token, expiry); at most 32',
  ),
  apiKey: entry('key!', 'src/auth/api-keys.ts', 'lru', 'an API key record (hashed secret) by key id'),
  apiKeyBy: entry('keyby!', 'src/auth/api-keys.ts', 'index', "an account's key ids: keyby!<account>!<id>"),
  apiKeyIndexMark: entry('keyidx!', 'src/auth/api-keys.ts', 'disk', 'mark: keyby! covers every key'),
  // escrow (and the `escrow` collection, INDEXED)
  receiptKey: entry(
    'rkey!',
    'src/escrow/service.ts',
    'lru',
    "an account's receipt public key: rkey!<account>!<pubkey>",
  ),
  // market (and the `task` collection, INDEXED)
  reputation: entry('rep!', 'src/market/tasks.ts', 'lru', "an account's reputation"),
  offer: entry(
    'offer!',
    'src/market/registry.ts',
    'live',
    'an advertised service offer (withdrawn ones are deleted)',
  ),
  // streams (outgoing streams are the `stream` collection, INDEXED)
  streamInbox: entry('streaminbox!', 'src/streams/receiver.ts', 'live', 'a receiving inbox of an account'),
  streamIncoming: entry(
    'streamin!',
    'src/streams/receiver.ts',
    'lru',
    'an incoming stream seen by the receiver (flowing ones in memory; lapsed ones read when paid again, a cache of recent ones)',
  ),
  streamIncomingOpen: entry(
    'streaminopen!',
    'src/streams/receiver.ts',
    'live',
    'an incoming stream still flowing (not lapsed): what a start loads',
  ),
  streamIncomingBy: entry(
    'streaminby!',
    'src/streams/receiver.ts',
    'index',
    'incoming streams by account: streaminby!<account>!<first payment, 15 digits>!<id>',
  ),
  streamIncomingIndexMark: entry(
    'streaminidx!',
    'src/streams/receiver.ts',
    'disk',
    'mark: the incoming stream indexes cover every summary',
  ),
  // devices (and the `dsale`, `dact` collections, INDEXED)
  device: entry('dev!', 'src/devices/registry.ts', 'live', 'a registered device (key, account, counters)'),
  enrollment: entry(
    'denr!',
    'src/devices/registry.ts',
    'disk',
    'a one-time enrollment code, by its hash (read when used)',
  ),
  deviceEvent: entry(
    'devevt!',
    'src/devices/events.ts',
    'live',
    'the event outbox: devevt!<device>!<n> until expiry',
  ),
  deviceKept: entry(
    'didem!',
    'src/devices/bridge.ts',
    'disk',
    'device answers kept before device keys used idem!: read when a key is retried, pruned after 32 days',
  ),
  // energy market (and the `eorder`, `etrade` collections, INDEXED)
  energyLastPrice: entry(
    'elast!',
    'src/energy/market.ts',
    'disk',
    "a zone's last trade price (read when its book is shown)",
  ),
  energyProductLastPrice: entry(
    'eplast!',
    'src/energy/market.ts',
    'disk',
    "a product's last trade price and time (read when its book is shown; the book itself lives while it has orders)",
  ),
} as const satisfies Record<string, PrefixEntry>;

/** The collections kept with a `RecordIndex` (five prefixes each, see `indexed`), by name. */
export const INDEXED = {
  pay: { owner: 'src/payments/payment-store.ts', what: 'outbound payments' },
  appr: { owner: 'src/payments/payment-store.ts', what: 'approvals of payments' },
  escrow: { owner: 'src/escrow', what: 'escrows' },
  task: { owner: 'src/market/tasks.ts', what: 'tasks' },
  dsale: { owner: 'src/devices/commerce.ts', what: 'device sales' },
  dact: { owner: 'src/devices/commerce.ts', what: 'actuations' },
  stream: { owner: 'src/streams/store.ts', what: 'outgoing streams' },
  auction: { owner: 'src/market/auctions.ts', what: 'task auctions' },
  eorder: { owner: 'src/energy/codec.ts', what: 'energy orders' },
  etrade: { owner: 'src/energy/codec.ts', what: 'energy trades' },
} as const;

/** Every entry of the table, the indexed collections' prefixes included. */
export const ALL_PREFIXES: readonly PrefixEntry[] = [
  ...Object.values(PREFIXES),
  ...Object.entries(INDEXED).flatMap(([name, c]) => indexed(name, c.owner, c.what)),
];

/** The key prefix a name of the table stands for. */
export function prefix(name: keyof typeof PREFIXES): string {
  return PREFIXES[name].prefix;
}
