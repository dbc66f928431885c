import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { PostgresPaymentHashClaims } from './storage/postgres/postgres-payment-claims.js';
import type { PaymentHashClaims } from './payments/hash-claims.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { readConfigFile } from './config/load.js';
import { L402Authority } from './l402/authority.js';
import { credentialExpiry, L402Gate } from './l402/gate.js';
import { L402Revocations } from './l402/revocations.js';
import { MppGate } from './proxy/mpp.js';
import { closeL402Credential, CreditRefunds } from './l402/refund.js';
import { msat } from './domain/msat.js';
import { parseProxyConfig, sampleProxyConfig, type ProxyConfig } from './proxy/config.js';
import { createProxy, recoverInterruptedUsage, type ProxyHooks } from './proxy/server.js';
import { ServiceCatalog } from './proxy/catalog.js';
import { BudgetRouter } from './proxy/routing.js';
import { ServiceStats } from './proxy/stats.js';
import type { PaidServicesAdmin } from './http/routes/paid-services.js';
import { GatewayMetrics } from './metrics/prometheus.js';
import { startSampleUpstream } from './sample-upstream/server.js';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { resolvePolarNode } from './config/polar.js';
import type { Config, LndConfig } from './config/schema.js';
import { ApiKeys } from './auth/api-keys.js';
import { SHARED_REVOCATION_BOUND_MS } from './domain/shared-staleness.js';
import { buildApp, type CoulombApp } from './http/app.js';
import type { AccountServices } from './http/routes/accounts.js';
import { Ledger, type LedgerOptions } from './ledger/ledger.js';
import { availableOf } from './ledger/types.js';
import { EventBus } from './payments/events.js';
import type { RelayedBus } from './payments/event-relay.js';
import type { FeatureEvent } from './payments/types.js';
import { EscrowService, type EscrowOptions } from './escrow/service.js';
import { OutboundGuard } from './net/outbound.js';
import { ServiceRegistry } from './market/registry.js';
import { TaskMarket } from './market/tasks.js';
import { TaskAuctions } from './market/auctions.js';
import { StreamReceiver, StreamsService, type StreamsOptions } from './streams/index.js';
import { DeviceBridge } from './devices/bridge.js';
import { VerifyPool } from './devices/verify-pool.js';
import { accountOperations } from './devices/operations.js';
import { DeviceRegistry } from './devices/registry.js';
import type { DeviceCounterStore } from './devices/counters.js';
import { DeviceEvents } from './devices/events.js';
import { DeviceCommerce } from './devices/commerce.js';
import { EnergyMarket } from './energy/market.js';
import { energyOperations } from './energy/device-methods.js';
import { startEmbeddedBroker } from './devices/mqtt/broker.js';
import { MqttTransport } from './devices/mqtt/transport.js';
import { DEFAULT_SHARE_GROUP } from './devices/mqtt/topics.js';
import { xOnlyOf } from './crypto/bip340.js';
import { PaymentsService, type PaymentsOptions } from './payments/service.js';
import type { LightningBackend } from './lightning/backend.js';
import { AuditLog } from './policy/audit.js';
import { PolicyRegistry } from './policy/registry.js';
import { DEFAULT_TIER_AMOUNTS, type TierAmounts } from './policy/tiers.js';
import { openDatabase } from './storage/level-db.js';
import { LevelCursorStore } from './storage/level-cursor-store.js';
import { LevelLedgerStore } from './storage/level-ledger-store.js';
import { AdvisoryLockLeader } from './storage/postgres/advisory-lock-leader.js';
import { PostgresDeviceCounters } from './storage/postgres/postgres-device-counters.js';
import { PostgresEventRelay } from './storage/postgres/postgres-event-relay.js';
import { PostgresCursorStore } from './storage/postgres/postgres-cursor-store.js';
import { PostgresLedgerStore } from './storage/postgres/postgres-ledger-store.js';
import { DutyRunner, type Duty } from './cluster/duties.js';
import { AlwaysLeader, type LeaderElection } from './cluster/leader.js';
import { leaderRelay } from './devices/leader-relay.js';
import { LeaderOwnedServices, type LeaderDirectory, type SharedSecrets } from './cluster/leader-owned.js';
import { PostgresUsageOrphans } from './storage/postgres/postgres-usage-orphans.js';
import { UsageOrphans, type UsageOrphanSource } from './proxy/usage-orphans.js';
import {
  PostgresLeaderDirectory,
  PostgresSharedSecrets,
} from './storage/postgres/postgres-cluster-directory.js';
import type { LedgerStore } from './ledger/store.js';
import type { InvoiceCursorStore, Subscription } from './lightning/types.js';
import { OperatorAuth } from './http/operator-auth.js';
import { ConsoleSessions } from './http/console-session.js';
import { bakeGatewayMacaroon } from './lightning/lnd/bake-macaroon.js';
import { connectLnd } from './lightning/lnd/connect.js';
import { LndBackend } from './lightning/lnd/lnd-backend.js';
import type { NetworkStatus } from './regtest/network.js';
import { RegtestNetwork } from './regtest/network.js';

