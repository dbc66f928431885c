import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigError } from '../domain/errors.js';
import type { RecordStore } from '../ledger/store.js';
import { recordCodec } from '../records/codec.js';
import { compile, matchingOrder, ServiceSchema, type Service, type ServiceConfig } from './config.js';
import { ProxyAdminError } from './errors.js';
import { RoutingConfigError } from './routing.js';

const PREFIX = 'proxysvc!';
/** Services the catalog holds at most (seeded and added): what a start loads stays bounded. */
export const MAX_SERVICES = 1000;

/** A change the operator made through the admin API: the service as it is now, or its removal. */
const ChangeRecord = Type.Union([
  Type.Object({ config: ServiceSchema, updatedAt: Type.Integer() }, { additionalProperties: false }),
  Type.Object({ removed: Type.Literal(true), updatedAt: Type.Integer() }, { additionalProperties: false }),
]);
const changeCodec = recordCodec('proxy service', ChangeRecord);

/** Where a service comes from: the config file, the admin API, or the file changed by the API. */
export type ServiceOrigin = 'config' | 'api' | 'config-changed';

export interface CatalogEntry {
  service: Service;
  origin: ServiceOrigin;
  updatedAt?: number;
}

/**
 * The proxy's services, changed live. The config file is the seed; what the operator adds,
 * changes or removes through the admin API is persisted (`proxysvc!<name>`: the service as it
 * now is, or a removal mark for a seeded one) and applied over the seed at every start, so the
 * file is never rewritten. The proxy reads `current()` on every request: a change takes effect
 * with the next request, without a restart. Changes run one at a time.
 */
