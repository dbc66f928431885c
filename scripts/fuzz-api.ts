/**
 * Fuzzes the gateway's HTTP API with schemathesis against its own OpenAPI document (/docs/json),
 * on a real gateway process in front of LND on a regtest network.
 *
 * It starts (or reuses) a regtest network of its own, starts a gateway on a fresh data dir with a
 * known operator key, creates a funded account, another one to pay, an invoice, an internal
 * payment and a read-only key, then runs schemathesis once per pass:
 *   read-key    the read-only account key, `:id` fixed to its own account
 *   operator    the operator key, `:id` (and the other path ids it can) fixed to the funded account
 *   operator-any  the operator key, every parameter generated
 * with the checks `not_a_server_error` and `response_schema_conformance`. The run fails on any 5xx,
 * any response that violates its declared schema, any operation not exercised by every pass, any
 * schemathesis error, a gateway that exits, or fewer requests than the minimum. It prints the
 * distinct failures (operation, status, check) with one reproduction each, and stops whatever it
 * started, however it ends.
 *
 *   node --import tsx scripts/fuzz-api.ts [--keep-network]
 *
 * Environment: COULOMB_FUZZ_REGTEST_DIR (.regtest-fuzz), COULOMB_FUZZ_REGTEST_BASE_PORT (27700),
 * COULOMB_FUZZ_MAX_EXAMPLES (examples per operation and pass, 40), COULOMB_FUZZ_SEED (a fixed
 * seed; random by default, printed), COULOMB_FUZZ_WORKERS (2),
 * COULOMB_FUZZ_SCHEMATHESIS (.venv-fuzz/bin/schemathesis, installed by scripts/check-prereqs.sh).
 * Reports, the gateway's log and data go to .fuzz/ (recreated on every run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { RegtestNetwork } from '../src/regtest/network.js';
import { listening, spawnGateway } from '../test/support/gateway-spawn.js';

const root = resolve(import.meta.dirname, '..');
const outDir = join(root, '.fuzz');
const env = process.env;
const int = (name: string, fallback: number): number => {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^[0-9]+$/.test(v)) throw new Error(`${name} must be a whole number, got ${v}`);
  return Number(v);
};
const settings = {
  regtestDir: resolve(root, env['COULOMB_FUZZ_REGTEST_DIR'] ?? '.regtest-fuzz'),
  basePort: int('COULOMB_FUZZ_REGTEST_BASE_PORT', 27700),
  maxExamples: int('COULOMB_FUZZ_MAX_EXAMPLES', 40),
  seed: int('COULOMB_FUZZ_SEED', randomBytes(4).readUInt32BE() >>> 1),
  workers: int('COULOMB_FUZZ_WORKERS', 2),
  schemathesis: resolve(root, env['COULOMB_FUZZ_SCHEMATHESIS'] ?? '.venv-fuzz/bin/schemathesis'),
  keepNetwork: process.argv.includes('--keep-network'),
};
const CHECKS = ['not_a_server_error', 'response_schema_conformance'];
/** What the project promises to fuzz at least, per run (docs/TESTING.md). */
const MIN_REQUESTS = 10_000;
/** The event streams never end by design: read them for this long, then judge what came. */
const EVENTS_PATHS = ['/v1/accounts/{id}/events', '/v1/events'];
const EVENTS_READ_SECONDS = 0.5;

const log = (m: string): void => void process.stderr.write(`[fuzz] ${m}\n`);

// ---------------------------------------------------------------------------------------------
// The gateway under test

class Gateway {
  private child: ChildProcess | undefined;
  private out = '';
  exited: string | undefined;

  constructor(
    private readonly dataDir: string,
    private readonly operatorKey: string,
    private readonly logFile: string,
  ) {}