/** The composition root: the one place that picks concrete implementations and wires them together. */
export interface Gateway {
  app: CoulombApp;
  backend: LndBackend;
  url: string;
  lndSource: 'regtest' | 'polar' | 'lnd';
  network?: NetworkStatus;
  proxy?: ProxyHandle;
  mqtt?: DeviceTransportHandle;
  /** Set only when the key was generated by this start: shown once, never stored. */
  newOperatorKey?: string;
  close(): Promise<void>;
}

function operatorAuth(config: Config): { auth: OperatorAuth; newKey?: string } {
  if (config.operatorKey) return { auth: OperatorAuth.fromKey(config.operatorKey) };
  const file = join(resolve(config.dataDir), 'operator-key.sha256');
  if (existsSync(file)) return { auth: OperatorAuth.fromDigestHex(readFileSync(file, 'utf8').trim()) };
  const key = OperatorAuth.generateKey();
  const auth = OperatorAuth.fromKey(key);
  mkdirSync(resolve(config.dataDir), { recursive: true });
  writeFileSync(file, auth.digestHex + '\n', { mode: 0o600 });
  return { auth, newKey: key };
}

async function lndTarget(
  config: Config,
  log: Logger,
): Promise<{ creds: LndConfig; source: Gateway['lndSource']; network?: NetworkStatus }> {
  if (config.lnd) return { creds: config.lnd, source: 'lnd' };
  if (config.polar) {
    const node = resolvePolarNode(config.polar);
    if (node.version && !/^0\.(1[4-9])\./.test(node.version)) {
      log.warn(
        { version: node.version },
        'this Polar node runs an LND version newer than ln-service 58 is tested with (<= 0.19)',
      );
    }
    return { creds: node, source: 'polar' };
  }
  const network = new RegtestNetwork(
    { dataDir: config.regtest.dataDir, basePort: config.regtest.basePort },
    (m) => log.info(m),
  );
  const status = await network.up();
  const node = status.nodes.find((n) => n.name === config.regtest.node);
  if (!node) throw new Error(`regtest node ${config.regtest.node} missing`);
  // We hold the admin macaroon here, so the gateway runs with a least-privilege one baked from it.
  const admin = await connectLnd({
    socket: node.grpcSocket,
    cert: node.tlsCert,
    macaroon: node.adminMacaroon,
  });
  const macaroon = await bakeGatewayMacaroon({ lnd: admin });
  return {
    creds: { socket: node.grpcSocket, cert: node.tlsCert, macaroon },
    source: 'regtest',
    network: status,
  };
}

function tierAmounts(config: Config): TierAmounts {
  const t = config.tiers ?? {};
  const pick = (tier: 'L1' | 'L2') => ({
    dailyMsat: BigInt(t[tier]?.dailyMsat ?? DEFAULT_TIER_AMOUNTS[tier].dailyMsat),
    perPaymentMsat: BigInt(t[tier]?.perPaymentMsat ?? DEFAULT_TIER_AMOUNTS[tier].perPaymentMsat),
  });
  return { L1: pick('L1'), L2: pick('L2') };
}

export interface FeatureOptions extends PaymentsOptions {
  /** Sizes of the ledger's in-memory caches (accounts, final transfers, ledger keys). */
  ledger?: Pick<LedgerOptions, 'accountCacheSize' | 'transferCacheSize' | 'keyCacheSize'>;
  escrow?: EscrowOptions;
  streams?: StreamsOptions;
  /** Times the ledger's group-commit batches. */
  metrics?: GatewayMetrics;
  /**
   * What a storage failure of the ledger does (memory is ahead of the store): by default the
   * process exits (70) and the restart recovers from the store.
   */
  onFatal?: (err: unknown) => void;
  /** The leader election's poll period on PostgreSQL (ms, default 1000; at most 2000). */
  leaderPollMs?: number;
  /**
   * What a deposed leader does (a shared store): its memory of the leader-owned services must not
   * serve again (`LeaderOwnedServices`). `coulomb start` exits (75) and its supervisor restarts it
   * as a follower; by default (an embedding, tests) it is logged and this process never leads again.
   */
  onDeposed?: (reason: string) => void;
}

