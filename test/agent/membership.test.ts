import { expect } from 'chai';
import { silentLogger } from '../../src/log';
import { Membership } from '../../src/agent/membership';
import type { Mover } from '../../src/agent/mover';
import type { ControlClient } from '../../src/wire/control-client';
import type { MoveRecord } from '../../src/wire/records';

const INTERVAL_MS = 60_000;

/** A control that counts heartbeats; each answer waits for `release` when `hold` is set, and carries `moves`. */
class CountingControl {
  beats = 0;
  moves: MoveRecord[] = [];
  hold = false;
  private waiting: (() => void)[] = [];

  async registerNode(): Promise<void> {}

  async heartbeat(): Promise<{ known: boolean; moves: MoveRecord[]; destroy: [] }> {
    this.beats++;
    if (this.hold) await new Promise<void>((r) => this.waiting.push(r));
    return { known: true, moves: this.moves, destroy: [] };
  }

  release(): void {
    for (const r of this.waiting.splice(0)) r();
  }
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

function member(control: CountingControl, ensured: number[]): Membership {
  const mover = { ensure: async (m: MoveRecord) => void ensured.push(m.id), dropFailed: async () => undefined } as unknown as Mover;
  const agent = { stopContainersFor: async () => [], destroyCopy: async () => false };
  return new Membership(control as unknown as ControlClient, { name: 'h2', address: '10.0.0.2:7401', transferKey: 'key' }, mover, agent, INTERVAL_MS, silentLogger());
}

describe('membership: a heartbeat now when a peer wakes this host', function () {
  it('heartbeats at once, and control’s answer starts the move to this host', async function () {
    const control = new CountingControl();
    const ensured: number[] = [];
    const m = member(control, ensured);
    await m.start();
    expect(control.beats).to.equal(1);
    control.moves = [{ id: 7, volume: 'db', source: 'h1', target: 'h2', state: 'precopy' } as MoveRecord];
    m.beatNow();
    await settle();
    expect(control.beats).to.equal(2);
    expect(ensured).to.deep.equal([7]);
    // The next regular heartbeat is an interval away: no third one follows by itself.
    await settle();
    expect(control.beats).to.equal(2);
    m.stop();
  });

  it('follows a heartbeat under way with exactly one more, however often it is woken meanwhile', async function () {
    const control = new CountingControl();
    const m = member(control, []);
    await m.start();
    control.hold = true;
    m.beatNow();
    await settle();
    expect(control.beats).to.equal(2);
    m.beatNow();
    m.beatNow();
    m.beatNow();
    await settle();
    expect(control.beats).to.equal(2); // still waiting for the answer
    control.release();
    await settle();
    expect(control.beats).to.equal(3);
    control.hold = false;
    control.release();
    await settle();
    expect(control.beats).to.equal(3);
    m.stop();
  });

  it('follows the first heartbeat at start with one more when woken during it', async function () {
    const control = new CountingControl();
    const m = member(control, []);
    control.hold = true;
    const started = m.start();
    await settle();
    expect(control.beats).to.equal(1);
    m.beatNow();
    control.hold = false;
    control.release();
    await started;
    await settle();
    expect(control.beats).to.equal(2);
    m.stop();
  });

  it('does nothing before it started or after it stopped', async function () {
    const control = new CountingControl();
    const m = member(control, []);
    m.beatNow();
    await settle();
    expect(control.beats).to.equal(0);
    await m.start();
    m.stop();
    m.beatNow();
    await settle();
    expect(control.beats).to.equal(1);
  });
});
