import { BackendSlots } from '../../src/agent/backend-slots';
import type { Backend } from '../../src/agent/backends/backend';
import { Containers } from '../../src/agent/containers';
import { Copies } from '../../src/agent/copies';
import { HostState } from '../../src/agent/host-state';
import { HostStatus } from '../../src/agent/host-status';
import { KeyedLock } from '../../src/agent/keyed-lock';
import { Mounts } from '../../src/agent/mounts';
import { MoveSource, MoveTarget } from '../../src/agent/move-sides';
import { Reclaimer } from '../../src/agent/reclaimer';
import { Snapshots, type Quiescer } from '../../src/agent/snapshots';
import type { ControlClient } from '../../src/wire/control-client';
import { Upkeep } from '../../src/agent/upkeep';
import { UsageMeter } from '../../src/agent/usage';
import { VolumeService } from '../../src/agent/volume-service';
import { loadConfig } from '../../src/config/config';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { silentLogger } from '../../src/log';
import { MemoryBackend } from './memory-backend';

/**
 * The agent's parts built in the order serve.ts builds them, over an in-memory control and one
 * `directory` backend (an in-memory one unless given): unit tests of the parts, no root, no disks.
 */
export function agentParts<B extends Backend = MemoryBackend>(
  opts: { node?: string; backend?: B; /** quiesce: what runs around snapshots (default: none) */ quiescer?: (control: ControlClient) => Quiescer } = {},
) {
  const node = opts.node ?? 'h1';
  const config = loadConfig({ overrides: { nodeName: node, dataDir: '/nonexistent/data', logLevel: 'silent', defaults: { backend: 'directory' } } });
  const log = silentLogger();
  const control = new LocalControl(openDb(':memory:'));
  const backend = (opts.backend ?? new MemoryBackend()) as B;
  const lock = new KeyedLock();
  const state = new HostState('/mnt/ferry-test');
  const slots = new BackendSlots(node, control);
  slots.set('directory', { backend });
  const containers = new Containers(node, control, undefined, log);
  const copies = new Copies(node, control, slots, state, lock, log);
  const meter = new UsageMeter(control, log);
  const mounts = new Mounts(node, control, slots, state, lock, meter, containers, log);
  const reclaimer = new Reclaimer(node, control, slots, state, copies, lock, meter, log);
  const volumes = new VolumeService(config, control, slots, copies, lock, meter, log, reclaimer);
  const upkeep = new Upkeep(node, control, slots, state, lock, mounts, copies, containers, log, reclaimer);
  const status = new HostStatus(node, control, slots, state);
  const source = new MoveSource(node, control, slots, lock, mounts, copies, containers);
  const target = new MoveTarget(node, control, slots, state, containers);
  const snapshots = new Snapshots(node, control, slots, lock, log, opts.quiescer?.(control));
  return { node, control, backend, state, volumes, mounts, upkeep, status, source, target, snapshots, reclaimer };
}
