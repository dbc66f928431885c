import { msat } from '../src/domain/msat.js';
import type { Invoice } from '../src/lightning/types.js';
import { FakeLightning } from '../test/support/fake-lightning.js';

/**
 * The soak populator's Lightning stand-in (bench only): the unit tests' in-memory `FakeLightning`
 * (requests are base64 JSON its own `decodeInvoice` reads, no BOLT11 encoding or signing), with an
 * O(1) `settle` — the fake's own numbers each settlement by scanning every invoice it holds,
 * quadratic over a populator's chunk of thousands.
 */
export class SoakLightning extends FakeLightning {
  private settled = 0;

  override settle(hash: string): Invoice {
    const inv = this.invoices.get(hash);
    if (!inv) throw new Error(`the stand-in made no invoice ${hash}`);
    inv.state = 'settled';
    inv.receivedMsat = msat(inv.amountMsat);
    inv.settleIndex = ++this.settled;
    return { ...inv };
  }
}
