import { expect } from 'chai';
import { Agent } from '../../src/agent/agent';
import type { BackendSlot } from '../../src/agent/backends';
import type { BackendKind } from '../../src/agent/backends/registry';
import { loadConfig } from '../../src/config/config';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { isFerryError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { plainBackend } from '../support/plain-backend';

/*
 * A backend without streams can serve volumes, but they cannot move: the agent says so, naming the
 * backend, where a move first asks for the volume's backend (both the target's mover and the
 * source's transfer handler go through backendOf).
 */
describe('agent: a volume whose backend has no streams', function () {
  it('is created and mounted, and refused a move with INVALID_REQUEST naming the backend', async function () {
    const config = loadConfig({ overrides: { dataDir: '/tmp/ferry-no-streams', nodeName: 'h1' } });
    const control = new LocalControl(openDb(':memory:'));
    await control.registerNode({ name: 'h1', address: '10.0.0.1:7401', transferKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI', bootId: 'h1' });
    const backend = plainBackend('directory');
    const slots = new Map<BackendKind, BackendSlot>([['directory', { backend }]]);
    const agent = new Agent(config, control, slots, silentLogger());

    const v = await agent.create('plain', { backend: 'directory' });
    expect(v.backend).to.equal('directory');
    expect(await backend.exists('plain')).to.equal(true);
    try {
      await agent.backendOf('plain');
      expect.fail('a volume on a backend without streams was handed to a move');
    } catch (err) {
      expect(isFerryError(err, 'INVALID_REQUEST'), String(err)).to.equal(true);
      expect((err as Error).message).to.equal('cannot move volume plain: its backend directory has no streams; use a backend that has (see ferry status)');
    }
    const status = await agent.status();
    expect(status.backends).to.deep.include({ kind: 'directory', ok: true, totalBytes: 1 << 30, freeBytes: 1 << 30, abilities: [] });
  });
});
