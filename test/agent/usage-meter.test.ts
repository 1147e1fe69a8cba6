import { expect } from 'chai';
import { agentParts } from '../support/agent-parts';
import { MemoryBackend } from '../support/memory-backend';

/** A memory backend whose usage() answers only when the test lets it (a slow `btrfs qgroup show`). */
class SlowUsageBackend extends MemoryBackend {
  usageCalls: (readonly string[] | undefined)[] = [];
  private release?: () => void;
  gate = new Promise<void>((r) => (this.release = r));

  open(): void {
    this.release?.();
  }

  override async usage(names?: readonly string[]): Promise<Map<string, number>> {
    this.usageCalls.push(names);
    await this.gate;
    return new Map((names ?? []).map((n) => [n, 4096]));
  }
}

describe('used bytes from the moment a volume exists (UsageMeter)', function () {
  it('Create answers without waiting for the measurement; inspect and ferry volume ls wait for it', async function () {
    const p = agentParts({ backend: new SlowUsageBackend() });
    const created = await p.volumes.create('v1', {});
    // Create answered while usage() is still held: it did not wait.
    expect(created.usedBytes).to.equal(null);
    expect(p.backend.usageCalls).to.deep.equal([['v1']]);
    let inspected: number | null | undefined;
    const inspecting = p.volumes.inspect('v1').then((v) => (inspected = v.usedBytes));
    await new Promise((r) => setImmediate(r));
    expect(inspected, 'inspect waits for the measurement under way').to.equal(undefined);
    p.backend.open();
    await inspecting;
    expect(inspected).to.equal(4096);
    expect((await p.volumes.list({ all: true }))[0].usedBytes).to.equal(4096);
  });

  it('measures a volume again after its last Unmount', async function () {
    const p = agentParts({ backend: new SlowUsageBackend() });
    p.backend.open();
    await p.volumes.create('v2', {});
    await p.mounts.mount('v2', 'id-1');
    await p.mounts.unmount('v2', 'id-1');
    expect(p.backend.usageCalls).to.deep.equal([['v2'], ['v2']]);
    expect((await p.volumes.get('v2')).usedBytes).to.equal(4096);
  });
});
