import { dirname } from 'node:path';
import type { Config } from '../config/config';
import { BANK_TOOLS, bankToolsCheck, clockCheck, controlCheck, peerCheck, poolCheck, staleLoops, staleLoopsCheck, staleMounts, staleMountsCheck } from '../doctor/checks';
import { dockerChecks } from '../doctor/docker-probes';
import { backendToolChecks, hasTool, loopDevices } from '../doctor/host-probes';
import { toFerryError } from '../errors';
import type { ControlClient } from '../wire/control-client';
import type { DoctorCheck, DoctorReport, NodeRecord } from '../wire/records';
import type { BackendSlots } from './backend-slots';
import type { HostState } from './host-state';
import { readMountTable } from './mount-table';

/** What a probe of control found: whether it answered with our token, and its clock against ours. */
export interface ControlProbe {
  ok: boolean;
  code?: string;
  error?: string;
  /** Control's clock minus ours, in ms; absent when it did not answer. */
  skewMs?: number;
}

/** How the agent of a cluster reaches control and its peers for `ferry doctor` (absent under ferry serve). */
export interface ClusterProbes {
  url: string;
  tokenFile?: string;
  probeControl(): Promise<ControlProbe>;
  /** Opens (and closes) a transfer connection to `node`: the handshake proves address and both keys. */
  probePeer(node: NodeRecord): Promise<{ ok: boolean; error?: string }>;
}

/**
 * The agent's share of `ferry doctor`: what only the running agent knows (its config, its backends'
 * pools, control and peers as it reaches them, what it has mounted). Each check's decision is in
 * src/doctor/checks.ts; this class gathers facts.
 */
export class HostDoctor {
  constructor(
    private readonly config: Config,
    private readonly control: ControlClient,
    private readonly backends: BackendSlots,
    private readonly state: HostState,
    private readonly cluster?: ClusterProbes,
  ) {}

  async report(): Promise<DoctorReport> {
    const node = this.config.nodeName;
    const checks: DoctorCheck[] = [];
    const controlProbe = await this.probeControl();
    const volumes = controlProbe.ok ? await this.control.listVolumes().catch(() => []) : [];
    // A backend matters here when it is the default or holds a copy of a volume on this host.
    const here = volumes.filter((v) => v.primaryNode === node || v.replicas.includes(node));
    const inUse = new Set<string>([this.config.defaults.backend, ...here.map((v) => v.backend)]);
    for (const v of here) if (v.fs) inUse.add(`${v.backend}:fs=${v.fs}`);
    if (this.config.defaults.fs) inUse.add(`${this.config.defaults.backend}:fs=${this.config.defaults.fs}`);
    checks.push(...backendToolChecks(inUse));
    const banks = controlProbe.ok ? await this.control.listBanks().catch(() => []) : [];
    checks.push(bankToolsCheck({ missingTools: BANK_TOOLS.filter((t) => !hasTool(t)), banks: banks.length }));
    checks.push(...(await dockerChecks(this.config.dockerSocket, this.config.pluginSocket)));

    for (const [kind, slot] of this.backends.entries()) {
      if (slot.error) {
        checks.push(poolCheck({ kind, ok: false, error: slot.error, inUse: inUse.has(kind) }));
        continue;
      }
      try {
        checks.push(poolCheck({ kind, ok: true, ...(await slot.backend.capacity()), inUse: inUse.has(kind) }));
      } catch (err) {
        checks.push(poolCheck({ kind, ok: false, error: toFerryError(err).message, inUse: inUse.has(kind) }));
      }
    }

    const url = this.cluster?.url ?? null;
    checks.push(controlCheck({ url, ok: controlProbe.ok, code: controlProbe.code, error: controlProbe.error, tokenFile: this.cluster?.tokenFile }));
    checks.push(clockCheck({ url, skewMs: controlProbe.skewMs ?? null }));
    if (this.cluster && controlProbe.ok) {
      const nodes = (await this.control.listNodes().catch(() => [])).filter((n) => n.name !== node);
      const probes = await Promise.all(nodes.map(async (n) => ({ n, r: n.address && n.transferKey ? await this.cluster!.probePeer(n) : { ok: false } })));
      for (const { n, r } of probes) checks.push(peerCheck({ name: n.name, address: n.address, up: n.state === 'up', ...r }));
    }

    const table = readMountTable();
    const root = this.config.mountRoot;
    checks.push(staleMountsCheck(root, staleMounts(root, table.map((e) => e.mountPoint), this.state.mountedNames())));
    const ferryDirs = [this.config.dataDir, this.config.loop.dir, dirname(this.config.btrfs.poolFile)];
    checks.push(staleLoopsCheck(staleLoops(loopDevices(), ferryDirs, table.map((e) => e.source))));
    return { node, ok: checks.every((c) => c.ok), checks };
  }

  private async probeControl(): Promise<ControlProbe> {
    if (this.cluster) return this.cluster.probeControl();
    try {
      await this.control.listNodes();
      return { ok: true, skewMs: 0 };
    } catch (err) {
      return { ok: false, code: toFerryError(err).code, error: toFerryError(err).message };
    }
  }
}