/** Where the ledger, the duty cursors and the leadership live: LevelDB, or PostgreSQL by URL. */
interface Storage {
  store: LedgerStore;
  cursor: InvoiceCursorStore;
  leader: LeaderElection;
  /** Device request counters every instance shares (PostgreSQL); none for the embedded store. */
  deviceCounters?: DeviceCounterStore;
  /** Relays account events to the other instances (PostgreSQL); none for the embedded store. */
  relayEvents?: (bus: RelayedBus) => Promise<{ close(): Promise<void> }>;
  /** Where the leader serves (PostgreSQL); none for the embedded store, where this process always leads. */
  directory?: LeaderDirectory;
  /** Secrets every instance shares (PostgreSQL); the embedded store keeps them in the data directory. */
  secrets?: SharedSecrets;
  /** One live attempt per payment hash across instances (PostgreSQL). */
  hashClaims?: PaymentHashClaims;
  /** Orphaned metered reservations to void (PostgreSQL): those of instances that are gone. */
  usageOrphans?: UsageOrphanSource;
  /** This process's id among the instances of a shared store (named in its election session). */
  instanceId: string;
  close(): Promise<void>;
}

async function openStorage(config: Config, log: Logger, options: FeatureOptions): Promise<Storage> {
  const instanceId = randomUUID();
  if (config.databaseUrl !== undefined) {
    const databaseUrl = config.databaseUrl;
    const store = await PostgresLedgerStore.open(databaseUrl);
    return {
      store,
      cursor: new PostgresCursorStore(store.sql),
      deviceCounters: new PostgresDeviceCounters(store.sql),
      leader: new AdvisoryLockLeader(config.databaseUrl, {
        log,
        instanceId,
        pollMs: Math.min(options.leaderPollMs ?? 1000, 2000),
      }),
      relayEvents: (bus) => PostgresEventRelay.open(databaseUrl, bus, { log }),
      directory: new PostgresLeaderDirectory(store.sql),
      secrets: new PostgresSharedSecrets(store.sql),
      usageOrphans: new PostgresUsageOrphans(store.sql),
      hashClaims: new PostgresPaymentHashClaims(store.sql),
      instanceId,
      close: () => store.close(),
    };
  }
  const db = await openDatabase(join(resolve(config.dataDir), 'db'));
  return {
    store: new LevelLedgerStore(db),
    cursor: new LevelCursorStore(db),
    // One process owns the embedded store: it always leads.
    leader: new AlwaysLeader(),
    instanceId,
    close: () => db.close(),
  };
}

/**
 * The ledger, policies, keys and payments on the embedded LevelDB (or on PostgreSQL with a
 * database URL), fed by LND's invoice stream. Every instance loads what serving requests needs;
 * the singleton duties (`leadership`) run on the elected leader only — with LevelDB, always here.
 */