export class ServiceCatalog {
  private entries: CatalogEntry[] = [];
  private snapshot: readonly Service[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  /** The persisted changes as last read: a read that finds the same applies nothing. */
  private read: string | undefined;

  private constructor(
    private readonly store: RecordStore,
    private readonly seed: readonly Service[],
    private readonly now: () => number,
  ) {}

  /** The seed (already validated, in the file's order) with the persisted changes applied. */
  static async open(
    store: RecordStore,
    seed: readonly Service[],
    options: { now?: () => number } = {},
  ): Promise<ServiceCatalog> {
    const catalog = new ServiceCatalog(store, seed, options.now ?? Date.now);
    await catalog.load();
    return catalog;
  }

  /**
   * A store several instances share: another instance's admin API may change the services. Reads
   * the persisted changes again every `everyMs` (applied when they differ from the last read), so
   * a change made anywhere is served everywhere within that bound. Returns the stop function.
   */
  follow(everyMs = 1000, onError: (err: unknown) => void = () => undefined): () => void {
    const timer = setInterval(() => void this.refresh().catch(onError), everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Reads the persisted changes again (after the changes of this instance in flight). */
  refresh(): Promise<void> {
    return this.serial(() => this.load());
  }

  private async load(): Promise<void> {
    const changes = new Map<string, { config?: ServiceConfig; updatedAt: number }>();
    const raw: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listRecords(PREFIX, { limit: 500, ...(after ? { after } : {}) });
      for (const r of page) {
        raw.push(r.key, r.value);
        const c = changeCodec.decode(r.value);
        changes.set(r.key.slice(PREFIX.length), 'config' in c ? c : { updatedAt: c.updatedAt });
      }
      if (page.length < 500) break;
      after = page[page.length - 1]!.key;
    }
    const read = raw.join('\n');
    if (read === this.read) return;
    this.read = read;
    const entries: CatalogEntry[] = [];
    for (const s of this.seed) {
      const change = changes.get(s.name);
      changes.delete(s.name);
      if (!change) entries.push({ service: s, origin: 'config' });
      else if (change.config)
        entries.push({
          service: compile(change.config),
          origin: 'config-changed',
          updatedAt: change.updatedAt,
        });
    }
    for (const [, change] of [...changes].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (change.config)
        entries.push({ service: compile(change.config), origin: 'api', updatedAt: change.updatedAt });
    }
    this.set(entries);
  }

  private set(entries: CatalogEntry[]): void {
    this.entries = matchingOrder(entries, (e) => e.service);
    this.snapshot = Object.freeze(this.entries.map((e) => e.service));
  }

  /** The services in matching order (`matchingOrder`: the most specific path prefix first). */
  current(): readonly Service[] {
    return this.snapshot;
  }

  list(): readonly CatalogEntry[] {
    return this.entries;
  }

  get(name: string): CatalogEntry | undefined {
    return this.entries.find((e) => e.service.name === name);
  }

  /** The service of that name, or 404 SERVICE_NOT_FOUND. */
  require(name: string): CatalogEntry {
    const entry = this.get(name);
    if (!entry) throw notFound(name);
    return entry;
  }

  /** Adds a service; 409 SERVICE_EXISTS if the name is taken. */
  add(config: ServiceConfig): Promise<CatalogEntry> {
    return this.serial(async () => {
      if (this.get(config.name))
        throw new ProxyAdminError('SERVICE_EXISTS', `a service named ${config.name} exists`, {
          name: config.name,
        });
      if (this.entries.length >= MAX_SERVICES)
        throw new ProxyAdminError('TOO_MANY_SERVICES', `the proxy serves at most ${MAX_SERVICES} services`);
      const service = checked(config);
      const updatedAt = this.now();
      await this.store.putRecords([
        { key: PREFIX + config.name, value: changeCodec.encode({ config: service.config, updatedAt }) },
      ]);
      const seeded = this.seed.some((s) => s.name === config.name);
      const entry: CatalogEntry = { service, origin: seeded ? 'config-changed' : 'api', updatedAt };
      this.set([...this.entries, entry]);
      return entry;
    });
  }

  /** Replaces a service's terms (same name); 404 SERVICE_NOT_FOUND if there is none. */
  replace(name: string, config: ServiceConfig): Promise<CatalogEntry> {
    return this.serial(() => this.replaceNow(name, () => config));
  }

  /**
   * Changes some fields of a service, the others as they are when the change runs (after the
   * changes before it: two patches at once both apply); 404 SERVICE_NOT_FOUND if there is none.
   */
  patch(name: string, fields: Partial<Omit<ServiceConfig, 'name'>>): Promise<CatalogEntry> {
    return this.serial(() => this.replaceNow(name, (old) => ({ ...old, ...fields, name })));
  }

  private async replaceNow(name: string, next: (old: ServiceConfig) => ServiceConfig): Promise<CatalogEntry> {
    const index = this.entries.findIndex((e) => e.service.name === name);
    if (index < 0) throw notFound(name);
    const old = this.entries[index]!;
    const config = next(old.service.config);
    if (config.name !== name)
      throw new ProxyAdminError('INVALID_SERVICE', 'the name in the body must be the one in the path', {
        name,
      });
    const service = checked(config);
    const updatedAt = this.now();
    await this.store.putRecords([
      { key: PREFIX + name, value: changeCodec.encode({ config: service.config, updatedAt }) },
    ]);
    const entry: CatalogEntry = {
      service,
      origin: old.origin === 'api' ? 'api' : 'config-changed',
      updatedAt,
    };
    this.set(this.entries.map((e, i) => (i === index ? entry : e)));
    return entry;
  }

  /** Removes a service: the proxy answers 404 NO_SERVICE for its paths from the next request. */
  remove(name: string): Promise<void> {
    return this.serial(async () => {
      const entry = this.get(name);
      if (!entry) throw notFound(name);
      const seeded = this.seed.some((s) => s.name === name);
      // A seeded service stays removed across starts (a mark); an added one simply goes.
      await this.store.putRecords([
        {
          key: PREFIX + name,
          value: seeded ? changeCodec.encode({ removed: true, updatedAt: this.now() }) : null,
        },
      ]);
      this.set(this.entries.filter((e) => e !== entry));
    });
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step, step);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

const notFound = (name: string) =>
  new ProxyAdminError('SERVICE_NOT_FOUND', `no service named ${name}`, { name });

/** The service ready for the hot path, or 400 INVALID_SERVICE naming what is wrong. */
function checked(config: ServiceConfig): Service {
  const withDefaults = Value.Default(ServiceSchema, structuredClone(config)) as ServiceConfig;
  const problem = Value.Errors(ServiceSchema, withDefaults).First();
  if (problem)
    throw new ProxyAdminError('INVALID_SERVICE', `${problem.path || '/'}: ${problem.message}`, {
      path: problem.path,
    });
  try {
    return compile(withDefaults);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new ProxyAdminError(
        err instanceof RoutingConfigError ? 'INVALID_ROUTING' : 'INVALID_SERVICE',
        err.message,
      );
    throw err;
  }
}
