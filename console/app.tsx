import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import type { ComponentChildren } from 'preact';
import { del, get, login, logout, post, put, resume, sats, when } from './api.js';
import { download, toCsv } from './csv.js';
import { AccountActivity, Devices, Escrows, Payments } from './activity.js';
import { Rules } from './rules.js';
import { Err, useAction, usePaged } from './ui.js';

type Page = 'overview' | 'accounts' | 'approvals' | 'payments' | 'escrows' | 'devices' | 'services';
const PAGES: [Page, string][] = [
  ['overview', 'Overview'],
  ['accounts', 'Accounts'],
  ['approvals', 'Approvals'],
  ['payments', 'Payments'],
  ['escrows', 'Escrows'],
  ['devices', 'Devices'],
  ['services', 'Paid services'],
];

const pageOf = (hash: string): Page => {
  const p = hash.replace(/^#\/?/, '');
  return PAGES.some(([k]) => k === p) ? (p as Page) : 'overview';
};

const EVENT_TYPES = [
  'payment',
  'invoice',
  'balance',
  'approval',
  'alert',
  'escrow',
  'task',
  'stream',
  'stream_lapsed',
  'stream_resumed',
  'energy_order',
  'energy_trade',
  'auction',
];

/** The last 30 server-sent events of a feed (the session cookie goes with the request). */
function useEvents(url: string): string[] {
  const [events, setEvents] = useState<string[]>([]);
  useEffect(() => {
    setEvents([]);
    const source = new EventSource(url);
    for (const type of EVENT_TYPES)
      source.addEventListener(type, (m: MessageEvent<string>) =>
        setEvents((e) => [`${type} ${m.data}`, ...e].slice(0, 30)),
      );
    return () => source.close();
  }, [url]);
  return events;
}

const Feed = ({ events, name }: { events: string[]; name: string }) => (
  <ul class={`feed ${name}`}>
    {events.map((e, i) => (
      <li key={i} class="mono">
        {e}
      </li>
    ))}
  </ul>
);

/** Every account's events (balances aside), on every page. */
function OperatorFeed() {
  const events = useEvents('/v1/events');
  return (
    <aside>
      <h4>Live events, all accounts</h4>
      <Feed events={events} name="operator-feed" />
    </aside>
  );
}

function Login({ onDone }: { onDone: () => void }) {
  const [key, setKey] = useState('');
  const [error, run] = useAction();
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => {
          await login(key);
          setKey('');
          onDone();
        });
      }}
    >
      <h1>Coulomb console</h1>
      <label>
        Operator key
        <input
          name="key"
          type="password"
          autocomplete="current-password"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
      </label>
      <button type="submit">Log in</button>
      <Err error={error} />
    </form>
  );
}

interface NodeInfo {
  alias: string;
  pubkey: string;
  network: string;
  blockHeight: number;
  syncedToChain: boolean;
  activeChannels: number;
  peers: number;
  version: string;
}
type Balances = Record<
  | 'channelLocalMsat'
  | 'channelRemoteMsat'
  | 'channelPendingMsat'
  | 'onchainConfirmedMsat'
  | 'onchainUnconfirmedMsat',
  string
>;
type Liabilities = Record<
  'accountsMsat' | 'pendingOutMsat' | 'nodeChannelLocalMsat' | 'nodeOnchainMsat' | 'coverage',
  string
>;

const Figure = ({ label, value, id }: { label: string; value: ComponentChildren; id?: string }) => (
  <div class="figure">
    <dt>{label}</dt>
    <dd data-figure={id}>{value}</dd>
  </div>
);

