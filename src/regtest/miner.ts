import { createHash } from 'node:crypto';
import * as bitcoin from 'bitcoinjs-lib';
import { ECPairFactory } from 'ecpair';
import * as ecc from 'tiny-secp256k1';
import type { BtcdRpc } from './btcd-rpc.js';

const ECPair = ECPairFactory(ecc);
const network = bitcoin.networks.regtest;

/** Regtest only: a fixed key that btcd mines to, so the harness can spend coinbases without a wallet. */
const minerKey = ECPair.fromPrivateKey(createHash('sha256').update('coulomb regtest miner key').digest(), {
  network,
});
const minerPayment = bitcoin.payments.p2wpkh({ pubkey: minerKey.publicKey, network });

export const MINER_ADDRESS = minerPayment.address as string;
export const COINBASE_MATURITY = 100;
const FEE_SAT = 20_000n;

interface TxOut {
  value: number;
  confirmations: number;
  coinbase: boolean;
  scriptPubKey: { hex: string };
}

function btcToSat(btc: number): bigint {
  // btcd reports BTC as JSON numbers with 8 decimals; rounding recovers the exact satoshi count.
  return BigInt(Math.round(btc * 1e8));
}

/** Finds a mature coinbase output of ours that is still unspent. */
async function findSpendableCoinbase(
  rpc: BtcdRpc,
  minSat: bigint,
): Promise<{ txid: string; value: bigint; script: Uint8Array }> {
  const height = await rpc.call<number>('getblockcount');
  for (let h = 1; h <= height - COINBASE_MATURITY; h++) {
    const hash = await rpc.call<string>('getblockhash', [h]);
    const block = await rpc.call<{ tx: string[] }>('getblock', [hash]);
    const txid = block.tx[0];
    if (!txid) continue;
    const out = await rpc.call<TxOut | null>('gettxout', [txid, 0, true]);
    if (!out || out.scriptPubKey.hex !== Buffer.from(minerPayment.output as Uint8Array).toString('hex'))
      continue;
    const value = btcToSat(out.value);
    if (value >= minSat + FEE_SAT) return { txid, value, script: minerPayment.output as Uint8Array };
  }
  throw new Error('no mature coinbase output left to fund the nodes: mine more blocks');
}

/** Sends `amountSat` to each address in one transaction spending a miner coinbase; returns the txid. */
export async function fundAddresses(rpc: BtcdRpc, addresses: string[], amountSat: bigint): Promise<string> {
  const total = amountSat * BigInt(addresses.length);
  const coin = await findSpendableCoinbase(rpc, total);
  const psbt = new bitcoin.Psbt({ network });
  psbt.addInput({ hash: coin.txid, index: 0, witnessUtxo: { script: coin.script, value: coin.value } });
  for (const address of addresses) psbt.addOutput({ address, value: amountSat });
  const change = coin.value - total - FEE_SAT;
  if (change > 0n) psbt.addOutput({ address: MINER_ADDRESS, value: change });
  psbt.signInput(0, minerKey);
  psbt.finalizeAllInputs();
  const hex = psbt.extractTransaction().toHex();
  return rpc.call<string>('sendrawtransaction', [hex]);
}
