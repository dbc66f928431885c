import { execFile as execFileCb } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  canMakePrivateNetwork,
  privateNetworkCommand,
  privateNetworkEnv,
} from '../support/private-network.js';
import type { SilentCutResult } from '../support/silent-cut-takeover.js';

const execFile = promisify(execFileCb);
const TAKEOVER_DEADLINE_MS = 10_000;

/**
 * The silent case: the leader's host vanishes from the network (every packet dropped, no FIN,
 * no RST), so PostgreSQL hears nothing of its session ending. Only the session's TCP keepalives
 * free the lock; with the election's settings another instance leads within 10 s. Runs in a
 * private network namespace with a server of its own (test/support/silent-cut-takeover.ts).
 */
describe('leader election when the leader is cut off silently', () => {
  it.skipIf(!canMakePrivateNetwork())(
    'another instance leads within 10 s, and the cut-off leader steps down',
    async () => {
      const command = privateNetworkCommand(join(import.meta.dirname, '../support/silent-cut-takeover.ts'));
      const { stdout } = await execFile(command.file, command.args, {
        env: privateNetworkEnv(),
        timeout: 150_000,
      });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as SilentCutResult;
      expect(result.takeoverMs).not.toBeNull();
      expect(result.takeoverMs!).toBeLessThan(TAKEOVER_DEADLINE_MS);
      expect(result.stepDownMs).not.toBeNull();
    },
    180_000,
  );
});