  start(lnd: { socket: string; cert: string; macaroon: string }): Promise<string> {
    const logStream = createWriteStream(this.logFile);
    const child = spawnGateway({
      dataDir: this.dataDir,
      operatorKey: this.operatorKey,
      lnd,
      logLevel: 'warn',
      cwd: root,
    });
    this.child = child;
    const collect = (c: Buffer): void => {
      if (this.out.length < 100_000) this.out += c.toString();
      logStream.write(c);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('exit', (code, signal) => {
      this.exited = `the gateway exited (code ${code}, signal ${signal}); its log: ${this.logFile}`;
      logStream.end();
    });
    return listening(child, () => this.out);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }
}

async function api(
  url: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300)
    throw new Error(`setup: ${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

function field(o: Record<string, unknown>, name: string): string {
  const v = o[name];
  if (typeof v !== 'string')
    throw new Error(`setup: expected a string ${name} in ${JSON.stringify(o).slice(0, 300)}`);
  return v;
}

/** Objects for the fuzzer to find: a funded payer, a payee, invoices, an internal payment, a read-only key. */
async function seed(url: string, operatorKey: string, pubkeys: string[]) {
  const op = (method: string, path: string, body?: unknown) => api(url, operatorKey, method, path, body);
  await op('POST', '/v1/accounts', { kind: 'agent', name: 'fuzz payer', tier: 'L2', id: 'fuzz-payer' });
  await op('POST', '/v1/accounts', { kind: 'agent', name: 'fuzz payee', tier: 'L1', id: 'fuzz-payee' });
  await op('POST', '/v1/accounts/fuzz-payer/fund', { amountMsat: '500000000000' });
  const paid = await op('POST', '/v1/accounts/fuzz-payee/invoices', {
    amountMsat: '1000000',
    description: 'fuzz',
  });
  const payment = await op('POST', '/v1/accounts/fuzz-payer/payments', { request: field(paid, 'request') });
  const open = await op('POST', '/v1/accounts/fuzz-payee/invoices', {
    amountMsat: '2000000',
    description: 'fuzz',
  });
  const own = await op('POST', '/v1/accounts/fuzz-payer/invoices', {
    amountMsat: '3000000',
    description: 'fuzz',
  });
  const readKey = await op('POST', '/v1/accounts/fuzz-payer/keys', { scopes: ['read'] });
  return {
    accountId: 'fuzz-payer',
    otherAccountId: 'fuzz-payee',
    invoiceHash: field(own, 'paymentHash'),
    paymentId: field(payment, 'id'),
    readKey: field(readKey, 'key'),
    /** Values that reach real paths when the fuzzer draws them (schemathesis keeps the ones each field's schema allows). */
    dictionary: [
      'fuzz-payer',
      'fuzz-payee',
      'sys:operator',
      'sys:lightning',
      '.',
      '..',
      'a'.repeat(101),
      'a'.repeat(128),
      field(paid, 'paymentHash'),
      field(open, 'paymentHash'),
      field(own, 'paymentHash'),
      field(paid, 'request'),
      field(open, 'request'),
      field(payment, 'id'),
      ...pubkeys,
      'vision',
      `${url}/health`,
      'http://169.254.169.254/latest/meta-data/',
    ],
  };
}

/** Amounts and numbers at the edges: msat ceilings, LND's invoice maximum, 2^32, 2^53, 2^64. */
const EDGE_NUMBERS = [
  '1',
  '999',
  '1000',
  '4294967295',
  '4294967296',
  '9007199254740993',
  '10000000000000000',
  '10000000000000001',
  '2099999999999999999',
  '2100000000000000000',
  '2100000000000000001',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999',
  '5482373484',
  '7629169',
  '133773310',
  '65535',
  '65536',
];

// ---------------------------------------------------------------------------------------------
// schemathesis passes

interface Pass {
  name: string;
  key: string;
  /** Path parameters fixed to the seeded objects (none: generated). */
  parameters: Record<string, string>;
  /** Strings the fuzzer draws now and then in place of generated ones. */
  dictionary: string[];
  /** Every scalar field of every request body, as schemathesis binding keys (`body.a[*].b`). */
  bodyFields: string[];
}

const toml = (s: string): string => JSON.stringify(s);

function configFile(pass: Pass): string {
  const lines = [
    '# written by scripts/fuzz-api.ts for one pass',
    `headers = { Authorization = ${toml(`Bearer ${pass.key}`)} }`,
    'request-timeout = 30',
  ];
  // Path parameters fixed to the seeded objects; every body field draws from the edge values now
  // and then (schemathesis keeps, per field, the values its schema allows, or in negative cases
  // the ones it refuses: numbers for decimal strings and the like).
  lines.push('', '[parameters]');
  for (const [k, v] of Object.entries(pass.parameters)) lines.push(`${toml(`path.${k}`)} = ${toml(v)}`);
  for (const f of pass.bodyFields) lines.push(`${toml(f)} = { dictionary = "edges", probability = 0.3 }`);
  const numbers = [0, -1, ...EDGE_NUMBERS.map(Number).filter((n) => Number.isSafeInteger(n)), 2 ** 53];
  const strings = [...pass.dictionary, ...EDGE_NUMBERS];
  lines.push(
    '',
    '[dictionaries.edges]',
    `values = [${[...strings.map(toml), ...numbers].join(', ')}]`,
    '[dictionaries.strings]',
    `values = [${strings.map(toml).join(', ')}]`,
    '[dictionaries.numbers]',
    `values = [${numbers.join(', ')}]`,
    '',
    '[generation.dictionaries]',
    'string = { dictionary = "strings", probability = 0.25 }',
    'integer = { dictionary = "numbers", probability = 0.1 }',
  );
  for (const path of EVENTS_PATHS)
    lines.push(
      '',
      '[[operations]]',
      `include-path = ${toml(path)}`,
      `request-timeout = ${EVENTS_READ_SECONDS}`,
      'max-stream-events = 1',
    );
  return lines.join('\n') + '\n';
}

/**
 * How schemathesis is started: through its venv's interpreter, with `ast.parse` serialized across
 * threads, when that interpreter is beside it. CPython 3.11 (this machine has 3.11.7) keeps the AST
 * conversion's recursion depth in state every thread shares (python/cpython#106905): two threads
 * parsing at once corrupt it and one gets `SystemError: AST constructor recursion depth mismatch`.
 * hypothesis parses a source file's lambdas to describe a filtered strategy, deep in
 * schemathesis' generators, and with `--workers 2` (two threads) a pass now and then failed with
 * that tool error (a "Runtime Error" on a generated case, not a response). A lock around
 * `ast.parse` removes the race; the higher recursion limit only widens the depth budget.
 */
function schemathesisCommand(script: string, args: string[]): [string, string[]] {
  const python = join(dirname(script), 'python3');
  if (!existsSync(python)) return [script, args];
  const bootstrap = [
    'import ast, sys, threading',
    'sys.setrecursionlimit(20000)',
    '_lock = threading.Lock()',
    '_parse = ast.parse',
    'def _locked_parse(*a, **k):',
    '    with _lock:',
    '        return _parse(*a, **k)',
    'ast.parse = _locked_parse',
    'sys.argv[0] = "schemathesis"',
    'from schemathesis.cli import schemathesis',
    'sys.exit(schemathesis())',
  ].join('\n');
  return [python, ['-c', bootstrap, ...args]];
}

/** schemathesis processes still running, stopped with everything else on a signal. */
const running = new Set<ChildProcess>();

async function runSchemathesis(url: string, pass: Pass): Promise<{ dir: string; exitCode: number }> {
  const dir = join(outDir, pass.name);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'schemathesis.toml');
  writeFileSync(config, configFile(pass), { mode: 0o600 });
  const args = [
    '--config-file',
    config,
    'run',
    `${url}/docs/json`,
    '--checks',
    CHECKS.join(','),
    '--phases',
    'examples,coverage,fuzzing',
    '--max-examples',
    String(settings.maxExamples),
    '--seed',
    String(settings.seed),
    '--workers',
    String(settings.workers),
    '--generation-database',
    'none',
    '--suppress-health-check',
    'all',
    '--no-color',
    '--report',
    'ndjson,json',
    '--report-dir',
    dir,
  ];
  const [command, commandArgs] = schemathesisCommand(settings.schemathesis, args);
  const child = spawn(command, commandArgs, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const out = createWriteStream(join(dir, 'output.txt'));
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exitCode = await new Promise<number>((r) => child.once('exit', (code) => r(code ?? 1)));
  return { dir, exitCode };
}

// ---------------------------------------------------------------------------------------------
// Reading the reports

interface Finding {
  operation: string;
  status: number | undefined;
  check: string;
  title: string;
  count: number;
  passes: Set<string>;
  example: string;
  /** The first line of schemathesis' explanation (what violated the schema). */
  detail: string;
}

interface PassResult {
  requests: number;
  serverErrors: number;
  schemaViolations: number;
  statuses: Map<number, number>;
  operations: Set<string>;
  errors: string[];
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' ? (v as Json) : {});

function decodeBody(content: unknown): string {
  const b64 = obj(content)['$base64'];
  if (typeof b64 === 'string') return Buffer.from(b64, 'base64').toString('utf8');
  return typeof content === 'string' ? content : '';
}

function reproduction(url: string, req: Json, res: Json, body: unknown): string {
  const uri = String(req['uri'] ?? '').replace(url, '');
  const sent = body === undefined ? '' : ` ${JSON.stringify(body).slice(0, 200)}`;
  const got = decodeBody(res['content']).replace(/\s+/g, ' ').slice(0, 200);
  return `${String(req['method'])} ${uri}${sent} -> ${String(res['status_code'])} ${got}`;
}

async function readPass(
  url: string,
  pass: Pass,
  dir: string,
  findings: Map<string, Finding>,
): Promise<PassResult> {
  const result: PassResult = {
    requests: 0,
    serverErrors: 0,
    schemaViolations: 0,
    statuses: new Map(),
    operations: new Set(),
    errors: [],
  };
  const ndjson = readdirSync(dir).find((f) => f.startsWith('ndjson-'));
  const jsonReport = readdirSync(dir).find((f) => f.startsWith('json-') && f.endsWith('.json'));
  if (!ndjson || !jsonReport) {
    result.errors.push(`schemathesis wrote no report; see ${join(dir, 'output.txt')}`);
    return result;
  }
  const lines = createInterface({ input: createReadStream(join(dir, ndjson)), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.startsWith('{"ScenarioFinished"')) continue;
    const recorder = obj(obj(obj(JSON.parse(line) as Json)['ScenarioFinished'])['recorder']);
    const label = String(recorder['label'] ?? '?');
    const cases = obj(recorder['cases']);
    const checks = obj(recorder['checks']);
    for (const [caseId, interaction] of Object.entries(obj(recorder['interactions']))) {
      const req = obj(obj(interaction)['request']);
      const res = obj(obj(interaction)['response']);
      const status = typeof res['status_code'] === 'number' ? res['status_code'] : undefined;
      result.requests++;
      result.operations.add(label);
      if (status !== undefined) result.statuses.set(status, (result.statuses.get(status) ?? 0) + 1);
      if (status !== undefined && status >= 500) result.serverErrors++;
      const failed = (Array.isArray(checks[caseId]) ? (checks[caseId] as unknown[]) : [])
        .map(obj)
        .filter((c) => c['status'] === 'failure');
      if (status !== undefined && status >= 500 && !failed.some((c) => c['name'] === 'not_a_server_error'))
        failed.push({ name: 'not_a_server_error', failure_info: { failure: { title: 'Server error' } } });
      for (const c of failed) {
        const check = String(c['name']);
        if (check === 'response_schema_conformance') result.schemaViolations++;
        const failure = obj(obj(c['failure_info'])['failure']);
        const message = typeof failure['message'] === 'string' ? failure['message'] : '';
        // A schema violation is told apart by where in the schema it is.
        const where = /Schema at (\S+):/.exec(message)?.[1] ?? '';
        const title = `${String(failure['title'] ?? check)}${where ? ` at ${where}` : ''}`;
        const key = `${label} | ${status} | ${check} | ${title}`;
        const known = findings.get(key);
        if (known) {
          known.count++;
          known.passes.add(pass.name);
          continue;
        }
        const body = obj(obj(cases[caseId])['value'])['body'];
        findings.set(key, {
          operation: label,
          status,
          check,
          title,
          count: 1,
          passes: new Set([pass.name]),
          example: reproduction(url, req, res, body),
          detail: message.split('\n')[0]!.slice(0, 200),
        });
      }
    }
  }
  const report = JSON.parse(readFileSync(join(dir, jsonReport), 'utf8')) as Json;
  for (const e of Array.isArray(report['errors']) ? (report['errors'] as unknown[]) : [])
    result.errors.push(`${String(obj(e)['title'])} (x${String(obj(e)['count'])})`);
  // The report names an error only by title: its operation and traceback are in the output.
  if (result.errors.length > 0) result.errors.push(errorSection(join(dir, 'output.txt')));
  if (report['complete'] !== true)
    result.errors.push(`the run did not complete (${String(report['stop_reason'])})`);
  return result;
}

/** The ERRORS section schemathesis printed (operation, message, traceback), at most 80 lines. */
function errorSection(output: string): string {
  const lines = existsSync(output) ? readFileSync(output, 'utf8').split('\n') : [];
  const at = lines.findIndex((l) => /^=+ ERRORS =+$/.test(l.trim()));
  if (at < 0) return `no ERRORS section in ${output}`;
  return `schemathesis printed:\n${lines.slice(at, at + 80).join('\n')}`;
}

/** The binding keys of every scalar field of every JSON request body (`$ref`s followed, arrays as `[*]`). */
function bodyFieldsOf(openapi: Json): string[] {
  const keys = new Set<string>();
  const resolveRef = (schema: Json): Json => {
    const ref = schema['$ref'];
    if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema;
    let at: unknown = openapi;
    for (const part of ref.slice(2).split('/')) at = obj(at)[part];
    return obj(at);
  };
  const isLeaf = (schema: Json): boolean =>
    ['string', 'integer', 'number'].includes(String(schema['type'])) ||
    schema['const'] !== undefined ||
    Array.isArray(schema['enum']);
  const walk = (raw: unknown, path: string[], depth: number): void => {
    if (depth > 8) return;
    const schema = resolveRef(obj(raw));
    if (path.length > 0 && isLeaf(schema)) keys.add(['body', ...path].join('.'));
    for (const k of ['anyOf', 'oneOf', 'allOf'])
      if (Array.isArray(schema[k])) for (const sub of schema[k] as unknown[]) walk(sub, path, depth + 1);
    for (const [name, sub] of Object.entries(obj(schema['properties'])))
      if (/^[A-Za-z0-9_-]+$/.test(name)) walk(sub, [...path, name], depth + 1);
    // Array elements: `records[*].type`.
    if (schema['items'] !== undefined && path.length > 0)
      walk(schema['items'], [...path.slice(0, -1), `${path[path.length - 1]!}[*]`], depth + 1);
  };
  for (const item of Object.values(obj(openapi['paths'])))
    for (const op of Object.values(obj(item)))
      walk(obj(obj(obj(obj(op)['requestBody'])['content'])['application/json'])['schema'], [], 0);
  return [...keys].sort();
}

function operationsOf(openapi: Json): string[] {
  const ops: string[] = [];
  for (const [path, item] of Object.entries(obj(openapi['paths'])))
    for (const method of Object.keys(obj(item))) ops.push(`${method.toUpperCase()} ${path}`);
  return ops;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  if (!existsSync(settings.schemathesis)) {
    log(
      `schemathesis not found at ${settings.schemathesis}: run \`bash scripts/check-prereqs.sh\` (it installs it)`,
    );
    return 2;
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const started = Date.now();

