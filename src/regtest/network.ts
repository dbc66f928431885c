import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  addPeer,
  createChainAddress,
  getChainBalance,
  getChannels,
  getPendingChannels,
  getRouteToDestination,
  getWalletInfo,
  openChannel,
} from 'ln-service';
import type { AuthenticatedLnd } from 'lightning';
import { connectLnd } from '../lightning/lnd/connect.js';
import { ensureBinaries, type Binaries } from './binaries.js';
import { BtcdRpc } from './btcd-rpc.js';
import {
  layoutOf,
  NODE_NAMES,
  RPC_PASS,
  RPC_USER,
  type NetworkLayout,
  type NetworkOptions,
  type NodeLayout,
  type NodeName,
} from './layout.js';
import { fundAddresses, MINER_ADDRESS } from './miner.js';
import { runningPid, startDaemon, stopDaemon } from './processes.js';

/** Channels the network opens: capacity in sat, half pushed to the peer so both sides can pay. */
export const CHANNELS: readonly { from: NodeName; to: NodeName; capacitySat: number }[] = [
  { from: 'alice', to: 'bob', capacitySat: 10_000_000 },
  { from: 'bob', to: 'carol', capacitySat: 10_000_000 },
];
const FUND_SAT = 1_000_000_000n; // 10 BTC per node
const INITIAL_BLOCKS = 110;
const MARKER = '.coulomb-regtest';

export interface NodeStatus {
  name: NodeName;
  pubkey: string;
  grpcSocket: string;
  p2pSocket: string;
  tlsCert: string;
  adminMacaroon: string;
  invoiceMacaroon: string;
  readonlyMacaroon: string;
  running: boolean;
}

export interface NetworkStatus {
  dataDir: string;
  basePort: number;
  btcd: {
    running: boolean;
    rpcSocket: string;
    rpcCert: string;
    rpcUser: string;
    rpcPass: string;
    height?: number;
  };
  nodes: NodeStatus[];
}

