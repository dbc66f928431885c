import type { Msat } from '../domain/msat.js';

/**
 * open → claimed → submitted → completed | disputed → resolved; open or claimed past the
 * deadline → expired (refunded to the publisher).
 */
export type TaskState = 'open' | 'claimed' | 'submitted' | 'completed' | 'disputed' | 'resolved' | 'expired';

export interface Task {
  id: string;
  publisherAccountId: string;
  title: string;
  description: string;
  /** What an agent must advertise in the service registry to claim the task. */
  capabilities: string[];
  rewardMsat: Msat;
  /** The result must be submitted before this (ms since the epoch). */
  deadline: number;
  /** After a submission, the publisher has this long to accept or reject; silence accepts. */
  reviewSeconds: number;
  escrowId: string;
  state: TaskState;
  agentAccountId?: string;
  result?: string;
  disputeReason?: string;
  /** Who the operator sided with in a dispute. */
  resolvedFor?: 'agent' | 'publisher';
  createdAt: number;
  claimedAt?: number;
  submittedAt?: number;
  closedAt?: number;
}

export interface Reputation {
  accountId: string;
  /** Tasks that ended accepted, as publisher or agent. */
  completed: number;
  /** Tasks that went to dispute. */
  disputed: number;
  /** Disputes the operator decided against this account. */
  lost: number;
  /** Claimed tasks whose deadline passed without a result (agent side). */
  late: number;
}

/** What an agent or machine sells, discoverable by capability. */
export interface ServiceOffer {
  id: string;
  accountId: string;
  title: string;
  description: string;
  capabilities: string[];
  priceMsat: Msat;
  /** What the price is per: a request, a second, a unit of a metered stream, a task. */
  unit: 'request' | 'second' | 'unit' | 'task';
  /** Where to reach the service (URL, L402 endpoint, MQTT topic...). */
  endpoint?: string;
  createdAt: number;
}
