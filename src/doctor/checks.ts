import { formatSize } from '../volume/size';
import type { DoctorCheck } from '../wire/records';

/**
 * The decisions of `ferry doctor`, pure: each takes what a probe found and answers one check with,
 * when it fails, what is wrong and what to run. The probes (host-probes, docker-probes, the agent's
 * HostDoctor) only gather facts.
 */

export function pass(check: string, detail?: string): DoctorCheck {
  return { check, ok: true, problem: null, fix: null, ...(detail ? { detail } : {}) };
}

export function fail(check: string, problem: string, fix: string): DoctorCheck {
  return { check, ok: false, problem, fix };
}

/** Pools with less free than this share of their size fail (writes and moves need room). */
export const POOL_FREE_MIN_RATIO = 0.1;
/** Clocks further apart than this fail: events and leases compare times across hosts. */
export const CLOCK_SKEW_MAX_MS = 5000;

/** The commands and kernel filesystems one backend (or one of its options) needs. */
export function toolsCheck(f: { label: string; missingTools: string[]; missingFilesystems: string[]; required: boolean }): DoctorCheck {
  const check = `tools:${f.label}`;
  if (!f.missingTools.length && !f.missingFilesystems.length) return pass(check, 'every command and filesystem it needs is here');
  const what = [...f.missingTools.map((t) => `the command ${t}`), ...f.missingFilesystems.map((fs) => `the ${fs} filesystem in the kernel`)].join(', ');
  // A backend nobody uses here may lack its tools: say so, without failing the host.
  if (!f.required) return pass(check, `not usable here (lacks ${what}); only volumes created with it would need it`);
  const fixes = [
    ...(f.missingTools.length ? [`install the package that provides ${f.missingTools.join(', ')} (Debian: scripts/install-deps.sh lists them)`] : []),
    ...f.missingFilesystems.map((fs) => `modprobe ${fs}`),
  ];
  return fail(check, `backend ${f.label} lacks ${what}`, fixes.join('; then '));
}

/** The commands a backup or restore runs on a host: getfattr and setfattr (xattrs, ACLs), mknod (fifos, devices). */
export const BANK_TOOLS = ['getfattr', 'setfattr', 'mknod'] as const;

/**
 * Whether this host can back volumes up and restore them: the commands BANK_TOOLS lists. Fails
 * only once the cluster has a bank (before that, nothing here would run them).
 */
export function bankToolsCheck(f: { missingTools: string[]; banks: number }): DoctorCheck {
  const check = 'tools:bank';
  if (!f.missingTools.length) return pass(check, `${BANK_TOOLS.join(', ')} are here (backups keep xattrs, ACLs, fifos and devices)`);
  const what = f.missingTools.join(', ');
  if (f.banks === 0) return pass(check, `backups and restores would fail here (no ${what}); the cluster has no bank yet`);
  return fail(check, `backups and restores on this host would fail: it lacks ${what}`, `install Debian's attr package (getfattr, setfattr) and coreutils (mknod): apt-get install attr coreutils`);
}

/** Whether dockerd answers on its socket. */
export function dockerdCheck(socket: string, r: { version?: string; error?: string }): DoctorCheck {
  if (r.version) return pass('dockerd', `dockerd ${r.version} answers at ${socket}`);
  return fail('dockerd', `dockerd does not answer at ${socket}: ${r.error ?? 'no answer'}`, 'start it (systemctl start docker, or scripts/start-dockerd.sh) and run ferry doctor again');
}

/**
 * Whether dockerd has activated ferry as a volume driver: a legacy plugin is listed among
 * `docker info`'s volume plugins once used; a managed plugin is in `docker plugin ls`, enabled.
 */
export function pluginActivatedCheck(f: { driver: string; volumeDrivers: string[]; managed: { name: string; enabled: boolean }[] }): DoctorCheck {
  if (f.volumeDrivers.includes(f.driver)) return pass('plugin-activated', `dockerd lists ${f.driver} among its volume drivers`);
  const managed = f.managed.find((p) => p.name === f.driver || p.name.startsWith(`${f.driver}:`) || p.name.split('/').pop()?.split(':')[0] === f.driver);
  if (managed?.enabled) return pass('plugin-activated', `managed plugin ${managed.name} is enabled`);
  if (managed) return fail('plugin-activated', `the managed plugin ${managed.name} is installed but disabled`, `docker plugin enable ${managed.name}`);
  return fail(
    'plugin-activated',
    `dockerd has not activated the volume driver ${f.driver} (docker info lists ${f.volumeDrivers.join(', ') || 'none'})`,
    `make sure ferry serve (or ferry agent) runs, then: docker volume ls (dockerd activates a plugin on first use)`,
  );
}