export async function openAccounts(
  config: Config,
  backend: LightningBackend,
  log: Logger,
  options: FeatureOptions = {},
): Promise<{
  services: AccountServices;
  leadership: DutyRunner;
  /** Where this instance's HTTP API is reached (a shared store: followers forward to the leader's). */
  advertise(url: string): void;
  /** A shared store: where the leader finds metered reservations of instances that are gone. */
  usageOrphans?: UsageOrphanSource;
  close(): Promise<void>;
}> {
  const storage = await openStorage(config, log, options);
  const store = storage.store;
  const ledger = await Ledger.open(options.metrics ? options.metrics.instrumentStore(store) : store, {
    ...options.ledger,
    sweeps: false,
  });
  // Memory is ahead of disk after a failed write: stop, and let the restart recover from disk.
  ledger.on(
    'fatal',
    options.onFatal ??
      ((err: unknown) => {
        log.fatal({ err }, 'ledger storage failed; exiting');
        process.exit(70);
      }),
  );
  // A policy evaluated by a synchronous step without an `ensure` first (a running stream's next
  // chunk) belongs to an account with a pending transfer: it stays resident while that lasts.
  const policies = new PolicyRegistry(ledger, { keep: (id) => ledger.hasPending(id) });
  // A shared store: an account's policy may have changed while another instance held its lease.
  ledger.on('leased', (ids) => policies.forget(ids));
  // A shared store: a key revoked through another instance is refused here within the bound.
  const apiKeys = new ApiKeys(ledger, Date.now, undefined, sharedBound(ledger));
  await apiKeys.load();
  const audit = new AuditLog(ledger);
  const events = new EventBus();
  // Clients' event streams on any instance hear every instance's events (a shared store only).
  const relay = await storage.relayEvents?.(events);
  const payments = new PaymentsService(ledger, backend, policies, audit, events, log, {
    ...options,
    ...(storage.hashClaims ? { hashClaims: storage.hashClaims } : {}),
  });
  await payments.load();
  const publish = (accountId: string, event: FeatureEvent): void => events.publish(accountId, event);
  const escrow = new EscrowService(ledger, backend, payments, publish, log, {
    outbound: new OutboundGuard({ allow: config.outbound?.allow ?? [] }),
    ...options.escrow,
  });
  // Leader-owned (a shared store: loaded by the leader when elected, `ownedLoads` below).
  const ownedLoads: (() => Promise<void>)[] = [() => escrow.load()];
  const registry = new ServiceRegistry(ledger);
  await registry.load();
  const market = new TaskMarket(ledger, escrow, registry, publish, log);
  ownedLoads.push(() => market.load());
  const auctions = new TaskAuctions({
    ledger,
    tasks: market,
    registry,
    publish,
    log,
    ...(config.auctions?.maxOpenPerAccount !== undefined
      ? { maxOpenPerAccount: config.auctions.maxOpenPerAccount }
      : {}),
  });
  ownedLoads.push(() => auctions.load());
  const receiver = new StreamReceiver({ ledger, nodeId: () => payments.nodeId, publish, log });
  ownedLoads.push(() => receiver.load());
  const streams = new StreamsService({
    ledger,
    payments,
    publish,
    log,
    inboxes: receiver,
    ...(options.streams ? { options: options.streams } : {}),
    ...(options.metrics ? { onTick: options.metrics.streamTick.bind(options.metrics) } : {}),
  });
  ownedLoads.push(() => streams.load());
  const deviceRegistry = new DeviceRegistry(ledger, Date.now, storage.deviceCounters);
  await deviceRegistry.load();
  const deviceKey = await sharedSecret(config, storage.secrets, 'device-key');
  const deviceEvents = new DeviceEvents(deviceRegistry, ledger, deviceKey, log);
  await deviceEvents.load();
  const commerce = new DeviceCommerce({
    ledger,
    payments,
    escrow,
    streams,
    registry: deviceRegistry,
    events: deviceEvents,
    bus: events,
    log,
  });
  ownedLoads.push(() => commerce.load());
  const energy = new EnergyMarket({
    ledger,
    streams,
    bus: events,
    publish,
    deviceOf: (id) => {
      const d = deviceRegistry.get(id);
      return d ? { accountId: d.accountId, active: d.state === 'active' } : undefined;
    },
    log,
    ...(config.energy ? { options: config.energy } : {}),
  });
  ownedLoads.push(() => energy.load());
  const owned = new LeaderOwnedServices(
    storage.instanceId,
    storage.leader,
    storage.directory,
    options.onDeposed ??
      ((reason) =>
        log.error(
          { reason },
          'no longer the leader: the leader-owned services are served by the new leader; restart this process before it may lead again',
        )),
  );
  const loadOwned = async (): Promise<void> => {
    for (const load of ownedLoads) await load();
  };
  // The embedded store: loaded now, as every process start did before the election existed.
  if (!owned.shared) await loadOwned();
  const commerceOperations = commerce.operations();
  const ownedOperations = {
    ...commerceOperations,
    ...energyOperations(energy, commerceOperations['meter.report']),
  };
  const verifyPool = await VerifyPool.start();
  const bridge = new DeviceBridge(
    deviceRegistry,
    ledger,
    deviceKey,
    { ...accountOperations({ ledger, payments }), ...ownedOperations },
    log,
    // A shared store: device commerce and energy requests go to the leader, which owns them.
    { verifier: verifyPool, forward: leaderRelay(owned, Object.keys(ownedOperations)) },
  );
  const l402Key = Buffer.from(await sharedSecret(config, storage.secrets, 'l402-secret'), 'hex');
  const l402Authority = new L402Authority(l402Key);
  const revocations = new L402Revocations(ledger, l402Authority, {
    credentialExpiry: (tokenId) => credentialExpiry(payments, tokenId),
    onError: (err) => log.warn({ err }, 'pruning L402 revocations failed'),
    ...sharedBound(ledger),
  });
  await revocations.load();
  let subscription: Subscription | undefined;
  // In the order they started in before the election existed; stopped in reverse.
  const duties: Duty[] = [
    // First: the services the other duties act on (a shared store; loaded above with the embedded one).
    ...(owned.shared ? [owned.duty(loadOwned)] : []),
    { name: 'ledger key sweeps', start: () => ledger.startSweeps(), stop: () => ledger.stopSweeps() },
    {
      name: 'payment reconciliation, approval expiry, invoice pruning',
      start: () => payments.startDuties(),
      stop: () => payments.stopDuties(),
    },
    { name: 'escrow sweeps', start: () => escrow.startDuties(), stop: () => escrow.stopDuties() },
    { name: 'task sweeps', start: () => market.startDuties(), stop: () => market.stopDuties() },
    { name: 'auction sweeps', start: () => auctions.startDuties(), stop: () => auctions.stopDuties() },
    {
      name: 'incoming stream lapse checks',
      start: () => receiver.startLapseChecks(),
      stop: () => receiver.stop(),
    },
    { name: 'stream scheduler', start: () => streams.startScheduler(), stop: () => streams.stopScheduler() },
    {
      name: 'device event pruning',
      start: () => deviceEvents.startPruning(),
      stop: () => deviceEvents.stop(),
    },
    {
      name: 'device commerce catch-up and offer expiry',
      start: () => commerce.startDuties(),
      stop: () => commerce.stopDuties(),
    },
    { name: 'energy market sweeps', start: () => energy.startDuties(), stop: () => energy.stopDuties() },
    { name: 'device kept-answer pruning', start: () => bridge.start(), stop: () => bridge.stop() },
    {
      name: 'L402 revocation pruning',
      start: () => revocations.startPruning(),
      stop: () => revocations.stop(),
    },
    {
      // Crediting: resumes from the persisted cursor; exactly-once by payment hash in the ledger.
      name: 'LND invoice subscription',
      start: () => {
        subscription = backend.subscribeInvoices({
          cursor: storage.cursor,
          onInvoice: async (invoice) => {
            await payments.onInvoice(invoice);
            await receiver.onInvoice(invoice);
          },
          onError: (err) => log.warn({ err: err.message }, 'invoice subscription interrupted; resuming'),
        });
      },
      stop: () => {
        subscription?.close();
        subscription = undefined;
      },
    },
  ];
  const leadership = new DutyRunner(storage.leader, duties, log);
  await leadership.start();
  return {
    leadership,
    advertise: (url) => storage.leader.advertise?.(owned.instanceId, url),
    ...(storage.usageOrphans ? { usageOrphans: storage.usageOrphans } : {}),
    services: {
      ledger,
      payments,
      policies,
      audit,
      apiKeys,
      events,
      tiers: tierAmounts(config),
      escrow,
      market,
      registry,
      streams,
      receiver,
      energy,
      auctions,
      devices: {
        bridge,
        registry: deviceRegistry,
        gatewayId: xOnlyOf(deviceKey),
        events: deviceEvents,
        commerce,
      },
      l402: { authority: l402Authority, revocations, secret: l402Key },
      owned,
    },
    async close() {
      await leadership.close();
      revocations.stop();
      energy.stop();
      commerce.stop();
      deviceEvents.stop();
      bridge.stop();
      await verifyPool.close();
      await streams.stop();
      receiver.stop();
      auctions.stop();
      market.stop();
      escrow.stop();
      payments.stop();
      await relay?.close();
      await ledger.close();
      await storage.close();
    },
  };
}