type Log = (message: string) => void;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${last ? `: ${(last as Error).message ?? JSON.stringify(last)}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** A regtest network of btcd and three lnd nodes (alice, bob, carol), all processes of this machine. */
export class RegtestNetwork {
  readonly layout: NetworkLayout;
  readonly rpc: BtcdRpc;
  private readonly lnds = new Map<NodeName, AuthenticatedLnd>();

  constructor(
    options: NetworkOptions = {},
    private readonly log: Log = () => undefined,
  ) {
    this.layout = layoutOf(options);
    this.rpc = new BtcdRpc(this.layout.btcd.rpcPort, this.layout.btcd.rpcCert, RPC_USER, RPC_PASS);
  }

  /** Starts whatever is not running and converges to a funded, routable network. Safe to run twice. */
  async up(): Promise<NetworkStatus> {
    const started = Date.now();
    const bins = await ensureBinaries();
    await this.resetIfChainLost();
    this.startBtcd(bins);
    await until('btcd RPC', 30_000, async () => this.rpc.call<number>('getblockcount'));
    let height = await this.rpc.call<number>('getblockcount');
    if (height < INITIAL_BLOCKS) {
      this.log(`mining ${INITIAL_BLOCKS - height} blocks`);
      await this.rpc.call('generate', [INITIAL_BLOCKS - height]);
    }
    height = await this.rpc.call<number>('getblockcount');
    await Promise.all(NODE_NAMES.map((n) => this.startLnd(bins, this.layout.nodes[n])));
    await this.waitSynced();
    await this.fundNodes();
    await this.connectPeers();
    await this.openChannels();
    await this.waitRoutable();
    this.log(`network ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    return this.status();
  }

  /** Stops every process of this network. (btcd discards a regtest chain on restart, so the next `up` starts afresh.) */
  async down(): Promise<void> {
    await Promise.all(
      NODE_NAMES.map((n) => stopDaemon(this.layout.nodes[n].pidFile, this.layout.nodes[n].dir)),
    );
    await stopDaemon(this.layout.btcd.pidFile, this.layout.btcd.dir);
    this.lnds.clear();
  }

  async mine(blocks: number): Promise<string[]> {
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > 10_000)
      throw new Error('blocks must be an integer between 1 and 10000');
    const hashes = await this.rpc.call<string[]>('generate', [blocks]);
    await this.waitSynced();
    return hashes;
  }

  async status(): Promise<NetworkStatus> {
    const b = this.layout.btcd;
    const btcdRunning = runningPid(b.pidFile, b.dir) !== undefined;
    const height = btcdRunning
      ? await this.rpc.call<number>('getblockcount').catch(() => undefined)
      : undefined;
    const nodes = await Promise.all(
      NODE_NAMES.map(async (name): Promise<NodeStatus> => {
        const n = this.layout.nodes[name];
        const running = runningPid(n.pidFile, n.dir) !== undefined;
        let pubkey = '';
        if (running && existsSync(n.adminMacaroon)) {
          pubkey = await this.lnd(name)
            .then((lnd) => getWalletInfo({ lnd }))
            .then((i) => i.public_key)
            .catch(() => '');
        }
        return {
          name,
          pubkey,
          grpcSocket: `127.0.0.1:${n.grpcPort}`,
          p2pSocket: `127.0.0.1:${n.p2pPort}`,
          tlsCert: n.tlsCert,
          adminMacaroon: n.adminMacaroon,
          invoiceMacaroon: n.invoiceMacaroon,
          readonlyMacaroon: n.readonlyMacaroon,
          running,
        };
      }),
    );
    return {
      dataDir: this.layout.dataDir,
      basePort: this.layout.basePort,
      btcd: {
        running: btcdRunning,
        rpcSocket: `127.0.0.1:${b.rpcPort}`,
        rpcCert: b.rpcCert,
        rpcUser: RPC_USER,
        rpcPass: RPC_PASS,
        ...(height !== undefined ? { height } : {}),
      },
      nodes,
    };
  }

  /** An admin ln-service handle for one node (test and tooling use). */
  async lnd(name: NodeName): Promise<AuthenticatedLnd> {
    const cached = this.lnds.get(name);
    if (cached) return cached;
    const n = this.layout.nodes[name];
    const lnd = await connectLnd({
      socket: `127.0.0.1:${n.grpcPort}`,
      cert: n.tlsCert,
      macaroon: n.adminMacaroon,
    });
    this.lnds.set(name, lnd);
    return lnd;
  }

  /**
   * btcd deletes its regtest database every time it starts, so a network whose btcd stopped has
   * lost its chain, and the lnd wallets and channels built on it are void. Start over from an
   * empty directory then; only a directory this harness created is ever wiped.
   */
  private async resetIfChainLost(): Promise<void> {
    const { dataDir, btcd } = this.layout;
    const marker = join(dataDir, MARKER);
    if (runningPid(btcd.pidFile, btcd.dir) !== undefined) return;
    if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
      if (!existsSync(marker)) {
        throw new Error(`${dataDir} is not empty and was not created by coulomb regtest; refusing to use it`);
      }
      this.log(
        'btcd is not running: its regtest chain is gone (btcd wipes it on start), so the network is created afresh',
      );
      await this.down();
      for (const entry of readdirSync(dataDir))
        rmSync(join(dataDir, entry), { recursive: true, force: true });
    }
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(marker, 'created by coulomb regtest; everything here is disposable\n');
  }

  private startBtcd(bins: Binaries): void {
    const b = this.layout.btcd;
    if (runningPid(b.pidFile, b.dir) !== undefined) return;
    mkdirSync(b.dir, { recursive: true });
    this.log(`starting btcd (rpc 127.0.0.1:${b.rpcPort})`);
    startDaemon(
      bins.btcd,
      [
        '--regtest',
        `--datadir=${b.dir}/data`,
        `--logdir=${b.dir}/logs`,
        `--rpcuser=${RPC_USER}`,
        `--rpcpass=${RPC_PASS}`,
        `--rpclisten=127.0.0.1:${b.rpcPort}`,
        `--listen=127.0.0.1:${b.p2pPort}`,
        `--rpccert=${b.rpcCert}`,
        `--rpckey=${b.rpcKey}`,
        `--miningaddr=${MINER_ADDRESS}`,
        '--txindex',
        '--rejectnonstd',
        '--trickleinterval=100ms',
        '--nobanning',
        '--nostalldetect',
        '--rpcmaxwebsockets=50',
        '--rpcmaxclients=100',
        '--debuglevel=info',
      ],
      b.logFile,
      b.pidFile,
    );
  }

  private async startLnd(bins: Binaries, n: NodeLayout): Promise<void> {
    if (runningPid(n.pidFile, n.dir) === undefined) {
      mkdirSync(n.dir, { recursive: true });
      this.lnds.delete(n.name);
      this.log(`starting lnd ${n.name} (grpc 127.0.0.1:${n.grpcPort})`);
      const b = this.layout.btcd;
      startDaemon(
        bins.lnd,
        [
          `--lnddir=${n.dir}`,
          `--alias=${n.name}`,
          '--bitcoin.regtest',
          '--bitcoin.node=btcd',
          `--btcd.rpchost=127.0.0.1:${b.rpcPort}`,
          `--btcd.rpcuser=${RPC_USER}`,
          `--btcd.rpcpass=${RPC_PASS}`,
          `--btcd.rpccert=${b.rpcCert}`,
          `--rpclisten=127.0.0.1:${n.grpcPort}`,
          `--restlisten=127.0.0.1:${n.restPort}`,
          `--listen=127.0.0.1:${n.p2pPort}`,
          '--noseedbackup',
          '--nobootstrap',
          '--accept-keysend',
          '--bitcoin.defaultchanconfs=1',
          '--bitcoin.defaultremotedelay=4',
          '--trickledelay=50',
          '--gossip.sub-batch-delay=5ms',
          '--maxpendingchannels=10',
          '--debuglevel=info',
        ],
        n.logFile,
        n.pidFile,
      );
    }
    await until(`lnd ${n.name} to create its macaroons (see ${n.logFile})`, 180_000, async () => {
      if (runningPid(n.pidFile, n.dir) === undefined) {
        throw new Error(
          `lnd ${n.name} exited: ${readFileSync(n.logFile, 'utf8').split('\n').slice(-15).join('\n')}`,
        );
      }
      return existsSync(n.adminMacaroon) ? true : undefined;
    });
    const lnd = await this.lnd(n.name);
    await until(`lnd ${n.name} RPC`, 180_000, () => getWalletInfo({ lnd }));
  }

  private async waitSynced(): Promise<void> {
    const height = await this.rpc.call<number>('getblockcount');
    await Promise.all(
      NODE_NAMES.map(async (name) => {
        const lnd = await this.lnd(name);
        await until(`${name} to sync to height ${height}`, 60_000, async () => {
          const info = await getWalletInfo({ lnd });
          return info.is_synced_to_chain && info.current_block_height >= height ? true : undefined;
        });
      }),
    );
  }

  private async fundNodes(): Promise<void> {
    const needy: { name: NodeName; address: string }[] = [];
    for (const name of NODE_NAMES) {
      const lnd = await this.lnd(name);
      const [{ chain_balance }, { channels }, { pending_channels }] = await Promise.all([
        getChainBalance({ lnd }),
        getChannels({ lnd }),
        getPendingChannels({ lnd }),
      ]);
      if (chain_balance === 0 && channels.length === 0 && pending_channels.length === 0) {
        const { address } = await createChainAddress({ lnd, format: 'p2wpkh' });
        needy.push({ name, address });
      }
    }
    if (needy.length === 0) return;
    this.log(`funding ${needy.map((n) => n.name).join(', ')}`);
    await fundAddresses(
      this.rpc,
      needy.map((n) => n.address),
      FUND_SAT,
    );
    await this.rpc.call('generate', [1]);
    await this.waitSynced();
    await Promise.all(
      needy.map(async ({ name }) => {
        const lnd = await this.lnd(name);
        await until(`${name} to see its funds`, 30_000, async () =>
          (await getChainBalance({ lnd })).chain_balance > 0 ? true : undefined,
        );
      }),
    );
  }

  private async pubkey(name: NodeName): Promise<string> {
    return (await getWalletInfo({ lnd: await this.lnd(name) })).public_key;
  }

  private async connectPeers(): Promise<void> {
    for (const c of CHANNELS) {
      const lnd = await this.lnd(c.from);
      const to = this.layout.nodes[c.to];
      const key = await this.pubkey(c.to);
      await until(`${c.from} to connect to ${c.to}`, 30_000, async () => {
        await addPeer({ lnd, public_key: key, socket: `127.0.0.1:${to.p2pPort}`, timeout: 5000 });
        return true;
      });
    }
  }

  private async openChannels(): Promise<void> {
    let opened = 0;
    for (const c of CHANNELS) {
      const lnd = await this.lnd(c.from);
      const key = await this.pubkey(c.to);
      const [{ channels }, { pending_channels }] = await Promise.all([
        getChannels({ lnd }),
        getPendingChannels({ lnd }),
      ]);
      const exists =
        channels.some((ch) => ch.partner_public_key === key) ||
        pending_channels.some((ch) => ch.partner_public_key === key);
      if (exists) continue;
      this.log(`opening channel ${c.from} -> ${c.to} (${c.capacitySat} sat, half pushed)`);
      await openChannel({
        lnd,
        partner_public_key: key,
        local_tokens: c.capacitySat,
        give_tokens: c.capacitySat / 2,
        is_private: false,
      });
      opened += 1;
    }
    const anyPending = await Promise.all(
      NODE_NAMES.map(
        async (n) => (await getPendingChannels({ lnd: await this.lnd(n) })).pending_channels.length > 0,
      ),
    );
    if (opened > 0 || anyPending.some(Boolean)) {
      // 6 confirmations before channels are announced for multi-hop routing.
      await this.rpc.call('generate', [6]);
      await this.waitSynced();
    }
  }

  private async waitRoutable(): Promise<void> {
    for (const name of NODE_NAMES) {
      const lnd = await this.lnd(name);
      const expected = CHANNELS.filter((c) => c.from === name || c.to === name).length;
      await until(`${name}'s channels to be active`, 60_000, async () => {
        const { channels } = await getChannels({ lnd, is_active: true });
        return channels.length >= expected ? true : undefined;
      });
    }
    const [alice, carol] = await Promise.all([this.lnd('alice'), this.lnd('carol')]);
    const [aliceKey, carolKey] = await Promise.all([this.pubkey('alice'), this.pubkey('carol')]);
    let nudges = 0;
    await until(
      'routes alice <-> carol over bob',
      90_000,
      async () => {
        const there = await getRouteToDestination({ lnd: alice, destination: carolKey, tokens: 1000 });
        const back = await getRouteToDestination({ lnd: carol, destination: aliceKey, tokens: 1000 });
        if (there.route && back.route) return true;
        // Gossip is driven by new blocks too; nudge it now and then.
        if (++nudges % 20 === 0) await this.rpc.call('generate', [1]);
        return undefined;
      },
      250,
    );
  }
}