/** Whether the Docker plugin socket is there and answers /Plugin.Activate as a volume driver. */
export function pluginSocketCheck(path: string, r: { exists: boolean; implements?: string[]; error?: string }): DoctorCheck {
  if (!r.exists) return fail('plugin-socket', `the plugin socket ${path} is missing, so dockerd cannot reach ferry`, 'restart ferry (systemctl restart ferry, or ferry serve): it makes the socket at start');
  if (r.implements?.includes('VolumeDriver')) return pass('plugin-socket', `${path} answers as a VolumeDriver`);
  if (r.implements) return fail('plugin-socket', `${path} answers, but not as a volume driver (${r.implements.join(', ') || 'nothing'})`, `another program owns ${path}: stop it, then restart ferry`);
  return fail('plugin-socket', `the plugin socket ${path} is there but does not answer: ${r.error ?? 'no answer'}`, 'restart ferry (systemctl restart ferry, or ferry serve)');
}

/** Whether the local API (what the CLI talks to) answers. */
export function apiCheck(socket: string, r: { ok: boolean; error?: string }): DoctorCheck {
  if (r.ok) return pass('ferry-api', `ferry answers at ${socket}`);
  return fail('ferry-api', `ferry is not answering at ${socket}: ${r.error ?? 'no answer'}`, 'start it: ferry serve (single host) or ferry agent --control URL (cluster); then run ferry doctor again');
}

/** One backend's pool: up, and with room to spare. `inUse`: the default backend or one holding volumes here. */
export function poolCheck(f: { kind: string; ok: boolean; error?: string; freeBytes?: number; totalBytes?: number; inUse: boolean }): DoctorCheck {
  const check = `pool:${f.kind}`;
  if (!f.ok) {
    if (!f.inUse) return pass(check, `not available here (${f.error ?? 'unknown'}); no volume here uses it`);
    return fail(check, `backend ${f.kind} is unavailable: ${f.error ?? 'unknown'}`, `ferry doctor's tools:${f.kind} check says what it lacks; fix that, then restart ferry`);
  }
  const free = f.freeBytes ?? 0;
  const total = f.totalBytes ?? 0;
  const seen = `${formatSize(free)} free of ${formatSize(total)}`;
  if (total > 0 && free / total < POOL_FREE_MIN_RATIO) {
    return fail(
      check,
      `the ${f.kind} pool is nearly full: ${seen} (under ${Math.round(POOL_FREE_MIN_RATIO * 100)}%); creates, writes and moves to this host may fail`,
      `free space: ferry volume ls shows volumes and their use; ferry volume rm NAME removes one, ferry volume move NAME --to HOST moves one away; or grow the pool`,
    );
  }
  return pass(check, seen);
}

/** Whether control answers with this host's token. `code` is the FerryError code of the failure. */
export function controlCheck(f: { url: string | null; ok: boolean; code?: string; error?: string; tokenFile?: string }): DoctorCheck {
  if (f.url === null) return pass('control', 'control runs in this process (ferry serve)');
  if (f.ok) return pass('control', `control at ${f.url} answers and accepts the token`);
  if (f.code === 'UNAUTHORIZED') {
    return fail('control', `control at ${f.url} refuses this host's token`, `copy the cluster token from the control host into ${f.tokenFile ?? 'the token file (--token-file)'}, then restart ferry agent`);
  }
  return fail('control', `control at ${f.url} is unreachable: ${f.error ?? 'no answer'}`, `start ferry control on its host (systemctl start ferry-control) or check the network and --control ${f.url}`);
}

