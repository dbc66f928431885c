import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { Msat } from '../domain/msat.js';
import type { Ledger } from '../ledger/ledger.js';
import { MsatField, recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import { MarketError, MarketErrorCode } from './errors.js';
import type { ServiceOffer } from './types.js';

const CAPABILITY = /^[a-z0-9][a-z0-9._:-]{0,63}$/;

/** Validates and normalises a capability list (lowercase tokens like `vision`, `energy:kwh`). */
export function capabilities(list: readonly string[], max = 32): string[] {
  const out = [...new Set(list.map((c) => c.trim().toLowerCase()))];
  if (out.length > max || out.some((c) => !CAPABILITY.test(c)))
    throw new MarketError(
      MarketErrorCode.INVALID_ARGUMENT,
      `capabilities are up to ${max} tokens of a-z, 0-9 and . _ : - (at most 64 characters)`,
    );
  return out;
}

const PREFIX = PREFIXES.offer.prefix;
const key = (id: string): string => `${PREFIX}${id}`;
const offerCodec: RecordCodec<ServiceOffer> = recordCodec(
  'offer',
  Type.Object({
    id: Type.String(),
    accountId: Type.String(),
    title: Type.String(),
    description: Type.String(),
    capabilities: Type.Array(Type.String()),
    priceMsat: MsatField,
    unit: Type.Union([
      Type.Literal('request'),
      Type.Literal('second'),
      Type.Literal('unit'),
      Type.Literal('task'),
    ]),
    endpoint: Type.Optional(Type.String()),
    createdAt: Type.Number(),
  }),
);

/** Where agents and machines advertise what they sell, with prices, found by capability. */
export class ServiceRegistry {
  private readonly offers = new Map<string, ServiceOffer>();

  constructor(
    private readonly ledger: Ledger,
    private readonly now: () => number = Date.now,
  ) {}

  async load(): Promise<void> {
    for (const r of await this.ledger.listRecords(PREFIX)) {
      const o = offerCodec.decode(r.value);
      this.offers.set(o.id, o);
    }
  }

  async advertise(
    accountId: string,
    input: Omit<ServiceOffer, 'id' | 'accountId' | 'createdAt' | 'priceMsat'> & { priceMsat: Msat },
  ): Promise<ServiceOffer> {
    await this.ledger.requireAccount(accountId);
    if (input.priceMsat < 0n)
      throw new MarketError(MarketErrorCode.INVALID_ARGUMENT, 'priceMsat must not be negative');
    const offer: ServiceOffer = {
      id: randomUUID(),
      accountId,
      title: input.title,
      description: input.description,
      capabilities: capabilities(input.capabilities),
      priceMsat: input.priceMsat,
      unit: input.unit,
      ...(input.endpoint !== undefined ? { endpoint: input.endpoint } : {}),
      createdAt: this.now(),
    };
    if (offer.capabilities.length === 0)
      throw new MarketError(MarketErrorCode.INVALID_ARGUMENT, 'an offer names at least one capability');
    await this.ledger.putRecords([{ key: key(offer.id), value: offerCodec.encode(offer) }]);
    this.offers.set(offer.id, offer);
    return { ...offer };
  }

  async withdraw(offerId: string, accountId?: string): Promise<void> {
    const o = this.offers.get(offerId);
    if (!o || (accountId !== undefined && o.accountId !== accountId))
      throw new MarketError(MarketErrorCode.OFFER_NOT_FOUND, `no offer ${offerId}`);
    await this.ledger.putRecords([{ key: key(offerId), value: null }]);
    this.offers.delete(offerId);
  }

  /** Offers that have every capability asked for, cheapest first. */
  find(filter: { capability?: string[]; accountId?: string } = {}): ServiceOffer[] {
    const wanted = filter.capability ? capabilities(filter.capability) : [];
    return [...this.offers.values()]
      .filter((o) => filter.accountId === undefined || o.accountId === filter.accountId)
      .filter((o) => wanted.every((c) => o.capabilities.includes(c)))
      .sort((a, b) =>
        a.priceMsat < b.priceMsat ? -1 : a.priceMsat > b.priceMsat ? 1 : a.createdAt - b.createdAt,
      )
      .map((o) => ({ ...o }));
  }

  /** Every capability an account advertises. */
  capabilitiesOf(accountId: string): Set<string> {
    const out = new Set<string>();
    for (const o of this.offers.values())
      if (o.accountId === accountId) for (const c of o.capabilities) out.add(c);
    return out;
  }
}
