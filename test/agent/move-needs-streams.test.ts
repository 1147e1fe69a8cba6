import { expect } from 'chai';
import { BackendSlots } from '../../src/agent/backend-slots';
import { Containers } from '../../src/agent/containers';
import { Copies } from '../../src/agent/copies';
import { HostState } from '../../src/agent/host-state';
import { HostStatus } from '../../src/agent/host-status';
import { KeyedLock } from '../../src/agent/keyed-lock';
import { Mounts } from '../../src/agent/mounts';
import { MoveSource, MoveTarget } from '../../src/agent/move-sides';
import { VolumeService } from '../../src/agent/volume-service';
import { loadConfig } from '../../src/config/config';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { isFerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { plainBackend } from '../support/plain-backend';

/*
 * A backend without streams can serve volumes, but they cannot move: the agent says so, naming the
 * backend, where a move first asks for the volume's backend (both the target's mover and the
 * source's transfer handler go through backendOf of their move side).
 */
describe('agent: a volume whose backend has no streams', function () {
  it('is created and mounted, and refused a move with INVALID_REQUEST naming the backend', async function () {
    const node = 'h1';
    const config = loadConfig({ overrides: { dataDir: '/tmp/ferry-no-streams', nodeName: node } });
    const log = silentLogger();
    const control = new LocalControl(openDb(':memory:'));
    await control.registerNode({ name: node, address: '10.0.0.1:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', bootId: node });
    const backend = plainBackend('directory');
    const lock = new KeyedLock();
    const state = new HostState('/tmp/ferry-no-streams/mounts');
    const slots = new BackendSlots(node, control);
    slots.set('directory', { backend });
    const containers = new Containers(node, control, undefined, log);
    const copies = new Copies(node, control, slots, state, lock, log);
    const mounts = new Mounts(node, control, slots, state, lock, containers, log);
    const volumes = new VolumeService(config, control, slots, copies, lock, log);

    const v = await volumes.create('plain', { backend: 'directory' });
    expect(v.backend).to.equal('directory');
    expect(await backend.exists('plain')).to.equal(true);
    expect(await mounts.mount('plain', 'c1')).to.equal(state.mountpointOf('plain'));
    await mounts.unmount('plain', 'c1');

    const sides = [new MoveTarget(node, control, slots, state, containers), new MoveSource(node, control, slots, lock, mounts, copies, containers)];
    for (const side of sides) {
      try {
        await side.backendOf('plain');
        expect.fail('a volume on a backend without streams was handed to a move');
      } catch (err) {
        expect(isFerryError(err, 'INVALID_REQUEST'), String(err)).to.equal(true);
        expect((err as Error).message).to.equal('cannot move volume plain: its backend directory has no streams; use a backend that has (see ferry status)');
      }
    }
    const status = await new HostStatus(node, control, slots, state).report();
    expect(status.backends).to.deep.include({ kind: 'directory', ok: true, totalBytes: 1 << 30, freeBytes: 1 << 30, abilities: [] });
  });
});
