/**
 * The agent economy loop: an agent account browses the open tasks it has the capabilities for,
 * claims one, does the work by calling a paid model through the gateway's L402 proxy (paying the
 * challenges from its own account with the SDK's `createL402Fetch` + `accountPayer`), submits the
 * result, and waits until the publisher accepts and the reward reaches its balance. It always
 * asks for the strong model: the proxy's budget-aware routing (the service's `routing` tiers,
 * docs/L402.md) serves the cheaper model while the agent's balance is below the upgrade
 * threshold, and the strong one once its earnings lift it over — the upgrade happens in the proxy,
 * told by the `Coulomb-Model-Routed` and `Coulomb-Budget-Tier` headers. Every step is printed.
 *
 * Uses only the package's public API (`coulomb`: the SDK fetch) and the gateway's HTTP API.
 *
 *   COULOMB_API=http://127.0.0.1:8402 COULOMB_PROXY=http://127.0.0.1:8403 \
 *   AGENT_ACCOUNT=agent-1 AGENT_KEY=ck_… CAPABILITY=summarize npx tsx examples/agent-economy.ts
 */
import { accountPayer, createL402Fetch } from '../src/index.js';

export interface AgentOptions {
  /** The gateway's HTTP API and its L402 proxy. */
  api: string;
  proxy: string;
  accountId: string;
  /** An account key of the agent with the read, invoice and pay scopes. */
  apiKey: string;
  capability: string;
  /** The model the agent asks for (the proxy's routing may serve a cheaper one). */
  model: string;
  /** How many tasks to do before stopping. */
  tasks: number;
  /** How long to wait for each acceptance (ms). */
  acceptTimeoutMs?: number;
  print?: (line: string) => void;
}

interface TaskView {
  id: string;
  title: string;
  description: string;
  rewardMsat: string;
  state: string;
}

/** Runs the loop; resolves with the models that served it, task by task. */
export async function runAgent(o: AgentOptions): Promise<{ models: string[]; balanceMsat: bigint }> {
  const print = o.print ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const headers = { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json' };
  const base = `${o.api.replace(/\/$/, '')}/v1/accounts/${encodeURIComponent(o.accountId)}`;
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(base + path, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as T & { error?: { code: string; message: string } };
    if (!res.ok)
      throw new Error(
        `${method} ${path}: ${res.status} ${json.error?.code ?? ''} ${json.error?.message ?? ''}`,
      );
    return json;
  };
  const balance = async (): Promise<bigint> =>
    BigInt((await call<{ balanceMsat: string }>('GET', '')).balanceMsat);
  // The SDK fetch: a 402 from the proxy is paid from the agent's own account, then retried.
  const paidFetch = createL402Fetch({
    payer: accountPayer({ gatewayUrl: o.api, accountId: o.accountId, apiKey: o.apiKey }),
    maxCostMsat: 1_000_000n,
  });
  const models: string[] = [];
  print(`[agent ${o.accountId}] balance ${await balance()} msat; asking for ${o.model}`);
  for (let n = 0; n < o.tasks; n++) {
    // 1. Browse the open tasks this agent can do.
    const { tasks } = await call<{ tasks: TaskView[] }>(
      'GET',
      `/tasks?state=open&capability=${encodeURIComponent(o.capability)}`,
    );
    const task = tasks[0];
    if (!task) {
      print('[agent] no open task for my capability; stopping');
      break;
    }
    print(`[agent] found task "${task.title}" paying ${task.rewardMsat} msat`);
    // 2. Claim it.
    await call('POST', `/tasks/${task.id}/claim`, {});
    print(`[agent] claimed ${task.id}`);
    // 3. Do the work with the paid model, through the proxy (which routes it by the agent's balance).
    print(`[agent] asking for ${o.model} with a balance of ${await balance()} msat`);
    const res = await paidFetch(`${o.proxy.replace(/\/$/, '')}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: o.model,
        max_tokens: 16,
        messages: [{ role: 'user', content: `${task.title}: ${task.description}` }],
      }),
    });
    if (!res.ok) throw new Error(`the model call failed: ${res.status} ${await res.text()}`);
    const completion = (await res.json()) as {
      model?: string;
      choices: { message: { content: string } }[];
      usage?: { total_tokens: number };
    };
    const answer = completion.choices[0]?.message.content ?? '';
    const served = completion.model ?? o.model;
    const tier = res.headers.get('coulomb-budget-tier');
    const routed = res.headers.get('coulomb-model-routed');
    models.push(served);
    print(
      routed
        ? `[agent] the proxy routed ${o.model} to ${served} (tier ${tier}: my balance is below the upgrade threshold)`
        : `[agent] served by ${served}${tier ? ` (tier ${tier})` : ''}`,
    );
    print(
      `[agent] ${served} answered (${completion.usage?.total_tokens ?? '?'} tokens): ${answer.slice(0, 60)}`,
    );
    // 4. Submit the result.
    await call('POST', `/tasks/${task.id}/submit`, { result: answer || '(empty)' });
    print('[agent] submitted; waiting for the publisher to accept');
    // 5. Paid on acceptance: the reward is released from escrow to the agent.
    const until = Date.now() + (o.acceptTimeoutMs ?? 60_000);
    for (;;) {
      const { tasks: mine } = await call<{ tasks: TaskView[] }>('GET', '/tasks?mine=true&state=completed');
      if (mine.some((t) => t.id === task.id)) break;
      if (Date.now() > until) throw new Error(`task ${task.id} was not accepted in time`);
      await new Promise((r) => setTimeout(r, 250));
    }
    print(`[agent] accepted and paid ${task.rewardMsat} msat; balance ${await balance()} msat`);
  }
  return { models, balanceMsat: await balance() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = (k: string, d?: string): string => {
    const v = process.env[k] ?? d;
    if (v === undefined) throw new Error(`set ${k}`);
    return v;
  };
  await runAgent({
    api: env('COULOMB_API', 'http://127.0.0.1:8402'),
    proxy: env('COULOMB_PROXY', 'http://127.0.0.1:8403'),
    accountId: env('AGENT_ACCOUNT'),
    apiKey: env('AGENT_KEY'),
    capability: env('CAPABILITY', 'summarize'),
    model: env('MODEL', 'sample-large'),
    tasks: Number(env('TASKS', '2')),
  });
}
