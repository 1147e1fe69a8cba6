import { expect } from 'chai';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { ContainerQuiescer, type QuiesceDocker } from '../../src/agent/quiesce';
import type { HostContainer } from '../../src/agent/quiesce-plan';
import { ScriptedDocker } from '../support/scripted-docker';
import { isFerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';

const hooked = (pre: string, post: string): Record<string, string> => ({ 'ferry.pre-snapshot': `["${pre}"]`, 'ferry.post-snapshot': `["${post}"]` });
const ctr = (name: string, volumes: string[], labels: Record<string, string> = {}): HostContainer => ({ id: `id-${name}`, name, state: 'running', labels, volumes });

describe('ContainerQuiescer (scripted dockerd)', function () {
  let control: LocalControl;
  const quiescer = (d: QuiesceDocker | undefined): ContainerQuiescer => new ContainerQuiescer('h1', control, d, silentLogger(), 1000);
  beforeEach(function () {
    control = new LocalControl(openDb(':memory:'));
  });

  it('hooks, pauses, acts, unpauses, then post-hooks, in that order; measures the pause; logs the hooks', async function () {
    const d = new ScriptedDocker([ctr('db', ['data'], hooked('lock', 'unlock')), ctr('app', ['data'])]);
    const { value, report } = await quiescer(d).aroundAll(['data'], 'pause', async () => {
      d.calls.push('snapshot');
      expect([...d.paused].sort()).to.deep.equal(['id-app', 'id-db']);
      return 'snap-1';
    });
    expect(value).to.equal('snap-1');
    expect(d.calls.slice(0, 1)).to.deep.equal(['exec db:lock']);
    expect(d.calls.slice(1, 3).sort()).to.deep.equal(['pause app', 'pause db']);
    expect(d.calls[3]).to.equal('snapshot');
    expect(d.calls.slice(4, 6).sort()).to.deep.equal(['unpause app', 'unpause db']);
    expect(d.calls.slice(6)).to.deep.equal(['exec db:unlock']);
    expect(d.paused.size).to.equal(0);
    expect(report).to.deep.include({ mode: 'pause', containers: ['app', 'db'], paused: ['app', 'db'], warnings: [] });
    expect(report.pausedMs).to.be.a('number');
    const events = (await control.eventsOf('data')).map((e) => `${e.kind}: ${e.detail}`);
    expect(events.some((e) => /^snapshot-hook: pre-snapshot hook in container db exited 0 after \d+ ms: out of db:lock$/.test(e)), events.join('\n')).to.equal(true);
    expect(events.some((e) => /^snapshot-paused: paused app, db for \d+ ms$/.test(e)), events.join('\n')).to.equal(true);
  });

  it('mode none runs the hooks and pauses nothing', async function () {
    const d = new ScriptedDocker([ctr('db', ['data'], hooked('lock', 'unlock')), ctr('app', ['data'])]);
    const { report } = await quiescer(d).aroundAll(['data'], 'none', async () => d.calls.push('snapshot'));
    expect(d.calls).to.deep.equal(['exec db:lock', 'snapshot', 'exec db:unlock']);
    expect(report.pausedMs).to.equal(null);
  });

  it('a failed pre hook: no snapshot, nothing paused, the post hooks of those reached run', async function () {
    const d = new ScriptedDocker([ctr('a', ['data'], hooked('lock-a', 'unlock-a')), ctr('b', ['data'], hooked('lock-b', 'unlock-b')), ctr('c', ['data'], hooked('lock-c', 'unlock-c'))]);
    d.exits.set('b:lock-b', 3);
    let ran = false;
    const err = await quiescer(d)
      .aroundAll(['data'], 'pause', async () => (ran = true))
      .then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'QUIESCE_FAILED'), String(err)).to.equal(true);
    expect((err as Error).message).to.match(/snapshot of volume data not taken: the pre-snapshot hook of container b failed: exited 3/);
    expect(ran).to.equal(false);
    expect(d.calls).to.deep.equal(['exec a:lock-a', 'exec b:lock-b', 'exec b:unlock-b', 'exec a:unlock-a']);
    expect((await control.eventsOf('data')).map((e) => e.kind)).to.include('snapshot-hook-failed');
  });

  it('a timed-out pre hook fails it the same way', async function () {
    const d = new ScriptedDocker([ctr('db', ['data'], hooked('lock', 'unlock'))]);
    d.exits.set('db:lock', null);
    const err = await quiescer(d)
      .aroundAll(['data'], 'pause', async () => 'never')
      .then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.match(/container db failed: timed out after 1000 ms/);
    expect(d.calls).to.deep.equal(['exec db:lock', 'exec db:unlock']);
  });

  it('a failed pause: no snapshot, the others unpaused, post hooks run', async function () {
    const d = new ScriptedDocker([ctr('a', ['data'], hooked('lock', 'unlock')), ctr('b', ['data'])]);
    d.failPause.add('id-b');
    let ran = false;
    const err = await quiescer(d)
      .aroundAll(['data'], 'pause', async () => (ran = true))
      .then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.match(/cannot pause container b: cannot pause: container is restarting/);
    expect(ran).to.equal(false);
    expect(d.paused.size).to.equal(0);
    expect(d.calls).to.include('unpause a');
    expect(d.calls.at(-1)).to.equal('exec a:unlock');
  });

  it('an action that throws: its error, and every container released first', async function () {
    const d = new ScriptedDocker([ctr('a', ['data'], hooked('lock', 'unlock'))]);
    const err = await quiescer(d)
      .aroundAll(['data'], 'pause', async () => {
        throw new Error('btrfs said no');
      })
      .then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.match(/btrfs said no/);
    expect(d.paused.size).to.equal(0);
    expect(d.calls).to.deep.equal(['exec a:lock', 'pause a', 'unpause a', 'exec a:unlock']);
  });

  it('retries an unpause; one that never works fails the snapshot, saying what to run', async function () {
    const d = new ScriptedDocker([ctr('a', ['data']), ctr('b', ['data'])]);
    d.failUnpause.set('id-a', 2);
    await quiescer(d).aroundAll(['data'], 'pause', async () => 'ok');
    expect(d.paused.size, 'unpaused at the third try').to.equal(0);

    const stuck = new ScriptedDocker([ctr('a', ['data'])]);
    stuck.failUnpause.set('id-a', 99);
    const err = await quiescer(stuck)
      .aroundAll(['data'], 'pause', async () => 'ok')
      .then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.match(/containers a are still paused after the snapshot of volume data \(dockerd did not answer\): run docker unpause a/);
  });

  it('a failed post hook is a warning in the report; the value stands', async function () {
    const d = new ScriptedDocker([ctr('db', ['data'], hooked('lock', 'unlock'))]);
    d.exits.set('db:unlock', 1);
    const { value, report } = await quiescer(d).aroundAll(['data'], 'pause', async () => 'snap');
    expect(value).to.equal('snap');
    expect(report.warnings).to.deep.equal(['post-snapshot hook of container db failed: exited 1 after 1 ms (out of db:unlock)']);
  });

  it('without a dockerd: mode none just acts, mode pause is refused', async function () {
    expect((await quiescer(undefined).aroundAll(['data'], 'none', async () => 7)).value).to.equal(7);
    const err = await quiescer(undefined)
      .aroundAll(['data'], 'pause', async () => 7)
      .then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.match(/host h1 has no dockerd to pause containers with: snapshot with --quiesce none/);
  });

  it('finds a Compose project’s volumes', async function () {
    const p = { 'com.docker.compose.project': 'shop' };
    const d = new ScriptedDocker([ctr('web', ['static', 'cache'], p), ctr('db', ['data', 'cache'], p), ctr('other', ['x'])]);
    expect(await quiescer(d).projectVolumes('shop')).to.deep.equal(['cache', 'data', 'static']);
    const err = await quiescer(d)
      .projectVolumes('nope')
      .then(() => undefined, (e: unknown) => e);
    expect(isFerryError(err, 'VOLUME_NOT_FOUND')).to.equal(true);
  });
});
