import { useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { get, post, sats, when } from './api.js';
import { Err, useAction, usePaged } from './ui.js';

interface Column<T> {
  label: string;
  cell: (item: T) => ComponentChildren;
}

/**
 * One list the server pages: `path` (with its query, `limit` included) answers `{ [field]: T[] }`
 * and the cursor of the next page in `nextField`, passed back as `cursorParam`.
 */
interface ListSpec<T> {
  path: string;
  field: string;
  cursorParam: 'cursor' | 'before' | 'after';
  nextField: 'next' | 'nextCursor';
  columns: Column<T>[];
  rowKey: (item: T) => string;
}

function PagedTable<T>({
  spec,
  name,
  refreshMs,
  actions,
}: {
  spec: ListSpec<T>;
  name: string;
  /** Reload every so often (live figures), keeping the page shown. */
  refreshMs?: number;
  actions?: (item: T, reload: () => Promise<void>) => ComponentChildren;
}) {
  const list = usePaged<T>(
    async (cursor) => {
      const sep = spec.path.includes('?') ? '&' : '?';
      const r = await get<Record<string, unknown>>(
        `${spec.path}${cursor ? `${sep}${spec.cursorParam}=${encodeURIComponent(cursor)}` : ''}`,
      );
      const next = r[spec.nextField];
      return { items: (r[spec.field] ?? []) as T[], ...(typeof next === 'string' ? { next } : {}) };
    },
    [spec.path],
  );
  useEffect(() => {
    if (!refreshMs) return;
    const timer = setInterval(() => void list.reload(), refreshMs);
    return () => clearInterval(timer);
  }, [spec.path, refreshMs]);
  return (
    <div class={`list ${name}`}>
      <Err error={list.error} />
      <table>
        <thead>
          <tr>
            {spec.columns.map((c) => (
              <th>{c.label}</th>
            ))}
            {actions && <th />}
          </tr>
        </thead>
        <tbody>
          {list.items.map((item) => (
            <tr key={spec.rowKey(item)} data-row={spec.rowKey(item)}>
              {spec.columns.map((c) => (
                <td>{c.cell(item)}</td>
              ))}
              {actions && <td>{actions(item, list.reload)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
      {list.items.length === 0 && !list.error && <p class="empty">none</p>}
      {list.pager}
    </div>
  );
}

const short = (s: string | undefined) =>
  s ? (
    <span class="mono" title={s}>
      {s.slice(0, 16)}…
    </span>
  ) : (
    ''
  );

interface Payment {
  id: string;
  accountId: string;
  kind: string;
  status: string;
  paymentHash: string;
  destination: string;
  amountMsat: string;
  feeMsat?: string;
  failureReason?: string;
  createdAt: number;
}
interface Escrow {
  id: string;
  payerAccountId: string;
  payeeAccountId?: string;
  amountMsat: string;
  state: string;
  paymentHash: string;
  createdAt: number;
}
interface Task {
  id: string;
  title: string;
  publisherAccountId: string;
  agentAccountId?: string;
  rewardMsat: string;
  state: string;
  deadline: number;
}
interface Stream {
  id: string;
  kind: string;
  mode: string;
  state: string;
  payeeAccountId?: string;
  rateMsat?: string;
  perSeconds?: number;
  priceMsatPerUnit?: string;
  accruedMsat: string;
  paidMsat: string;
  owedMsat: string;
  activeSeconds: number;
}
interface Incoming {
  streamId: string;
  totalMsat: string;
  payments: number;
  missingSeqs: number;
  lastPaymentAt: number;
  lapsed: boolean;
}

const PAGE = 20;

const payments = (id: string): ListSpec<Payment> => ({
  path: `/v1/accounts/${encodeURIComponent(id)}/payments?limit=${PAGE}`,
  field: 'payments',
  cursorParam: 'cursor',
  nextField: 'nextCursor',
  rowKey: (p) => p.id,
  columns: [
    { label: 'Time', cell: (p) => when(p.createdAt) },
    { label: 'Kind', cell: (p) => p.kind },
    { label: 'Status', cell: (p) => p.status + (p.failureReason ? ` (${p.failureReason})` : '') },
    { label: 'Amount', cell: (p) => sats(p.amountMsat) },
    { label: 'Fee', cell: (p) => sats(p.feeMsat) },
    { label: 'Hash', cell: (p) => short(p.paymentHash) },
  ],
});

const escrowColumns: Column<Escrow>[] = [
  { label: 'Time', cell: (e) => when(e.createdAt) },
  { label: 'Id', cell: (e) => short(e.id) },
  { label: 'Payer', cell: (e) => e.payerAccountId },
  { label: 'Payee', cell: (e) => e.payeeAccountId ?? '' },
  { label: 'Amount', cell: (e) => sats(e.amountMsat) },
  { label: 'State', cell: (e) => e.state },
  { label: 'Hash', cell: (e) => short(e.paymentHash) },
];
const escrows = (path: string): ListSpec<Escrow> => ({
  path,
  field: 'escrows',
  cursorParam: 'before',
  nextField: 'next',
  rowKey: (e) => e.id,
  columns: escrowColumns,
});

const tasks = (id: string): ListSpec<Task> => ({
  path: `/v1/accounts/${encodeURIComponent(id)}/tasks?limit=${PAGE}&mine=true`,
  field: 'tasks',
  cursorParam: 'before',
  nextField: 'next',
  rowKey: (t) => t.id,
  columns: [
    { label: 'Title', cell: (t) => t.title },
    { label: 'Publisher', cell: (t) => t.publisherAccountId },
    { label: 'Agent', cell: (t) => t.agentAccountId ?? '' },
    { label: 'Reward', cell: (t) => sats(t.rewardMsat) },
    { label: 'State', cell: (t) => t.state },
    { label: 'Deadline', cell: (t) => when(t.deadline) },
  ],
});

const rate = (s: Stream) =>
  s.kind === 'time' ? `${sats(s.rateMsat)} / ${s.perSeconds ?? 1} s` : `${sats(s.priceMsatPerUnit)} / unit`;
const streams = (id: string): ListSpec<Stream> => ({
  path: `/v1/accounts/${encodeURIComponent(id)}/streams?limit=${PAGE}`,
  field: 'streams',
  cursorParam: 'before',
  nextField: 'next',
  rowKey: (s) => s.id,
  columns: [
    { label: 'Id', cell: (s) => short(s.id) },
    { label: 'Mode', cell: (s) => `${s.kind}, ${s.mode}` },
    { label: 'Payee', cell: (s) => s.payeeAccountId ?? '' },
    { label: 'Rate', cell: rate },
    { label: 'State', cell: (s) => s.state },
    { label: 'Active', cell: (s) => `${s.activeSeconds} s` },
    { label: 'Accrued', cell: (s) => sats(s.accruedMsat) },
    { label: 'Paid', cell: (s) => sats(s.paidMsat) },
    { label: 'Owed', cell: (s) => sats(s.owedMsat) },
  ],
});

const incoming = (id: string): ListSpec<Incoming> => ({
  path: `/v1/accounts/${encodeURIComponent(id)}/incoming-streams?limit=${PAGE}`,
  field: 'incoming',
  cursorParam: 'before',
  nextField: 'next',
  rowKey: (s) => s.streamId,
  columns: [
    { label: 'Stream', cell: (s) => short(s.streamId) },
    { label: 'Received', cell: (s) => sats(s.totalMsat) },
    { label: 'Payments', cell: (s) => s.payments },
    { label: 'Missing', cell: (s) => s.missingSeqs },
    { label: 'Last payment', cell: (s) => when(s.lastPaymentAt) },
    { label: 'State', cell: (s) => (s.lapsed ? 'lapsed' : 'live') },
  ],
});

const TABS = ['payments', 'escrows', 'tasks', 'streams', 'incoming streams'] as const;
type Tab = (typeof TABS)[number];

/** What an account did: its payments, escrows, tasks, streams and incoming streams, each paged. */
export function AccountActivity({ id }: { id: string }) {
  const [tab, setTab] = useState<Tab>('payments');
  const enc = encodeURIComponent(id);
  return (
    <div class="activity">
      <div class="tabs" role="tablist">
        {TABS.map((t) => (
          <button
            role="tab"
            aria-selected={t === tab}
            class={t === tab ? 'active' : ''}
            onClick={() => setTab(t)}
          >
            {t}
          </button>
        ))}
      </div>
      {tab === 'payments' && <PagedTable spec={payments(id)} name="payments" />}
      {tab === 'escrows' && (
        <PagedTable spec={escrows(`/v1/accounts/${enc}/escrows?limit=${PAGE}`)} name="escrows" />
      )}
      {tab === 'tasks' && <PagedTable spec={tasks(id)} name="tasks" />}
      {tab === 'streams' && <PagedTable spec={streams(id)} name="streams" refreshMs={5000} />}
      {tab === 'incoming streams' && <PagedTable spec={incoming(id)} name="incoming" refreshMs={5000} />}
    </div>
  );
}

/** Every escrow of every account, newest first. */
export function Escrows() {
  return (
    <section>
      <h2>Escrows</h2>
      <PagedTable spec={escrows(`/v1/escrows?limit=50`)} name="escrows" />
    </section>
  );
}

interface Device {
  deviceId: string;
  accountId: string;
  name: string;
  state: 'active' | 'revoked';
  lastCounter: number;
  lastEventSeq: number;
  createdAt: number;
  revokedAt?: number;
  lastSeenAt?: number;
  online: boolean;
  requestsSinceStart: number;
}

const devices: ListSpec<Device> = {
  path: '/v1/devices?limit=50',
  field: 'devices',
  cursorParam: 'after',
  nextField: 'next',
  rowKey: (d) => d.deviceId,
  columns: [
    { label: 'Device', cell: (d) => short(d.deviceId) },
    { label: 'Name', cell: (d) => d.name },
    { label: 'Account', cell: (d) => d.accountId },
    { label: 'State', cell: (d) => d.state },
    { label: 'Online', cell: (d) => (d.online ? 'online' : 'offline') },
    { label: 'Last seen', cell: (d) => when(d.lastSeenAt) },
    { label: 'Last counter', cell: (d) => d.lastCounter },
    { label: 'Last event', cell: (d) => d.lastEventSeq },
    { label: 'Requests since start', cell: (d) => d.requestsSinceStart },
    { label: 'Enrolled', cell: (d) => when(d.createdAt) },
  ],
};

/** Every device, paged: online now, last seen, counters, and revoke. */
export function Devices() {
  const [error, run] = useAction();
  return (
    <section>
      <h2>Devices</h2>
      <Err error={error} />
      <PagedTable
        spec={devices}
        name="devices"
        refreshMs={10_000}
        actions={(d, reload) =>
          d.state === 'active' && (
            <button
              onClick={() =>
                void run(async () => {
                  await post(`/v1/devices/${encodeURIComponent(d.deviceId)}/revoke`);
                  await reload();
                })
              }
            >
              Revoke
            </button>
          )
        }
      />
    </section>
  );
}

/** Every account's payments, newest first, paged from the server. */
export function Payments() {
  const spec: ListSpec<Payment> = {
    path: '/v1/payments?limit=50',
    field: 'payments',
    cursorParam: 'cursor',
    nextField: 'nextCursor',
    rowKey: (p) => p.id,
    columns: [{ label: 'Account', cell: (p) => p.accountId }, ...payments('').columns],
  };
  return (
    <section>
      <h2>Payments</h2>
      <PagedTable spec={spec} name="all-payments" />
    </section>
  );
}
