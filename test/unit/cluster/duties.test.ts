import { describe, expect, it } from 'vitest';
import { DutyRunner, type Duty } from '../../../src/cluster/duties.js';
import { AlwaysLeader, type LeaderElection, type LeadershipListener } from '../../../src/cluster/leader.js';
import { createLogger } from '../../../src/logger.js';

/** An election the test drives by hand. */
class ManualElection implements LeaderElection {
  listener: LeadershipListener | undefined;
  leading = false;
  resigned: string[] = [];
  get isLeader(): boolean {
    return this.leading;
  }
  start(listener: LeadershipListener): void {
    this.listener = listener;
  }
  elect(): void {
    this.leading = true;
    this.listener!.elected();
  }
  depose(reason = 'lost'): void {
    this.leading = false;
    this.listener!.deposed(reason);
  }
  resign(reason: string): void {
    this.resigned.push(reason);
    if (this.leading) this.depose(reason);
  }
  async close(): Promise<void> {
    if (this.leading) this.depose('closed');
  }
}

const log = createLogger('silent');
const settle = () => new Promise((r) => setTimeout(r, 10));

function recording(trace: string[], name: string, opts: { failStart?: boolean } = {}): Duty {
  return {
    name,
    async start() {
      if (opts.failStart) throw new Error(`${name} cannot start`);
      trace.push(`start ${name}`);
    },
    stop() {
      trace.push(`stop ${name}`);
    },
  };
}

describe('DutyRunner', () => {
  it('with the always-leader of an embedded store: duties start in order before start resolves, stop in reverse on close', async () => {
    const trace: string[] = [];
    const runner = new DutyRunner(new AlwaysLeader(), [recording(trace, 'a'), recording(trace, 'b')], log);
    await runner.start();
    expect(trace).toEqual(['start a', 'start b']);
    expect(runner.active).toEqual(['a', 'b']);
    await runner.close();
    expect(trace).toEqual(['start a', 'start b', 'stop b', 'stop a']);
    expect(runner.active).toEqual([]);
  });

  it('with the always-leader, a duty failing to start fails the start and stops the duties started', async () => {
    const trace: string[] = [];
    const runner = new DutyRunner(
      new AlwaysLeader(),
      [recording(trace, 'a'), recording(trace, 'b', { failStart: true }), recording(trace, 'c')],
      log,
    );
    await expect(runner.start()).rejects.toThrow('b cannot start');
    expect(trace).toEqual(['start a', 'stop a']);
    expect(runner.active).toEqual([]);
  });

  it('starts on election, stops on deposal, and starts again on the next election', async () => {
    const trace: string[] = [];
    const election = new ManualElection();
    const runner = new DutyRunner(election, [recording(trace, 'a'), recording(trace, 'b')], log);
    await runner.start();
    expect(trace).toEqual([]);
    election.elect();
    await settle();
    expect(runner.active).toEqual(['a', 'b']);
    election.depose();
    await settle();
    expect(runner.active).toEqual([]);
    election.elect();
    await settle();
    expect(trace).toEqual(['start a', 'start b', 'stop b', 'stop a', 'start a', 'start b']);
    await runner.close();
    expect(runner.active).toEqual([]);
  });

  it('a deposal during a slow start stops what started and starts nothing more', async () => {
    const trace: string[] = [];
    const election = new ManualElection();
    let release: () => void = () => undefined;
    const slow: Duty = {
      name: 'a',
      async start() {
        await new Promise<void>((r) => (release = r));
        trace.push('start a');
      },
      stop: () => void trace.push('stop a'),
    };
    const runner = new DutyRunner(election, [slow, recording(trace, 'b')], log);
    await runner.start();
    election.elect();
    await settle();
    election.depose();
    release();
    await settle();
    expect(trace).toEqual(['start a', 'stop a']);
    expect(runner.active).toEqual([]);
  });

  it('an election lost before its duties began starts none', async () => {
    const trace: string[] = [];
    const election = new ManualElection();
    const runner = new DutyRunner(election, [recording(trace, 'a')], log);
    await runner.start();
    election.elect();
    election.depose();
    await settle();
    expect(trace).toEqual([]);
  });

  it('a duty failing to start on a later election resigns the leadership', async () => {
    const trace: string[] = [];
    const election = new ManualElection();
    const runner = new DutyRunner(
      election,
      [recording(trace, 'a'), recording(trace, 'b', { failStart: true })],
      log,
    );
    await runner.start();
    election.elect();
    await settle();
    expect(trace).toEqual(['start a', 'stop a']);
    expect(election.resigned).toEqual(['duty b failed to start']);
    expect(election.isLeader).toBe(false);
    expect(runner.active).toEqual([]);
  });
});
