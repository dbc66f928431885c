import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../domain/errors.js';
import { ConfigSchema, type Config } from './schema.js';

export const DEFAULT_HTTP_PORT = 8402;

export const DEFAULTS: Config = {
  http: { host: '127.0.0.1', port: DEFAULT_HTTP_PORT },
  dataDir: '.coulomb',
  logLevel: 'info',
  regtest: { dataDir: '.regtest', basePort: 27400, node: 'alice' },
  proxy: { enabled: true, host: '127.0.0.1', port: 8403, samplePort: 8404 },
  mqtt: { enabled: true, host: '127.0.0.1', port: 1883 },
};

type Plain = Record<string, unknown>;

/** Values from flags or env, as dotted paths (`lnd.socket`), strings as typed by the user. */
export type Overrides = Record<string, string | undefined>;

const ENV: Record<string, string> = {
  COULOMB_HTTP_HOST: 'http.host',
  COULOMB_HTTP_PORT: 'http.port',
  COULOMB_DATA_DIR: 'dataDir',
  COULOMB_DATABASE_URL: 'databaseUrl',
  COULOMB_ADVERTISE_URL: 'advertiseUrl',
  COULOMB_LOG_LEVEL: 'logLevel',
  COULOMB_LND_SOCKET: 'lnd.socket',
  COULOMB_LND_CERT: 'lnd.cert',
  COULOMB_LND_MACAROON: 'lnd.macaroon',
  COULOMB_POLAR_NETWORK: 'polar.network',
  COULOMB_POLAR_NODE: 'polar.node',
  COULOMB_POLAR_DIR: 'polar.dataDir',
  COULOMB_REGTEST_DIR: 'regtest.dataDir',
  COULOMB_REGTEST_BASE_PORT: 'regtest.basePort',
  COULOMB_OPERATOR_KEY: 'operatorKey',
  COULOMB_PROXY_PORT: 'proxy.port',
  COULOMB_PROXY_CONFIG: 'proxy.configFile',
  COULOMB_SAMPLE_UPSTREAM_PORT: 'proxy.samplePort',
  COULOMB_MQTT_PORT: 'mqtt.port',
  COULOMB_MQTT_URL: 'mqtt.url',
  COULOMB_MQTT_SHARE_GROUP: 'mqtt.shareGroup',
  COULOMB_OUTBOUND_ALLOW: 'outbound.allow',
  COULOMB_METRICS_SCRAPE_TOKEN: 'metrics.scrapeToken',
};

const NUMERIC = new Set(['http.port', 'regtest.basePort', 'proxy.port', 'proxy.samplePort', 'mqtt.port']);
/** Lists typed as comma-separated text (`10.0.0.0/8,verifier.internal`). */
const LISTS = new Set(['outbound.allow']);

export function envOverrides(env: NodeJS.ProcessEnv = process.env): Overrides {
  const out: Overrides = {};
  for (const [name, path] of Object.entries(ENV))
    if (env[name] !== undefined && env[name] !== '') out[path] = env[name];
  return out;
}

function setPath(target: Plain, path: string, raw: string): void {
  const keys = path.split('.');
  let node = target;
  for (const k of keys.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Plain;
  }
  const value = LISTS.has(path)
    ? raw
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '')
    : NUMERIC.has(path) && /^\d+$/.test(raw)
      ? Number(raw)
      : raw;
  node[keys[keys.length - 1] as string] = value;
}

function merge(base: Plain, extra: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object'
        ? merge(cur as Plain, v as Plain)
        : v;
  }
  return out;
}

export function readConfigFile(path: string): Plain {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('expected an object at the top level');
    return parsed as Plain;
  } catch (err) {
    throw new ConfigError(
      `config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
}

/** Defaults < config file < environment < flags; the result is validated against the schema. */
export function loadConfig(options: { file?: string; env?: Overrides; flags?: Overrides } = {}): Config {
  let merged: Plain = structuredClone(DEFAULTS) as unknown as Plain;
  if (options.file) merged = merge(merged, readConfigFile(options.file));
  for (const layer of [options.env ?? {}, options.flags ?? {}]) {
    for (const [path, raw] of Object.entries(layer)) if (raw !== undefined) setPath(merged, path, raw);
  }
  const problems = [...Value.Errors(ConfigSchema, merged)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration:\n  ${problems.slice(0, 10).join('\n  ')}`, { problems });
  }
  const config = merged as Config;
  if (config.lnd && config.polar)
    throw new ConfigError('configure either lnd (socket/cert/macaroon) or polar (network/node), not both');
  return config;
}