  const network = new RegtestNetwork({ dataDir: settings.regtestDir, basePort: settings.basePort }, (m) =>
    log(`[regtest] ${m}`),
  );
  const operatorKey = `op_${randomBytes(24).toString('hex')}`;
  const gateway = new Gateway(join(outDir, 'gateway-data'), operatorKey, join(outDir, 'gateway.log'));
  const stopAll = async (): Promise<void> => {
    for (const child of running) child.kill('SIGTERM');
    await gateway.stop();
    if (!settings.keepNetwork) await network.down();
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: stopping the gateway and the network`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const status = await network.up();
    const alice = status.nodes.find((n) => n.name === 'alice');
    if (!alice) throw new Error('the regtest network has no alice');
    const url = await gateway.start({
      socket: alice.grpcSocket,
      cert: alice.tlsCert,
      macaroon: alice.adminMacaroon,
    });
    log(`gateway on ${url} (log: ${join(outDir, 'gateway.log')})`);
    const s = await seed(
      url,
      operatorKey,
      status.nodes.map((n) => n.pubkey),
    );
    const openapi = (await (await fetch(`${url}/docs/json`)).json()) as Json;
    const operations = operationsOf(openapi);
    const bodyFields = bodyFieldsOf(openapi);
    const fixed = {
      id: s.accountId,
      hash: s.invoiceHash,
      paymentId: s.paymentId,
      accountId: s.otherAccountId,
    };
    // The read-only pass first, so the operator passes cannot revoke its key before it runs.
    const passes: Pass[] = [
      { name: 'read-key', key: s.readKey, parameters: fixed, dictionary: s.dictionary, bodyFields },
      { name: 'operator', key: operatorKey, parameters: fixed, dictionary: s.dictionary, bodyFields },
      { name: 'operator-any', key: operatorKey, parameters: {}, dictionary: s.dictionary, bodyFields },
    ];
    log(
      `${operations.length} operations, ${passes.length} passes, ${settings.maxExamples} examples per operation, seed ${settings.seed}`,
    );

    const findings = new Map<string, Finding>();
    const problems: string[] = [];
    let requests = 0;
    let serverErrors = 0;
    let schemaViolations = 0;
    for (const pass of passes) {
      const passStart = Date.now();
      const { dir } = await runSchemathesis(url, pass);
      const r = await readPass(url, pass, dir, findings);
      requests += r.requests;
      serverErrors += r.serverErrors;
      schemaViolations += r.schemaViolations;
      const missing = operations.filter((o) => !r.operations.has(o));
      if (missing.length > 0) problems.push(`pass ${pass.name} sent no request to: ${missing.join(', ')}`);
      for (const e of r.errors) problems.push(`pass ${pass.name}: ${e}`);
      const statuses = [...r.statuses.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([k, v]) => `${k}:${v}`)
        .join(' ');
      log(
        `pass ${pass.name}: ${r.requests} requests to ${r.operations.size} operations in ${((Date.now() - passStart) / 1000).toFixed(0)}s; ${r.serverErrors} 5xx, ${r.schemaViolations} schema violations; statuses ${statuses}`,
      );
      if (gateway.exited) {
        problems.push(gateway.exited);
        break;
      }
    }
    if (requests < MIN_REQUESTS)
      problems.push(
        `only ${requests} requests, fewer than ${MIN_REQUESTS} (raise COULOMB_FUZZ_MAX_EXAMPLES)`,
      );

    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    const list = [...findings.values()].sort((a, b) => a.operation.localeCompare(b.operation));
    if (list.length > 0) {
      log(`${list.length} distinct failures (operation, status, check: title; one reproduction each):`);
      for (const f of list)
        log(
          `  ${f.operation}  ${f.status ?? '-'}  ${f.check}: ${f.title}  x${f.count} [${[...f.passes].join(',')}]\n      ${f.example}${f.detail ? `\n      ${f.detail}` : ''}`,
        );
    }
    for (const p of problems) log(`PROBLEM: ${p}`);
    const verdict =
      list.length === 0 && problems.length === 0 && serverErrors === 0 && schemaViolations === 0;
    log(
      `${verdict ? 'PASS' : 'FAIL'}: ${requests} requests, ${operations.length} operations x ${passes.length} passes, ${serverErrors} 5xx, ${schemaViolations} schema violations, ${list.length} distinct failures, ${seconds}s (seed ${settings.seed}; reports in ${outDir})`,
    );
    return verdict ? 0 : 1;
  } finally {
    await stopAll();
  }
}

main()
  .then((code) => process.exit(code))
  .catch((err: unknown) => {
    log(`FAIL: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