function Overview() {
  const [data, setData] = useState<{
    node: NodeInfo;
    balances: Balances;
    lightning: string;
    liabilities?: Liabilities;
  }>();
  const [error, run] = useAction();
  useEffect(
    () =>
      void run(async () => {
        const [node, balances] = await Promise.all([
          get<NodeInfo>('/v1/node'),
          get<Balances>('/v1/node/balances'),
        ]);
        const liabilities = await get<Liabilities>('/v1/liabilities').catch(() => undefined);
        // /health answers 503 with the same body when LND is unreachable.
        const health = await fetch('/health').then((r) => r.json() as Promise<{ lightning: string }>);
        setData({ node, balances, lightning: health.lightning, ...(liabilities ? { liabilities } : {}) });
      }),
    [],
  );
  if (!data) return <Err error={error} />;
  const { node, balances: b, liabilities: l, lightning } = data;
  const low = l !== undefined && l.coverage !== 'inf' && Number(l.coverage) < 1;
  return (
    <section>
      <h2>Node</h2>
      <dl class="figures">
        <Figure label="Alias" value={node.alias} id="alias" />
        <Figure label="Network" value={node.network} />
        <Figure label="Block height" value={node.blockHeight} id="blockHeight" />
        <Figure label="Synced to chain" value={node.syncedToChain ? 'yes' : 'no'} />
        <Figure label="Active channels" value={node.activeChannels} id="activeChannels" />
        <Figure label="Peers" value={node.peers} />
        <Figure label="LND" value={node.version} />
        <Figure label="LND connection" value={lightning} id="lightning" />
      </dl>
      {lightning !== 'connected' && (
        <p class="error" role="alert">
          LND is not reachable: payments wait until it is back.
        </p>
      )}
      <p class="mono">{node.pubkey}</p>
      <h2>Funds</h2>
      <dl class="figures">
        <Figure label="Channels, local" value={sats(b.channelLocalMsat)} id="channelLocal" />
        <Figure label="Channels, remote" value={sats(b.channelRemoteMsat)} />
        <Figure label="Channels, pending" value={sats(b.channelPendingMsat)} />
        <Figure label="On-chain, confirmed" value={sats(b.onchainConfirmedMsat)} />
        <Figure label="On-chain, unconfirmed" value={sats(b.onchainUnconfirmedMsat)} />
      </dl>
      {l && (
        <>
          <h2>Liabilities</h2>
          <dl class="figures">
            <Figure label="Owed to accounts" value={sats(l.accountsMsat)} id="liabilities" />
            <Figure label="Pending out" value={sats(l.pendingOutMsat)} />
            <Figure label="Coverage (funds / liabilities)" value={l.coverage} id="coverage" />
          </dl>
          {low && (
            <p class="error" role="alert">
              Coverage below 1: the node holds less than it owes to accounts.
            </p>
          )}
        </>
      )}
      <Alerts />
      <FrozenAccounts />
      <Err error={error} />
    </section>
  );
}

interface Alert {
  code: string;
  severity: 'critical' | 'warning';
  message: string;
  count?: number;
}

/** What needs the operator now (GET /v1/alerts), refreshed every 10 s. */
function Alerts() {
  const [alerts, setAlerts] = useState<Alert[]>();
  const [error, run] = useAction();
  useEffect(() => {
    const load = () => void run(async () => setAlerts((await get<{ alerts: Alert[] }>('/v1/alerts')).alerts));
    load();
    const timer = setInterval(load, 10_000);
    return () => clearInterval(timer);
  }, []);
  return (
    <>
      <h2>Alerts</h2>
      <Err error={error} />
      {alerts?.length === 0 && <p class="alerts-none">No alerts.</p>}
      <ul class="alerts">
        {alerts?.map((a) => (
          <li key={a.code} class={a.severity} data-alert={a.code}>
            <strong>{a.severity}</strong> {a.message}
          </li>
        ))}
      </ul>
    </>
  );
}

