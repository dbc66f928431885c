import { provesPayment } from '../domain/hex.js';
import { AppError } from '../domain/errors.js';
import { msat, type Msat } from '../domain/msat.js';
import { CappedSlots } from '../domain/slots.js';
import type { EscrowService } from '../escrow/service.js';
import type { Escrow } from '../escrow/types.js';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { IndexedItems, RecordIndex } from '../ledger/record-index.js';
import type { EventBus } from '../payments/events.js';
import type { Logger } from '../domain/logger.js';
import { OPERATOR_ACCOUNT } from '../ledger/system-accounts.js';
import { type PaymentsService } from '../payments/service.js';
import type { PublicStream, StreamsService } from '../streams/index.js';
import { deviceMethod, type DeviceOperation } from './bridge.js';
import { DeviceError, DeviceErrorCode } from './errors.js';
import type { DeviceEvents } from './events.js';
import type { DeviceRegistry } from './registry.js';

/** A reading a sensor sells: the buyer pays the invoice, the device is told and delivers it. */
export interface Sale {
  paymentHash: string;
  deviceId: string;
  accountId: string;
  priceMsat: Msat;
  description: string;
  /** `expired`: the invoice expired unpaid. */
  state: 'offered' | 'sold' | 'delivered' | 'expired';
  request: string;
  /** When the invoice expires (ms). */
  expiresAt?: number;
  reading?: string;
  createdAt: number;
  soldAt?: number;
  deliveredAt?: number;
}

/** Pay-to-actuate: a hold invoice settled only once the device acknowledges it acted. */
export interface Actuation {
  actuationId: string;
  deviceId: string;
  command: string;
  state: 'awaiting_payment' | 'sent' | 'acknowledged' | 'refunded';
  createdAt: number;
}

/** Sales (`dsale!<payment hash>`) and actuations (`dact!<escrow id>`) on disk; the open ones in memory. */
const saleIndex = new RecordIndex<Sale>(
  'dsale',
  {
    encode: (s) => JSON.stringify({ ...s, priceMsat: s.priceMsat.toString() }),
    decode: (raw) => {
      const s = JSON.parse(raw) as Sale & { priceMsat: string };
      return { ...s, priceMsat: msat(s.priceMsat) };
    },
  },
  (s) => [s.accountId],
  (s) => s.state === 'delivered' || s.state === 'expired',
  (s) => s.paymentHash,
  /^[0-9a-f]{64}$/,
);
const actuationIndex = new RecordIndex<Actuation>(
  'dact',
  { encode: (a) => JSON.stringify(a), decode: (raw) => JSON.parse(raw) as Actuation },
  () => [],
  (a) => a.state === 'acknowledged' || a.state === 'refunded',
  (a) => a.actuationId,
);
/** A paid sale's event lives this long: the reading stays deliverable, devices may be offline a while. */
const SOLD_EVENT_TTL_S = 24 * 3600;
/** An offer is closed this long after its invoice expired (a payment accepted at the last moment may still settle). */
const OFFER_GRACE_MS = 10 * 60_000;
/** Open actuations a device may have: anyone may ask (and leave the invoice unpaid until it expires). */
const MAX_OPEN_ACTUATIONS = 16;
/** Streams whose devices were told they stopped, remembered to tell them once. */
const STOPS_REMEMBERED = 10_000;
const invalid = (message: string): DeviceError => new DeviceError(DeviceErrorCode.INVALID_PARAMS, message);

function text(params: Record<string, unknown>, key: string, max: number, optional = false): string {
  const v = params[key];
  if (v === undefined && optional) return '';
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw invalid(`${key} must be a string of 1 to ${max} characters`);
  return v;
}

function priceOf(v: unknown): Msat {
  if (typeof v !== 'string' || !/^[1-9][0-9]{0,15}$/.test(v))
    throw invalid('priceMsat must be a positive msat amount as a decimal string');
  return msat(v);
}

/**
 * What devices sell and do for money: readings (sell → paid → told → deliver), actuations
 * (hold invoice → paid → actuate → acknowledged → settled, or refunded on silence), and meter
 * reports of metered streams.
 */
export class DeviceCommerce {
  private readonly sales: IndexedItems<Sale>;
  private readonly actuations: IndexedItems<Actuation>;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly stopsSent = new Set<string>();
  /** Open actuations per device (awaiting payment or sent to the device), and those being created. */
  private readonly actuationSlots = new CappedSlots(MAX_OPEN_ACTUATIONS, (deviceId) => {
    let open = 0;
    for (const a of this.actuations.values())
      if (a.deviceId === deviceId && (a.state === 'awaiting_payment' || a.state === 'sent')) open += 1;
    return open;
  });

