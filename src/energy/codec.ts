import { Type } from '@sinclair/typebox';
import { RecordIndex } from '../ledger/record-index.js';
import { Literals, MsatField, recordCodec } from '../records/codec.js';
import { isFinalOrder, isFinalTrade, type EnergyOrder, type EnergyTrade } from './types.js';

/** A count (Wh) as a decimal string on disk, a bigint in memory. */
const Count = Type.Transform(Type.String({ pattern: '^(0|[1-9][0-9]{0,24})$' }))
  .Decode((s): bigint => BigInt(s))
  .Encode((n: bigint): string => n.toString());

const ProductFields = {
  zone: Type.String(),
  windowStart: Type.Integer(),
  windowEnd: Type.Integer(),
};

const OrderSchema = Type.Object({
  id: Type.String(),
  accountId: Type.String(),
  side: Literals('offer', 'bid'),
  ...ProductFields,
  priceMsatPerKWh: MsatField,
  quantityWh: Count,
  filledWh: Count,
  meterDeviceId: Type.Optional(Type.String()),
  state: Literals('open', 'filled', 'canceled', 'expired'),
  seq: Type.Integer(),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});

const ReadingSchema = Type.Object({ interval: Type.Integer(), wh: Count });

const TradeSchema = Type.Object({
  id: Type.String(),
  ...ProductFields,
  offerId: Type.String(),
  bidId: Type.String(),
  producerAccountId: Type.String(),
  consumerAccountId: Type.String(),
  consumerMeterId: Type.Optional(Type.String()),
  takerSide: Literals('offer', 'bid'),
  priceMsatPerKWh: MsatField,
  quantityWh: Count,
  state: Literals('matched', 'delivering', 'completed', 'lapsed', 'disputed', 'stopped', 'unfunded'),
  producedWh: Count,
  consumedWh: Count,
  settledWh: Count,
  billedMsat: MsatField,
  paidMsat: MsatField,
  streamId: Type.Optional(Type.String()),
  producerInterval: Type.Integer(),
  consumerInterval: Type.Integer(),
  pendingProducer: Type.Array(ReadingSchema),
  pendingConsumer: Type.Array(ReadingSchema),
  closeCode: Type.Optional(Type.String()),
  closeMessage: Type.Optional(Type.String()),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
});

export const orderCodec = recordCodec('energy order', OrderSchema);
export const tradeCodec = recordCodec('energy trade', TradeSchema);

/** Orders (`eorder!<id>`): open ones in memory (the books), the rest on disk, paged by account. */
export const orderIndex = new RecordIndex<EnergyOrder>(
  'eorder',
  orderCodec,
  (o) => [o.accountId],
  isFinalOrder,
);

/** Trades (`etrade!<id>`): delivering ones in memory, the rest on disk, paged by account and overall. */
export const tradeIndex = new RecordIndex<EnergyTrade>(
  'etrade',
  tradeCodec,
  (t) => [t.producerAccountId, t.consumerAccountId],
  isFinalTrade,
);