/** The frozen accounts, paged from the server's index of them. */
function FrozenAccounts() {
  const list = usePaged<Account>(async (after) => {
    const r = await get<{ accounts: Account[]; next?: string }>(
      `/v1/accounts?frozen=true&limit=20${after ? '&after=' + encodeURIComponent(after) : ''}`,
    );
    return { items: r.accounts, ...(r.next ? { next: r.next } : {}) };
  }, []);
  return (
    <>
      <h2>Frozen accounts</h2>
      <Err error={list.error} />
      <table class="frozen-accounts">
        <tbody>
          {list.items.map((a) => (
            <tr key={a.id} data-row={a.id}>
              <td class="mono">{a.id}</td>
              <td>{a.name}</td>
              <td>{sats(a.balanceMsat)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.items.length === 0 && !list.error && <p class="empty">none</p>}
      {list.pager}
    </>
  );
}

interface Account {
  id: string;
  kind: string;
  name: string;
  frozen: boolean;
  balanceMsat: string;
  availableMsat: string;
  tier?: string;
  createdAt: number;
}
interface Entry {
  seq: number;
  at: number;
  type: string;
  transferId?: string;
  amount?: string;
  detail?: string;
  accountIds: string[];
}

const HISTORY_PAGE = 50;

function Accounts() {
  const [selected, setSelected] = useState<string>();
  const [search, setSearch] = useState({ prefix: '', by: 'name' });
  /** The search the list shows (the form's, once submitted). */
  const [query, setQuery] = useState({ prefix: '', by: 'name' });
  const list = usePaged<Account>(
    async (after) => {
      const filter = query.prefix ? `&by=${query.by}&prefix=${encodeURIComponent(query.prefix)}` : '';
      const r = await get<{ accounts: Account[]; next?: string }>(
        `/v1/accounts?limit=50${filter}${after ? '&after=' + encodeURIComponent(after) : ''}`,
      );
      return { items: r.accounts, ...(r.next ? { next: r.next } : {}) };
    },
    [query],
  );
  const [form, setForm] = useState({ name: '', kind: 'agent', tier: 'L0' });
  const [error, run] = useAction();
  return (
    <section>
      <h2>Accounts</h2>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const a = await post<Account>('/v1/accounts', form);
            setForm({ ...form, name: '' });
            setSelected(a.id);
            await list.reload();
          });
        }}
      >
        <input
          name="name"
          placeholder="name"
          value={form.name}
          onInput={(e) => setForm({ ...form, name: e.currentTarget.value })}
        />
        <select
          name="kind"
          value={form.kind}
          onChange={(e) => setForm({ ...form, kind: e.currentTarget.value })}
        >
          <option>agent</option>
          <option>device</option>
          <option>service</option>
        </select>
        <select
          name="tier"
          value={form.tier}
          onChange={(e) => setForm({ ...form, tier: e.currentTarget.value })}
        >
          {['L0', 'L1', 'L2', 'L3'].map((t) => (
            <option>{t}</option>
          ))}
        </select>
        <button type="submit">Create account</button>
      </form>
      <form
        class="row search"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ ...search, prefix: search.prefix.trim() });
        }}
      >
        <input
          name="search"
          type="search"
          placeholder="id or name starts with"
          value={search.prefix}
          onInput={(e) => setSearch({ ...search, prefix: e.currentTarget.value })}
        />
        <select
          name="search-by"
          value={search.by}
          onChange={(e) => setSearch({ ...search, by: e.currentTarget.value })}
        >
          <option value="name">by name</option>
          <option value="id">by id</option>
        </select>
        <button type="submit">Search</button>
      </form>
      <Err error={error ?? list.error} />
      <table class="accounts">
        <thead>
          <tr>
            <th>Id</th>
            <th>Name</th>
            <th>Kind</th>
            <th>Tier</th>
            <th>Balance</th>
            <th>Frozen</th>
          </tr>
        </thead>
        <tbody>
          {list.items.map((a) => (
            <tr
              key={a.id}
              data-row={a.id}
              class={a.id === selected ? 'selected' : ''}
              onClick={() => setSelected(a.id)}
            >
              <td class="mono">{a.id}</td>
              <td>{a.name}</td>
              <td>{a.kind}</td>
              <td>{a.tier}</td>
              <td>{sats(a.balanceMsat)}</td>
              <td>{a.frozen ? 'frozen' : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.items.length === 0 && !list.error && <p class="empty">no account</p>}
      {list.pager}
      {selected && <AccountDetail id={selected} onChange={() => void list.reload()} />}
    </section>
  );
}

function AccountDetail({ id, onChange }: { id: string; onChange: () => void }) {
  const [account, setAccount] = useState<Account>();
  const [amount, setAmount] = useState('');
  const [tier, setTier] = useState('L0');
  /** Counts tiers set here: the rules editor then shows the tier's rules. */
  const [tiersSet, setTiersSet] = useState(0);
  const [error, run] = useAction();
  const history = usePaged<Entry>(
    async (before) => {
      const r = await get<{ entries: Entry[] }>(
        `/v1/accounts/${encodeURIComponent(id)}/history?limit=${HISTORY_PAGE}${before ? '&beforeSeq=' + before : ''}`,
      );
      const last = r.entries[r.entries.length - 1];
      return {
        items: r.entries,
        ...(r.entries.length === HISTORY_PAGE && last && last.seq > 1 ? { next: String(last.seq) } : {}),
      };
    },
    [id, account],
  );
  const refresh = async () => {
    const a = await get<Account>(`/v1/accounts/${encodeURIComponent(id)}`);
    setAccount(a);
    setTier(a.tier ?? 'L0');
  };
  useEffect(() => void run(refresh), [id]);
  const events = useEvents(`/v1/accounts/${encodeURIComponent(id)}/events`);
  const act = (f: () => Promise<unknown>) =>
    run(async () => {
      await f();
      await refresh();
      onChange();
    });
  const path = `/v1/accounts/${encodeURIComponent(id)}`;
  const exportCsv = () =>
    run(async () => {
      // Every page of the history from the server, newest first, then one file.
      const rows: Entry[] = [];
      let before: number | undefined;
      for (;;) {
        const r = await get<{ entries: Entry[] }>(
          `${path}/history?limit=500${before ? '&beforeSeq=' + before : ''}`,
        );
        rows.push(...r.entries);
        const last = r.entries[r.entries.length - 1];
        if (r.entries.length < 500 || !last || last.seq <= 1) break;
        before = last.seq;
      }
      download(
        `${id}-history.csv`,
        toCsv(
          ['seq', 'at', 'type', 'transferId', 'amountMsat', 'accounts', 'detail'],
          rows.map((e) => [
            e.seq,
            when(e.at),
            e.type,
            e.transferId,
            e.amount,
            e.accountIds.join(' '),
            e.detail,
          ]),
        ),
      );
    });
  if (!account) return <Err error={error} />;
  return (
    <div class="detail">
      <h3>
        {account.name} <span class="mono">{account.id}</span>
      </h3>
      <dl class="figures">
        <Figure label="Balance" value={sats(account.balanceMsat)} id="balance" />
        <Figure label="Available" value={sats(account.availableMsat)} />
        <Figure label="Tier" value={account.tier ?? 'rules'} id="tier" />
        <Figure label="Frozen" value={account.frozen ? 'yes' : 'no'} id="frozen" />
      </dl>
      <div class="row">
        <select name="set-tier" value={tier} onChange={(e) => setTier(e.currentTarget.value)}>
          {['L0', 'L1', 'L2', 'L3'].map((t) => (
            <option>{t}</option>
          ))}
        </select>
        <button
          onClick={() => act(async () => (await put(`${path}/policy`, { tier }), setTiersSet(tiersSet + 1)))}
        >
          Set tier
        </button>
        <input
          name="amount"
          placeholder="amount (msat)"
          inputMode="numeric"
          value={amount}
          onInput={(e) => setAmount(e.currentTarget.value)}
        />
        <button
          onClick={() => act(async () => (await post(`${path}/fund`, { amountMsat: amount }), setAmount('')))}
        >
          Fund
        </button>
        <button onClick={() => act(() => post(`${path}/${account.frozen ? 'unfreeze' : 'freeze'}`))}>
          {account.frozen ? 'Unfreeze' : 'Freeze'}
        </button>
        <button onClick={() => void exportCsv()}>Export history (CSV)</button>
      </div>
      <Err error={error ?? history.error} />
      <Rules key={`${id}:${tiersSet}`} id={id} onSaved={() => void act(async () => undefined)} />
      <Keys id={id} />
      <h4>History</h4>
      <table>
        <thead>
          <tr>
            <th>Seq</th>
            <th>Time</th>
            <th>Type</th>
            <th>Amount</th>
            <th>Detail</th>
          </tr>
        </thead>
        <tbody>
          {history.items.map((e) => (
            <tr key={e.seq}>
              <td>{e.seq}</td>
              <td>{when(e.at)}</td>
              <td>{e.type}</td>
              <td>{sats(e.amount)}</td>
              <td>{e.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {history.pager}
      <h4>Activity</h4>
      <AccountActivity id={id} />
      <h4>Live events</h4>
      <Feed events={events} name="account-feed" />
    </div>
  );
}

interface ApiKey {
  id: string;
  scopes: string[];
  createdAt: number;
  expiresAt?: number;
  revokedAt?: number;
}
const SCOPES = ['read', 'invoice', 'pay', 'admin'];

/** The account's API keys: a new one is shown once (only its hash is stored), any can be revoked. */
function Keys({ id }: { id: string }) {
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [scopes, setScopes] = useState<string[]>(['read']);
  const [shown, setShown] = useState<string>();
  const [error, run] = useAction();
  const path = `/v1/accounts/${encodeURIComponent(id)}/keys`;
  const reload = async () => setKeys((await get<{ keys: ApiKey[] }>(path)).keys);
  useEffect(() => {
    setShown(undefined);
    void run(reload);
  }, [id]);
  return (
    <div>
      <h4>API keys</h4>
      <div class="row">
        {SCOPES.map((sc) => (
          <label>
            <input
              type="checkbox"
              name={`scope-${sc}`}
              checked={scopes.includes(sc)}
              onChange={(e) =>
                setScopes(e.currentTarget.checked ? [...scopes, sc] : scopes.filter((x) => x !== sc))
              }
            />
            {sc}
          </label>
        ))}
        <button
          onClick={() =>
            run(async () => {
              setShown((await post<{ key: string }>(path, { scopes })).key);
              await reload();
            })
          }
        >
          Create key
        </button>
      </div>
      {shown && (
        <p class="notice">
          New key, shown once: <code data-new-key>{shown}</code>
        </p>
      )}
      <Err error={error} />
      <table>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id} data-key={k.id}>
              <td class="mono">{k.id}</td>
              <td>{k.scopes.join(', ')}</td>
              <td>{when(k.createdAt)}</td>
              <td>
                {k.revokedAt !== undefined ? (
                  'revoked'
                ) : (
                  <button onClick={() => run(async () => (await del(`${path}/${k.id}`), await reload()))}>
                    Revoke key
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface Approval {
  id: string;
  paymentId: string;
  accountId: string;
  amountMsat: string;
  reason: string;
  state: string;
  createdAt: number;
  expiresAt: number;
}

function Approvals() {
  const [state, setState] = useState('pending');
  const list = usePaged<Approval>(
    async (cursor) => {
      const r = await get<{ approvals: Approval[]; nextCursor?: string }>(
        `/v1/approvals?limit=50&state=${state}${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`,
      );
      return { items: r.approvals, ...(r.nextCursor ? { next: r.nextCursor } : {}) };
    },
    [state],
  );
  const [error, run] = useAction();
  const decide = (a: Approval, action: 'approve' | 'deny') =>
    run(async () => {
      await post(`/v1/approvals/${encodeURIComponent(a.id)}/${action}`);
      await list.reload();
    });
  return (
    <section>
      <h2>Approvals</h2>
      <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
        {['pending', 'approved', 'denied', 'expired'].map((s) => (
          <option>{s}</option>
        ))}
      </select>
      <Err error={error ?? list.error} />
      <table>
        <thead>
          <tr>
            <th>Account</th>
            <th>Amount</th>
            <th>Reason</th>
            <th>State</th>
            <th>Expires</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.items.map((a) => (
            <tr key={a.id} data-approval={a.id}>
              <td class="mono">{a.accountId}</td>
              <td>{sats(a.amountMsat)}</td>
              <td>{a.reason}</td>
              <td>{a.state}</td>
              <td>{when(a.expiresAt)}</td>
              <td>
                {a.state === 'pending' && (
                  <>
                    <button onClick={() => void decide(a, 'approve')}>Approve</button>
                    <button onClick={() => void decide(a, 'deny')}>Deny</button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.items.length === 0 && <p>No {state} approvals.</p>}
      {list.pager}
    </section>
  );
}

interface Service {
  name: string;
  pathPrefix: string;
  mode: string;
  pricePerRequestMsat?: string;
  origin: string;
}
interface Stats {
  from: number;
  to: number;
  buckets: {
    start: number;
    requests: number;
    paidRequests: number;
    challenges: number;
    revenueMsat: string;
  }[];
  totals: { requests: number; paidRequests: number; challenges: number; revenueMsat: string };
}

/** A service's requests and revenue per hour (last day) or per day (last 30 days), with a chart. */
function ServiceStats({ name }: { name: string }) {
  const [period, setPeriod] = useState<'hour' | 'day'>('hour');
  const [stats, setStats] = useState<Stats>();
  const [error, run] = useAction();
  const chart = useRef<HTMLDivElement>(null);
  useEffect(
    () =>
      void run(async () =>
        setStats(await get<Stats>(`/v1/proxy/services/${encodeURIComponent(name)}/stats?period=${period}`)),
      ),
    [name, period],
  );
  useEffect(() => {
    if (!stats || !chart.current) return;
    const b = stats.buckets;
    // Chart coordinates only: the figures shown as text stay exact decimal strings.
    const plot = new uPlot(
      {
        width: 700,
        height: 220,
        // The whole period asked for, not just the buckets with traffic.
        scales: { x: { time: true, range: [stats.from / 1000, stats.to / 1000] } },
        series: [
          {},
          { label: 'revenue (sat)', stroke: '#f0b429', fill: 'rgba(240,180,41,0.2)', points: { show: true } },
          { label: 'paid requests', stroke: '#2680c2', scale: 'n', points: { show: true } },
        ],
        axes: [{}, {}, { scale: 'n', side: 1 }],
      },
      [
        b.map((x) => x.start / 1000),
        b.map((x) => Number(x.revenueMsat) / 1000),
        b.map((x) => x.paidRequests),
      ],
      chart.current,
    );
    return () => plot.destroy();
  }, [stats]);
  return (
    <div class="detail">
      <h3>
        {name}{' '}
        <select
          name="period"
          value={period}
          onChange={(e) => setPeriod(e.currentTarget.value as 'hour' | 'day')}
        >
          <option value="hour">by hour, last day</option>
          <option value="day">by day, last 30 days</option>
        </select>
      </h3>
      <Err error={error} />
      {stats && (
        <dl class="figures">
          <Figure label="Requests" value={stats.totals.requests} id="requests" />
          <Figure label="Paid requests" value={stats.totals.paidRequests} id="paidRequests" />
          <Figure label="Challenges" value={stats.totals.challenges} id="challenges" />
          <Figure label="Revenue" value={sats(stats.totals.revenueMsat)} id="revenue" />
        </dl>
      )}
      <div class="chart" ref={chart} />
    </div>
  );
}

interface Credential {
  tokenId: string;
  service?: string;
  balanceMsat: string;
  createdAt: number;
  revoked: boolean;
}

function Services() {
  const [services, setServices] = useState<Service[]>([]);
  const [selected, setSelected] = useState<string>();
  const [error, run] = useAction();
  useEffect(
    () =>
      void run(async () => setServices((await get<{ services: Service[] }>('/v1/proxy/services')).services)),
    [],
  );
  const creds = usePaged<Credential>(async (after) => {
    const r = await get<{ credentials: Credential[]; next?: string }>(
      `/v1/l402/credentials?limit=50${after ? '&after=' + after : ''}`,
    );
    return { items: r.credentials, ...(r.next ? { next: r.next } : {}) };
  }, []);
  const revoke = (c: Credential) =>
    run(async () => {
      await post('/v1/l402/credentials/revoke', { tokenId: c.tokenId, reason: 'revoked in the console' });
      await creds.reload();
    });
  return (
    <section>
      <h2>Paid services</h2>
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Path</th>
            <th>Mode</th>
            <th>Price per request</th>
            <th>Origin</th>
          </tr>
        </thead>
        <tbody>
          {services.map((s) => (
            <tr
              key={s.name}
              class={s.name === selected ? 'selected' : ''}
              onClick={() => setSelected(s.name)}
            >
              <td>{s.name}</td>
              <td class="mono">{s.pathPrefix}</td>
              <td>{s.mode}</td>
              <td>{sats(s.pricePerRequestMsat)}</td>
              <td>{s.origin}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {selected && <ServiceStats name={selected} />}
      <h2>L402 credentials</h2>
      <Err error={error ?? creds.error} />
      <table>
        <thead>
          <tr>
            <th>Token id</th>
            <th>Service</th>
            <th>Credit left</th>
            <th>Bought</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {creds.items.map((c) => (
            <tr key={c.tokenId} data-token={c.tokenId}>
              <td class="mono">{c.tokenId.slice(0, 16)}…</td>
              <td>{c.service}</td>
              <td>{sats(c.balanceMsat)}</td>
              <td>{when(c.createdAt)}</td>
              <td>{c.revoked ? 'revoked' : <button onClick={() => void revoke(c)}>Revoke</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {creds.pager}
    </section>
  );
}

function App() {
  const [session, setSession] = useState<boolean>();
  const [page, setPage] = useState<Page>(pageOf(location.hash));
  useEffect(() => {
    void resume().then(setSession);
    const onHash = () => setPage(pageOf(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  if (session === undefined) return null;
  if (!session) return <Login onDone={() => setSession(true)} />;
  return (
    <>
      <nav>
        <strong>Coulomb</strong>
        {PAGES.map(([k, label]) => (
          <a href={`#/${k}`} class={k === page ? 'active' : ''}>
            {label}
          </a>
        ))}
        <button onClick={() => void logout().then(() => setSession(false))}>Log out</button>
      </nav>
      <main>
        {page === 'overview' && <Overview />}
        {page === 'accounts' && <Accounts />}
        {page === 'approvals' && <Approvals />}
        {page === 'payments' && <Payments />}
        {page === 'escrows' && <Escrows />}
        {page === 'devices' && <Devices />}
        {page === 'services' && <Services />}
        <OperatorFeed />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