  constructor(
    private readonly deps: {
      ledger: Ledger;
      payments: PaymentsService;
      escrow: EscrowService;
      streams: StreamsService;
      registry: DeviceRegistry;
      events: DeviceEvents;
      bus: EventBus;
      log: Logger;
      now?: () => number;
    },
  ) {
    this.sales = new IndexedItems(saleIndex, deps.ledger);
    this.actuations = new IndexedItems(actuationIndex, deps.ledger);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(): Promise<void> {
    await this.load();
    await this.startDuties();
  }

  /** The open sales and actuations, and the bus subscription that moves them on: every instance. */
  async load(): Promise<void> {
    await this.sales.load();
    await this.actuations.load();
    this.unsubscribe = this.deps.bus.subscribeAll(
      (_account, event) => {
        if (event.type === 'invoice' && event.invoice.state === 'settled')
          void this.onSold(event.invoice.paymentHash).catch(this.failed('a sale'));
        if (event.type === 'escrow')
          void this.onEscrow(event['escrow'] as Escrow).catch(this.failed('an actuation'));
        if (event.type === 'stream')
          void this.onStream(event['stream'] as PublicStream).catch(this.failed('a stream stop'));
      },
      ['invoice', 'escrow', 'stream'],
    );
  }

  /** The leader's part: catching up what happened while nobody listened, and offer expiry. */
  async startDuties(): Promise<void> {
    // What happened while this process was not listening (before a restart, or a crash between a
    // payment and its sale's or actuation's record) is caught up now; offers also every minute.
    for (const a of [...this.actuations.values()]) {
      const e = await this.deps.escrow.get(a.actuationId).catch(() => undefined);
      if (e) await this.onEscrow(e).catch(this.failed('an actuation'));
    }
    for (const sale of [...this.sales.values()])
      if (sale.state === 'sold') await this.remindSold(sale).catch(this.failed('a sale'));
    await this.expireOffers();
    this.stopDuties();
    this.timer = setInterval(() => void this.expireOffers(), 60_000);
    this.timer.unref();
  }

  stopDuties(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private failed(what: string): (err: unknown) => void {
    return (err) => this.deps.log.error({ err }, `updating ${what} failed`);
  }

  stop(): void {
    this.unsubscribe?.();
    this.stopDuties();
  }

  /**
   * Offers whose invoice was paid while nobody listened (before a restart, or a crash before the
   * sale was marked) become sold; those whose invoice expired unpaid are closed (and leave memory).
   */
  async expireOffers(): Promise<void> {
    const now = this.now();
    for (const sale of [...this.sales.values()]) {
      if (sale.state !== 'offered') continue;
      const invoice = await this.deps.payments.getInvoice(sale.paymentHash);
      if (invoice?.state === 'settled') {
        await this.onSold(sale.paymentHash).catch(this.failed('a sale'));
        continue;
      }
      // Closed only once LND canceled the invoice (it does at expiry), or with no record of it at
      // all long after: an invoice whose state is not known yet may still turn out paid.
      const expiresAt = sale.expiresAt ?? invoice?.expiresAt ?? sale.createdAt + 24 * 3600_000;
      if (now < expiresAt + OFFER_GRACE_MS) continue;
      if (invoice !== undefined && invoice.state !== 'canceled') continue;
      sale.state = 'expired';
      await this.saveSale(sale).catch((err: unknown) =>
        this.deps.log.warn({ err, paymentHash: sale.paymentHash }, 'closing an expired offer failed'),
      );
    }
  }

  operations(): Record<string, DeviceOperation> {
    return {
      'offer.sell': deviceMethod(
        (params) => ({
          price: priceOf(params['priceMsat']),
          description: text(params, 'description', 200, true) || 'a reading',
          // A reading given up front is sealed until the buyer pays; otherwise the device delivers it when told.
          reading: params['reading'] === undefined ? undefined : text(params, 'reading', 4000),
        }),
        async (device, { price, description, reading }) => {
          const inv = await this.deps.payments.createInvoice(device.accountId, {
            amountMsat: price,
            description: `${device.name}: ${description}`.slice(0, 639),
          });
          const sale: Sale = {
            paymentHash: inv.paymentHash,
            deviceId: device.deviceId,
            accountId: device.accountId,
            priceMsat: price,
            description,
            state: 'offered',
            request: inv.request,
            expiresAt: inv.expiresAt,
            ...(reading !== undefined ? { reading } : {}),
            createdAt: this.now(),
          };
          await this.saveSale(sale);
          return { paymentHash: sale.paymentHash, request: sale.request, priceMsat: price };
        },
      ),
      'sale.deliver': deviceMethod(
        (params) => ({
          paymentHash: text(params, 'paymentHash', 64),
          // Needed only by a sale not delivered yet: a retry of a delivered one may leave it out.
          reading: params['reading'] === undefined ? undefined : text(params, 'reading', 4000),
        }),
        async (device, { paymentHash, reading }) => {
          const sale = await this.sales.find(paymentHash);
          if (!sale || sale.deviceId !== device.deviceId) throw invalid('no such sale of this device');
          if (sale.state === 'offered')
            throw new AppError('SALE_NOT_PAID', 'the buyer has not paid yet', 409);
          if (sale.state === 'expired') throw new AppError('SALE_EXPIRED', 'the offer expired unpaid', 409);
          if (sale.state === 'delivered') return { paymentHash: sale.paymentHash, state: sale.state };
          if (reading === undefined) throw invalid('reading must be a string of 1 to 4000 characters');
          sale.reading = reading;
          sale.state = 'delivered';
          sale.deliveredAt = this.now();
          await this.saveSale(sale);
          return { paymentHash: sale.paymentHash, state: sale.state };
        },
      ),
      'actuate.ack': deviceMethod(
        (params) => text(params, 'actuationId', 64),
        async (device, actuationId) => {
          const a = await this.actuations.find(actuationId);
          if (!a || a.deviceId !== device.deviceId) throw invalid('no such actuation of this device');
          const e = await this.deps.escrow.releaseNow(a.actuationId, 'device_acknowledged');
          a.state = 'acknowledged';
          await this.saveActuation(a);
          return { actuationId: a.actuationId, state: a.state, settled: e.state === 'released' };
        },
      ),
      'meter.report': deviceMethod(
        (params) => {
          const streamId = text(params, 'streamId', 64);
          const units = params['units'];
          if (typeof units !== 'number' || !Number.isSafeInteger(units) || units < 1)
            throw invalid('units must be a positive integer');
          return { streamId, units };
        },
        async (device, { streamId, units }) => {
          const s = await this.deps.streams.get(streamId);
          if (s.payeeAccountId !== device.accountId) throw invalid('this stream does not pay this device');
          const after = await this.deps.streams.reportUsage(streamId, units);
          return { streamId, state: after.state, units: after.units, accruedMsat: after.accruedMsat };
        },
      ),
    };
  }

  /** The buyer's proof of payment (the preimage) unlocks the delivered reading. */
  async readSale(paymentHash: string, preimage: string): Promise<{ state: Sale['state']; reading?: string }> {
    const sale = provesPayment(preimage, paymentHash) ? await this.sales.peek(paymentHash) : undefined;
    if (!sale) throw new AppError('SALE_NOT_FOUND', 'no sale for this payment proof', 404);
    return sale.state === 'delivered' ? { state: sale.state, reading: sale.reading! } : { state: sale.state };
  }

  /** A buyer asks a device to act: a hold invoice that settles only when the device acknowledges. */
  async requestActuation(
    deviceId: string,
    input: { command: string; priceMsat: Msat; timeoutSeconds?: number; idempotencyKey?: string },
  ): Promise<{ actuationId: string; request: string; paymentHash: string }> {
    const { idempotencyKey, ...request } = input;
    // Buyers are anonymous: their keys have a scope of their own per device, apart from the keys
    // of the device's account (a buyer's key can never collide with the device's own requests).
    return this.deps.ledger.idempotent(
      { accountId: `actuations:${deviceId}`, key: idempotencyKey, operation: 'actuation', request },
      (records) => this.requestActuationOnce(deviceId, request, records),
      async (id) => {
        const e = await this.deps.escrow.get(id);
        return { actuationId: id, request: e.request ?? '', paymentHash: e.paymentHash };
      },
    );
  }

  private async requestActuationOnce(
    deviceId: string,
    input: { command: string; priceMsat: Msat; timeoutSeconds?: number },
    idem: (id: string) => SideRecords,
  ): Promise<{ actuationId: string; request: string; paymentHash: string }> {
    const device = await this.deps.registry.find(deviceId);
    if (!device || device.state !== 'active')
      throw new DeviceError(DeviceErrorCode.UNKNOWN_DEVICE, 'no active device with this id');
    // The slot is taken before the hold invoice is asked for: requests arriving meanwhile count it.
    const slot = this.actuationSlots.take(deviceId);
    if (!slot)
      throw new AppError(
        'TOO_MANY_ACTUATIONS',
        `this device has ${MAX_OPEN_ACTUATIONS} actuations open`,
        429,
      );
    try {
      const e = await this.deps.escrow.create(OPERATOR_ACCOUNT, {
        payeeAccountId: device.accountId,
        amountMsat: input.priceMsat,
        description: `actuate ${device.name}: ${input.command}`.slice(0, 600),
        condition: { type: 'approval' },
        timeoutSeconds: input.timeoutSeconds ?? 120,
      });
      const a: Actuation = {
        actuationId: e.id,
        deviceId,
        command: input.command,
        state: 'awaiting_payment',
        createdAt: this.now(),
      };
      const saved = this.saveActuation(a, idem(a.actuationId)); // open in memory from here: counted instead of the slot
      slot.release();
      await saved;
      return { actuationId: a.actuationId, request: e.request!, paymentHash: e.paymentHash };
    } finally {
      slot.release();
    }
  }

  async getActuation(id: string): Promise<Actuation | undefined> {
    const a = await this.actuations.peek(id);
    return a ? { ...a } : undefined;
  }

  private async onSold(paymentHash: string): Promise<void> {
    // An offered sale is open, so in memory (offers close only once LND canceled their invoice).
    const sale = this.sales.openItem(paymentHash);
    if (!sale || sale.state !== 'offered') return;
    sale.state = sale.reading !== undefined ? 'delivered' : 'sold';
    sale.soldAt = this.now();
    if (sale.reading !== undefined) sale.deliveredAt = sale.soldAt;
    this.sales.remember(sale);
    // The sale's new state and the event that tells the device are one write: a crash cannot
    // leave a paid sale whose device is never told.
    await this.deps.events.push(
      sale.deviceId,
      'sold',
      { paymentHash, priceMsat: sale.priceMsat.toString() },
      SOLD_EVENT_TTL_S,
      () => saleIndex.records(sale),
    );
  }

  /** Tells a device again about a sale it has not delivered (after a restart: its event may be gone). */
  private async remindSold(sale: Sale): Promise<void> {
    await this.deps.events.push(
      sale.deviceId,
      'sold',
      { paymentHash: sale.paymentHash, priceMsat: sale.priceMsat.toString() },
      SOLD_EVENT_TTL_S,
    );
  }

  /**
   * A stream that stopped tells the devices on both sides: the consumer's relay cuts the power,
   * the meter stops metering. Sent once per stream.
   */
  private async onStream(st: PublicStream): Promise<void> {
    if (st.state !== 'stopped' || this.stopsSent.has(st.id)) return;
    this.stopsSent.add(st.id);
    if (this.stopsSent.size > STOPS_REMEMBERED) this.stopsSent.delete(this.stopsSent.values().next().value!);
    const accounts = new Set([st.payerAccountId, ...(st.payeeAccountId ? [st.payeeAccountId] : [])]);
    const targets = this.deps.registry
      .list()
      .filter((d) => d.state === 'active' && accounts.has(d.accountId));
    // All written at once (each push writes before it sends), then sent side by side.
    await Promise.all(
      targets.map((d) =>
        this.deps.events.push(d.deviceId, 'stop', {
          streamId: st.id,
          reason: st.stopReason ?? 'requested',
          paidMsat: st.paidMsat.toString(),
        }),
      ),
    );
  }

  private async onEscrow(e: Escrow): Promise<void> {
    const a = this.actuations.openItem(e.id); // only open actuations change with their escrow
    if (!a) return;
    if (e.state === 'funded' && a.state === 'awaiting_payment') {
      a.state = 'sent';
      this.actuations.remember(a);
      const ttl = Math.max(1, Math.floor((e.deadline - this.now()) / 1000));
      // State and event in one write, as for sales.
      await this.deps.events.push(
        a.deviceId,
        'actuate',
        { actuationId: a.actuationId, command: a.command },
        ttl,
        () => actuationIndex.records(a),
      );
    } else if ((e.state === 'refunded' || e.state === 'expired') && a.state !== 'refunded') {
      a.state = 'refunded';
      await this.saveActuation(a);
    } else if (e.state === 'released' && a.state === 'sent') {
      // Acknowledged and released, but the crash came before the actuation was saved.
      a.state = 'acknowledged';
      await this.saveActuation(a);
    }
  }

  private saveSale(s: Sale): Promise<void> {
    this.sales.remember(s);
    return this.deps.ledger.putRecords(saleIndex.records(s));
  }

  private saveActuation(a: Actuation, extra: SideRecords = []): Promise<void> {
    this.actuations.remember(a);
    return this.deps.ledger.putRecords([...actuationIndex.records(a), ...extra]);
  }
}
