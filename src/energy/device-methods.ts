import { msat } from '../domain/msat.js';
import { deviceMethod, type DeviceOperation } from '../devices/bridge.js';
import { DeviceError, DeviceErrorCode } from '../devices/errors.js';
import type { EnergyMarket } from './market.js';
import type { NewOrder } from './types.js';

const invalid = (message: string): DeviceError => new DeviceError(DeviceErrorCode.INVALID_PARAMS, message);

function count(v: unknown, key: string, min: bigint): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v) && BigInt(v) >= min) return BigInt(v);
  if (typeof v === 'string' && /^(0|[1-9][0-9]{0,15})$/.test(v) && BigInt(v) >= min) return BigInt(v);
  throw invalid(`${key} must be an integer of at least ${min} (a number or a decimal string)`);
}

function time(v: unknown, key: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw invalid(`${key} must be ms since the epoch`);
  return v;
}

/**
 * The energy market's device methods: `energy.order` (a producer's meter offers, a consumer's
 * device bids), and `meter.report` with a `tradeId` (a reading of one interval of a trade; a
 * `meter.report` with a `streamId` goes on to the metered-stream method it wraps).
 */
export function energyOperations(
  market: EnergyMarket,
  meterReport: DeviceOperation | undefined,
): Record<string, DeviceOperation> {
  const tradeReport = deviceMethod(
    (params) => {
      const tradeId = params['tradeId'];
      if (typeof tradeId !== 'string' || tradeId.length === 0 || tradeId.length > 64)
        throw invalid('tradeId must be a string of 1 to 64 characters');
      const interval = params['interval'];
      if (typeof interval !== 'number' || !Number.isSafeInteger(interval) || interval < 0)
        throw invalid('interval must be a non-negative integer');
      return { tradeId, interval, wh: count(params['wh'], 'wh', 0n) };
    },
    async (device, { tradeId, interval, wh }) => {
      const who = await market.reporterOf(tradeId, device);
      const t = await market.report(tradeId, who, interval, wh);
      return {
        tradeId,
        state: t.state,
        settledWh: t.settledWh.toString(),
        billedMsat: t.billedMsat.toString(),
        paidMsat: t.paidMsat.toString(),
      };
    },
  );
  return {
    'energy.order': deviceMethod(
      (params): NewOrder => {
        const side = params['side'];
        if (side !== 'offer' && side !== 'bid') throw invalid('side must be offer or bid');
        const zone = params['zone'] ?? 'default';
        if (typeof zone !== 'string') throw invalid('zone must be a string');
        const meter = params['meterDeviceId'];
        if (meter !== undefined && typeof meter !== 'string') throw invalid('meterDeviceId must be a string');
        return {
          side,
          zone,
          windowStart: time(params['windowStart'], 'windowStart'),
          windowEnd: time(params['windowEnd'], 'windowEnd'),
          priceMsatPerKWh: msat(count(params['priceMsatPerKWh'], 'priceMsatPerKWh', 1n)),
          quantityWh: count(params['quantityWh'], 'quantityWh', 1n),
          ...(meter !== undefined ? { meterDeviceId: meter } : {}),
        };
      },
      async (device, order) => {
        const { order: o, trades } = await market.submit(device.accountId, order);
        return {
          orderId: o.id,
          state: o.state,
          filledWh: o.filledWh.toString(),
          trades: trades.map((t) => ({
            tradeId: t.id,
            quantityWh: t.quantityWh.toString(),
            priceMsatPerKWh: t.priceMsatPerKWh.toString(),
          })),
        };
      },
    ),
    'meter.report': (params) => {
      if (params['tradeId'] !== undefined || meterReport === undefined) return tradeReport(params);
      return meterReport(params);
    },
  };
}