/**
 * On a store shared by several instances, how long a cached record of something that can be
 * withdrawn (an API key, an L402 credential's revocation) is trusted: none on the embedded store.
 */
function sharedBound(ledger: Ledger): { maxAgeMs?: number } {
  return ledger.shared ? { maxAgeMs: SHARED_REVOCATION_BOUND_MS } : {};
}

/**
 * The L402 gate of the proxy: on a store shared by several instances it admits a credential only
 * once its revocation was read within the bound (another instance may have revoked it).
 */
export function l402Gate(
  accounts: Pick<AccountServices, 'ledger' | 'payments'>,
  backend: LightningBackend,
  authority: L402Authority,
  revocations: L402Revocations,
): L402Gate {
  return new L402Gate(
    authority,
    backend,
    accounts.payments,
    accounts.ledger.shared ? revocations : undefined,
  );
}

/** A 32-byte secret of this gateway (hex), created once in the data dir with mode 0600. */
function secretFile(config: Config, name: string): string {
  const file = join(resolve(config.dataDir), name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  mkdirSync(resolve(config.dataDir), { recursive: true });
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

/**
 * A secret every instance must agree on: in the shared store when there is one (the first
 * instance brings its data directory's, if it had one, so a store moved from LevelDB keeps its
 * credentials valid; otherwise a new random one), else in the data directory.
 */
async function sharedSecret(
  config: Config,
  secrets: SharedSecrets | undefined,
  name: string,
): Promise<string> {
  if (!secrets) return secretFile(config, name);
  const file = join(resolve(config.dataDir), name);
  return secrets.secret(name, () =>
    existsSync(file) ? readFileSync(file, 'utf8').trim() : randomBytes(32).toString('hex'),
  );
}

/** The L402 credential secret. */
const l402Secret = (config: Config): Buffer => Buffer.from(secretFile(config, 'l402-secret'), 'hex');

export interface ProxyHandle {
  url: string;
  sampleUpstream?: string;
  services: string[];
  close(): Promise<void>;
}

/** The proxy's services (live, persisted changes over the config file's seed) and their statistics. */
export interface PaidServices extends PaidServicesAdmin {
  proxyConfig: ProxyConfig;
  sample?: { server: Server; url: string };
  /** Writes the statistics counted and stops the sample upstream, if any. */
  close(): Promise<void>;
}

/** Reads the proxy's config file (or starts the sample upstream) and opens the service catalog. */
export async function openPaidServices(
  config: Config,
  accounts: AccountServices,
  log: Logger,
): Promise<PaidServices> {
  let sample: { server: Server; url: string } | undefined;
  let raw: unknown;
  if (config.proxy.configFile) raw = readConfigFile(config.proxy.configFile);
  else {
    sample = await startSampleUpstream({ port: config.proxy.samplePort, host: '127.0.0.1' });
    raw = sampleProxyConfig(sample.url, config.proxy.port);
  }
  const { config: proxyConfig, services } = parseProxyConfig({
    ...(raw as object),
    host: config.proxy.host,
    port: config.proxy.port,
  });
  const catalog = await ServiceCatalog.open(accounts.ledger, services);
  // A shared store: the services changed through any instance's admin API are served here within 1 s.
  const unfollow = accounts.ledger.shared
    ? catalog.follow(1000, (err) => log.warn({ err }, 'reading the proxy services again failed'))
    : undefined;
  const stats = new ServiceStats(accounts.ledger, {
    onError: (err) => log.warn({ err }, 'writing the proxy statistics failed'),
  });
  stats.start();
  return {
    catalog,
    stats,
    proxyConfig,
    ...(sample ? { sample } : {}),
    async close() {
      unfollow?.();
      await stats.stop().catch((err: unknown) => log.warn({ err }, 'writing the proxy statistics failed'));
      if (sample) {
        const up = sample.server;
        await new Promise<void>((r) => {
          up.close(() => r());
          up.closeAllConnections();
        });
      }
    },
  };
}

/** Statistics and any other listeners of the proxy, as one set of hooks. */
function proxyHooks(stats: ServiceStats, extra?: ProxyHooks): ProxyHooks {
  return {
    answered: (e) => {
      if (e.service) stats.answered(e.service, e.paid);
      extra?.answered?.(e);
    },
    challenged: (service) => {
      stats.challenged(service);
      extra?.challenged?.(service);
    },
    charged: (service, amount) => {
      stats.charged(service, amount);
      extra?.charged?.(service, amount);
    },
  };
}

/**
 * The L402 proxy on its own listener, with the configured services or the sample one (the
 * catalog opened here unless `paid` is given; then its owner closes it).
 */
export async function startL402Proxy(
  config: Config,
  accounts: AccountServices,
  backend: LightningBackend,
  log: Logger,
  paid?: PaidServices,
  hooks?: ProxyHooks,
  /** The proxy's clock (unix ms) for periods and price rules; tests move it. */
  now?: () => number,
): Promise<ProxyHandle> {
  const opened = paid ?? (await openPaidServices(config, accounts, log));
  const own = paid ? undefined : opened;
  const { proxyConfig, catalog, stats, sample } = opened;
  let authority = accounts.l402?.authority;
  let ownRevocations: L402Revocations | undefined;
  if (!authority) {
    authority = new L402Authority(l402Secret(config));
    const payments = accounts.payments;
    ownRevocations = new L402Revocations(accounts.ledger, authority, {
      credentialExpiry: (tokenId) => credentialExpiry(payments, tokenId),
      onError: (err) => log.warn({ err }, 'pruning L402 revocations failed'),
      ...sharedBound(accounts.ledger),
    });
    await ownRevocations.start();
  }
  const revocations = ownRevocations ?? accounts.l402!.revocations;
  const gate = l402Gate(accounts, backend, authority, revocations);
  await recoverInterruptedUsage(accounts.ledger);
  const refunds = new CreditRefunds(accounts.ledger, accounts.payments, accounts.policies, backend);
  // Always there: a service offering MPP may be added live through the admin API.
  const mpp = new MppGate({
    // Its own key for the challenge binding, derived from the L402 secret.
    secret: createHmac('sha256', accounts.l402?.secret ?? l402Secret(config))
      .update('mpp-challenge-binding')
      .digest(),
    realm: proxyConfig.mppRealm ?? `${config.proxy.host}:${config.proxy.port}`,
    backend,
    invoices: accounts.payments,
    records: accounts.ledger,
    // A shared store: a session closed through another instance is refused here within the bound.
    ...sharedBound(accounts.ledger),
  });
  const server = createProxy({
    services: catalog.current(),
    catalog,
    hooks: proxyHooks(stats, hooks),
    gate,
    ledger: accounts.ledger,
    log,
    mpp,
    // A shared store: metered reservations name this instance, so the leader can tell orphans.
    ...(accounts.owned?.shared ? { instanceId: accounts.owned.instanceId } : {}),
    router: new BudgetRouter({
      payerOf: (hash) => accounts.payments.invoicePayer(hash),
      availableOf: async (id) => {
        const a = await accounts.ledger.getAccount(id);
        return a ? availableOf(a) : undefined;
      },
    }),
    refunds: {
      refunds,
      sessionRefundMaxFeeMsat: msat(proxyConfig.sessionRefundMaxFeeMsat ?? '0'),
      closeL402: (authorization, service, destination, flush) =>
        closeL402Credential({ authority, revocations, refunds }, authorization, service, destination, flush),
    },
    ...(proxyConfig.challengeRateLimit ? { challengeRateLimit: proxyConfig.challengeRateLimit } : {}),
    ...(now ? { now } : {}),
  });
  await new Promise<void>((r) => server.listen(config.proxy.port, config.proxy.host, r));
  const addr = server.address();
  const url = `http://${config.proxy.host}:${typeof addr === 'object' && addr ? addr.port : config.proxy.port}`;
  return {
    url,
    ...(sample ? { sampleUpstream: sample.url } : {}),
    services: catalog.current().map((s) => s.name),
    async close() {
      ownRevocations?.stop();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await own?.close();
    },
  };
}

export interface DeviceTransportHandle {
  /** The broker devices connect to. */
  mqttUrl: string;
  embedded: boolean;
  /** The embedded broker's figures (absent with an external broker). */
  counts?: () => { devicesConnected: number; deviceMessages: number };
  close(): Promise<void>;
}

/**
 * Devices over MQTT: the embedded broker (or an external one by URL) and the gateway's client on
 * it. With an external broker, which every instance shares, requests come through the shared
 * subscription of `mqtt.shareGroup` (each to one instance) and replaying the outbox is a singleton
 * duty of the leader (given `leadership`); the embedded broker is this instance's own.
 */
export async function startDeviceTransports(
  config: Config,
  devices: NonNullable<AccountServices['devices']>,
  log: Logger,
  leadership?: Pick<DutyRunner, 'add'>,
): Promise<DeviceTransportHandle> {
  const broker = config.mqtt.url
    ? undefined
    : await startEmbeddedBroker(
        config.mqtt.host,
        config.mqtt.port,
        randomBytes(24).toString('hex'),
        (id, user, pass) => devices.registry.mayConnect(id, user, pass),
        (id, up) => {
          devices.registry.connection(id, up);
          if (up)
            devices.registry
              .seen(id)
              .catch((err: unknown) => log.warn({ err, deviceId: id }, 'could not record a device as seen'));
        },
      );
  const url = config.mqtt.url ?? broker!.url;
  const transport = await MqttTransport.connect(
    url,
    devices.bridge,
    log,
    broker
      ? { username: broker.gatewayUsername, password: broker.gatewayPassword }
      : {
          ...(config.mqtt.username !== undefined ? { username: config.mqtt.username } : {}),
          ...(config.mqtt.password !== undefined ? { password: config.mqtt.password } : {}),
          // An external broker may be shared by several instances: each request goes to one.
          shareGroup: config.mqtt.shareGroup ?? DEFAULT_SHARE_GROUP,
        },
  );
  devices.events.addSink(transport);
  if (broker) devices.events.recover((onSubscribed) => broker.onDeviceSubscribed(onSubscribed));
  else if (!leadership) devices.events.recover();
  else
    await leadership.add({
      name: 'device event replay',
      // What every instance wrote to the outbox (another may have led before), then replayed.
      start: async () => {
        await devices.events.load();
        devices.events.recover();
      },
      stop: () => undefined,
    });
  return {
    mqttUrl: url,
    embedded: broker !== undefined,
    ...(broker ? { counts: () => broker.counts() } : {}),
    async close() {
      await transport.close();
      await broker?.close();
    },
  };
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const target = await lndTarget(config, log);
  const metrics = new GatewayMetrics();
  const backend = metrics.instrumentBackend(await LndBackend.connect(target.creds));
  const state = await backend.checkConnection();
  if (state !== 'connected') {
    // One failed probe is not yet "down"; try once more before giving a clear error.
    await new Promise((r) => setTimeout(r, 1000));
    await backend.getNodeInfo();
  }
  const { auth, newKey } = operatorAuth(config);
  const accounts = await openAccounts(config, backend, log, {
    metrics,
    // A shared store: a deposed leader's memory of streams, escrows... must not serve again.
    onDeposed: (reason) => {
      log.fatal({ reason }, 'no longer the leader: exiting so that a restart serves as a follower');
      process.exit(75);
    },
  });
  metrics.watchEvents(accounts.services.events);
  metrics.watchLnd(backend);
  const paid = config.proxy.enabled ? await openPaidServices(config, accounts.services, log) : undefined;
  const scrapeToken = config.metrics?.scrapeToken;
  const app = await buildApp({
    backend,
    operatorAuth: auth,
    logger: log,
    accounts: accounts.services,
    ...(paid ? { paidServices: paid } : {}),
    metrics: { metrics, ...(scrapeToken ? { scrapeToken: OperatorAuth.fromKey(scrapeToken) } : {}) },
    // A shared store: a console session works on every instance (the load balancer may alternate).
    consoleSessions: new ConsoleSessions(
      accounts.services.ledger.shared ? { store: accounts.services.ledger } : {},
    ),
  });
  const url = await app.listen({ host: config.http.host, port: config.http.port });
  accounts.advertise(config.advertiseUrl ?? url);
  const proxy = paid
    ? await startL402Proxy(
        config,
        accounts.services,
        backend,
        log,
        paid,
        metrics.proxyHooks(() => paid.catalog.current().map((s) => s.name)),
      )
    : undefined;
  const orphans = accounts.usageOrphans;
  if (proxy && orphans) {
    const sweep = new UsageOrphans(accounts.services.ledger, orphans, log);
    await accounts.leadership.add({
      name: 'orphaned usage reservations',
      start: () => sweep.start(),
      stop: () => sweep.stop(),
    });
  }
  const mqtt =
    config.mqtt.enabled && accounts.services.devices
      ? await startDeviceTransports(config, accounts.services.devices, log, accounts.leadership)
      : undefined;
  const counts = mqtt?.counts;
  if (counts) {
    metrics.gauge(
      'coulomb_devices_connected',
      'Devices connected to the embedded MQTT broker',
      () => counts().devicesConnected,
    );
    metrics.counter(
      'coulomb_mqtt_device_messages_total',
      'MQTT messages published by devices',
      () => counts().deviceMessages,
    );
  }
  return {
    app,
    backend,
    url,
    lndSource: target.source,
    ...(proxy ? { proxy } : {}),
    ...(target.network ? { network: target.network } : {}),
    ...(newKey ? { newOperatorKey: newKey } : {}),
    ...(mqtt ? { mqtt } : {}),
    async close() {
      await mqtt?.close();
      await proxy?.close();
      await paid?.close();
      await app.close();
      await accounts.close();
      await backend.close();
      metrics.stop();
    },
  };
}
