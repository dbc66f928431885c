import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '../../../src/cli');
/** What only `start`, `regtest` and `l402 fetch` need: LND's client, the gateway, fastify, LevelDB. */
const HEAVY =
  /^import (?!type )[^;]*from '\.\.\/(main|lightning\/lnd\/|regtest\/network|l402\/client|http\/|storage\/)/m;

describe('the CLI starts light', () => {
  it('imports the gateway and LND only lazily (await import), so --help and API commands do not load them', () => {
    const eager = readdirSync(CLI)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => HEAVY.test(readFileSync(join(CLI, f), 'utf8')));
    expect(eager).toEqual([]);
  });
});
