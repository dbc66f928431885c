import type { ApiKeys } from '../../auth/api-keys.js';
import type { Ledger } from '../../ledger/ledger.js';
import { availableOf, balanceOf, type Account } from '../../ledger/types.js';
import type { AuditLog } from '../../policy/audit.js';
import type { PolicyRegistry } from '../../policy/registry.js';
import type { TierAmounts } from '../../policy/tiers.js';
import type { TierName } from '../../policy/types.js';
import type { Static } from '@sinclair/typebox';
import type { AccountBody } from '../schemas.js';
import type { EventBus } from '../../payments/events.js';
import type { PaymentsService } from '../../payments/service.js';
import type { EscrowService } from '../../escrow/service.js';
import type { ServiceRegistry } from '../../market/registry.js';
import type { TaskMarket } from '../../market/tasks.js';
import type { StreamReceiver, StreamsService } from '../../streams/index.js';
import type { DeviceBridge } from '../../devices/bridge.js';
import type { DeviceRegistry } from '../../devices/registry.js';
import type { DeviceEvents } from '../../devices/events.js';
import type { DeviceCommerce } from '../../devices/commerce.js';
import type { TaskAuctions } from '../../market/auctions.js';
import type { EnergyMarket } from '../../energy/market.js';
import type { L402Authority } from '../../l402/authority.js';
import type { L402Revocations } from '../../l402/revocations.js';
import type { LeaderOwnedServices } from '../../cluster/leader-owned.js';

export interface AccountServices {
  ledger: Ledger;
  payments: PaymentsService;
  policies: PolicyRegistry;
  audit: AuditLog;
  apiKeys: ApiKeys;
  events: EventBus;
  tiers?: TierAmounts;
  escrow?: EscrowService;
  market?: TaskMarket;
  registry?: ServiceRegistry;
  streams?: StreamsService;
  receiver?: StreamReceiver;
  /** The energy market: order books, trades settled by metered streams. */
  energy?: EnergyMarket;
  /** Reverse auctions of tasks (provider selection by a documented score). */
  auctions?: TaskAuctions;
  devices?: {
    bridge: DeviceBridge;
    registry: DeviceRegistry;
    gatewayId: string;
    events: DeviceEvents;
    commerce: DeviceCommerce;
  };
  /**
   * L402 credentials: the authority the proxy verifies with, its persisted revocations, and the
   * root secret (shared by every instance of a shared store), from which MPP's binding key derives.
   */
  l402?: { authority: L402Authority; revocations: L402Revocations; secret?: Buffer };
  /**
   * Where the leader-owned services (streams, escrows, tasks, auctions, energy, device commerce)
   * are served: here, or on the leader a follower forwards to (a shared store). Absent: here.
   */
  owned?: LeaderOwnedServices;
}

export function accountView(a: Account, tier?: TierName): Static<typeof AccountBody> {
  return {
    id: a.id,
    kind: a.kind,
    name: a.name,
    frozen: a.frozen,
    balanceMsat: balanceOf(a).toString(),
    availableMsat: availableOf(a).toString(),
    pendingOutMsat: a.debitsPending.toString(),
    pendingInMsat: a.creditsPending.toString(),
    createdAt: a.createdAt,
    ...(tier ? { tier } : {}),
  };
}
