import { expect } from 'chai';
import { isFerryError } from '../../src/errors';
import { agentParts } from '../support/agent-parts';
import { plainBackend } from '../support/plain-backend';

/*
 * A backend without streams can serve volumes, but they cannot move: the agent says so, naming the
 * backend, where a move first asks for the volume's backend (both the target's mover and the
 * source's transfer handler go through backendOf of their move side).
 */
describe('agent: a volume whose backend has no streams', function () {
  it('is created and mounted, and refused a move with INVALID_REQUEST naming the backend', async function () {
    const { node, control, backend, state, volumes, mounts, status, source, target } = agentParts({ backend: plainBackend('directory') });
    await control.registerNode({ name: node, address: '10.0.0.1:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', bootId: node });

    const v = await volumes.create('plain', { backend: 'directory' });
    expect(v.backend).to.equal('directory');
    expect(await backend.exists('plain')).to.equal(true);
    expect(await mounts.mount('plain', 'c1')).to.equal(state.mountpointOf('plain'));
    await mounts.unmount('plain', 'c1');

    const sides = [target, source];
    for (const side of sides) {
      try {
        await side.backendOf('plain');
        expect.fail('a volume on a backend without streams was handed to a move');
      } catch (err) {
        expect(isFerryError(err, 'INVALID_REQUEST'), String(err)).to.equal(true);
        expect((err as Error).message).to.equal('cannot move volume plain: its backend directory has no streams; use a backend that has (see ferry status)');
      }
    }
    const report = await status.report();
    expect(report.backends).to.deep.include({ kind: 'directory', ok: true, totalBytes: 1 << 30, freeBytes: 1 << 30, abilities: [] });
  });
});