/** The clock against control's. `skewMs`: control's clock minus ours (null: not measured). */
export function clockCheck(f: { url: string | null; skewMs: number | null }): DoctorCheck {
  if (f.url === null) return pass('clock', 'control shares this host\'s clock (ferry serve)');
  if (f.skewMs === null) return fail('clock', `cannot compare clocks: control at ${f.url} did not answer`, 'fix the control check first');
  const s = Math.abs(f.skewMs) / 1000;
  if (Math.abs(f.skewMs) > CLOCK_SKEW_MAX_MS) {
    return fail('clock', `this host's clock is ${s.toFixed(1)} s ${f.skewMs > 0 ? 'behind' : 'ahead of'} control's`, 'synchronise clocks with NTP on every host: timedatectl set-ntp true (or chrony/ntpd)');
  }
  return pass('clock', `within ${s.toFixed(1)} s of control's`);
}

/** Another host's transfer service: reachable, and showing the key control recorded for it. */
export function peerCheck(f: { name: string; address: string | null; up: boolean; ok: boolean; error?: string }): DoctorCheck {
  const check = `peer:${f.name}`;
  if (!f.address) return fail(check, `host ${f.name} has no transfer address recorded`, `start ferry agent on ${f.name}; it registers its address at start`);
  if (f.ok) return pass(check, `transfer service at ${f.address} answers with ${f.name}'s key and accepts ours`);
  if (!f.up) return fail(check, `host ${f.name} is down (control hears no heartbeat) and its transfer service at ${f.address} does not answer: ${f.error ?? ''}`.trim(), `start ferry agent on ${f.name}, or check the network between the hosts`);
  return fail(
    check,
    `cannot open a transfer connection to ${f.name} at ${f.address}: ${f.error ?? 'no answer'}`,
    `let TCP ${f.address.split(':').pop()} through from this host to ${f.name}; if the key differs, restart ferry agent on ${f.name} so that it registers its key again`,
  );
}

/** Mounts under the mount root that no volume mounted here owns (left by a crash or by hand). */
export function staleMounts(mountRoot: string, mountPoints: string[], owned: string[]): string[] {
  const prefix = mountRoot.endsWith('/') ? mountRoot : `${mountRoot}/`;
  const own = new Set(owned.map((n) => `${prefix}${n}`));
  return [...new Set(mountPoints.filter((m) => m.startsWith(prefix) && !own.has(m)))].sort();
}

export function staleMountsCheck(mountRoot: string, stale: string[]): DoctorCheck {
  if (!stale.length) return pass('stale-mounts', `every mount under ${mountRoot} belongs to a volume`);
  return fail(
    'stale-mounts',
    `${stale.length} mount${stale.length > 1 ? 's' : ''} under ${mountRoot} belong${stale.length > 1 ? '' : 's'} to no volume: ${stale.join(', ')}`,
    stale.map((m) => `umount ${m}`).join('; '),
  );
}

/** A loop device and the file behind it (" (deleted)" as the kernel marks an unlinked one). */
export interface LoopDevice {
  device: string;
  backingFile: string;
}

/**
 * Loop devices whose backing file is one of ferry's (under a ferry directory) that nothing mounts:
 * a volume's image or the btrfs pool file is always mounted while its loop device is attached, so
 * one that is not (or whose file was deleted) was left by a crash. `mountSources`: the sources of
 * every mount (/dev/loopN for loop mounts).
 */
export function staleLoops(devices: LoopDevice[], ferryDirs: string[], mountSources: string[]): LoopDevice[] {
  const inFerry = (f: string): boolean => ferryDirs.some((d) => f.startsWith(d.endsWith('/') ? d : `${d}/`));
  const mounted = new Set(mountSources);
  return devices.filter((d) => {
    const file = d.backingFile.replace(/ \(deleted\)$/, '');
    return inFerry(file) && (file !== d.backingFile || !mounted.has(d.device));
  });
}

export function staleLoopsCheck(stale: LoopDevice[]): DoctorCheck {
  if (!stale.length) return pass('stale-loop-devices', 'every loop device on a ferry image belongs to a volume');
  return fail(
    'stale-loop-devices',
    `loop device${stale.length > 1 ? 's' : ''} on ferry images that no volume uses: ${stale.map((d) => `${d.device} (${d.backingFile})`).join(', ')}`,
    stale.map((d) => `losetup -d ${d.device}`).join('; '),
  );
}
