import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execOk, execSync } from './exec';

/*
 * The test network: one bridge in the root network namespace and one network namespace per
 * test host, joined to it by a veth pair. Hosts have no default route: they reach each other
 * and the bridge address (this test process), nothing else.
 */

export const BRIDGE = 'ferry-br0';
export const SUBNET_PREFIX = '10.77.0';
export const SUBNET = `${SUBNET_PREFIX}.0/24`;
/** The bridge's address: the root namespace (the test process, a control service) as hosts see it. */
export const BRIDGE_IP = `${SUBNET_PREFIX}.1`;
/** Network namespaces of test hosts are named NETNS_PREFIX + n (ferry-h1, ferry-h2, ...). */
export const NETNS_PREFIX = 'ferry-h';
const NETNS_DIR = '/run/netns';
/** Marks our FORWARD rule so that cleanup finds it and nothing else. */
const IPTABLES_COMMENT = 'ferry-test-cluster';
const FORWARD_RULE = ['FORWARD', '-i', BRIDGE, '-o', BRIDGE, '-m', 'comment', '--comment', IPTABLES_COMMENT, '-j', 'ACCEPT'];
/** br_netfilter's switch: when 1, bridged IPv4 frames go through the root namespace's iptables FORWARD chain. */
const BRIDGE_NF_CALL_IPTABLES = '/proc/sys/net/bridge/bridge-nf-call-iptables';

export function netnsName(n: number): string {
  return `${NETNS_PREFIX}${n}`;
}

export function netnsPath(n: number): string {
  return join(NETNS_DIR, netnsName(n));
}

export function hostIp(n: number): string {
  return `${SUBNET_PREFIX}.${10 + n}`;
}

/** The root-namespace end of host n's veth pair (the other end is eth0 inside the namespace). */
export function vethName(n: number): string {
  return `${netnsName(n)}-v`;
}

/** argv prefix that runs a command in host n's network namespace but this (the root) mount namespace. */
export function inNetns(n: number): string[] {
  // Not `ip netns exec`: that also makes a new mount namespace (to remount /sys), so mounts made
  // by the command would not propagate to the host's dockerd.
  return ['nsenter', `--net=${netnsPath(n)}`, '--'];
}

/** Creates the bridge with its address, and lets bridged traffic through a FORWARD DROP policy. */
export function createBridge(): void {
  const taken = execSync(['ip', '-4', 'route', 'show', SUBNET]).stdout;
  if (taken) throw new Error(`the test subnet ${SUBNET} is already routed on this machine (${taken}); free it or change SUBNET_PREFIX in test/cluster/netns.ts`);
  execOk(['ip', 'link', 'add', BRIDGE, 'type', 'bridge']);
  execOk(['ip', 'addr', 'add', `${BRIDGE_IP}/24`, 'dev', BRIDGE]);
  execOk(['ip', 'link', 'set', BRIDGE, 'up']);
  // A root dockerd sets the FORWARD policy to DROP, and with br_netfilter loaded frames between
  // bridge ports pass that chain: accept what stays on our bridge. One rule, removed at cleanup,
  // rather than bridge-nf-call-iptables=0, which would also change the root dockerd's docker0.
  if (readSysctl(BRIDGE_NF_CALL_IPTABLES) === '1') execOk(['iptables', '-w', '-I', ...FORWARD_RULE]);
}

/** Creates host n's namespace, joined to the bridge, with loopback and eth0 up. */
export function addHostNetwork(n: number): void {
  const ns = netnsName(n);
  execOk(['ip', 'netns', 'add', ns]);
  execOk(['ip', 'link', 'add', vethName(n), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  execOk(['ip', 'link', 'set', vethName(n), 'master', BRIDGE, 'up']);
  execOk(['ip', '-n', ns, 'addr', 'add', `${hostIp(n)}/24`, 'dev', 'eth0']);
  execOk(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  execOk(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
}

/** Cuts (false) or restores (true) host n's link to the bridge; the host keeps its address. */
export function setLink(n: number, up: boolean): void {
  execOk(['ip', 'link', 'set', vethName(n), up ? 'up' : 'down']);
}

/** Names of test-host network namespaces that exist now. */
export function listTestNetns(): string[] {
  if (!existsSync(NETNS_DIR)) return [];
  return readdirSync(NETNS_DIR).filter((f) => new RegExp(`^${NETNS_PREFIX}\\d+$`).test(f));
}

/** Inode numbers of the test-host network namespaces, to find the processes inside them. */
export function testNetnsInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const ns of listTestNetns()) {
    try {
      inodes.add(statSync(join(NETNS_DIR, ns)).ino);
    } catch {
      // Deleted meanwhile.
    }
  }
  return inodes;
}

/** Removes namespaces (their veth pairs go with them), the bridge and our iptables rule. */
export function removeTestNetwork(): void {
  for (const ns of listTestNetns()) execSync(['ip', 'netns', 'del', ns]);
  for (const link of leftoverLinks()) execSync(['ip', 'link', 'del', link]);
  // -D removes one copy per call; a killed run may have left several.
  for (let i = 0; i < 20 && hasForwardRule(); i++) execSync(['iptables', '-w', '-D', ...FORWARD_RULE]);
}

/** Describes what of the test network exists, one line each; empty when clean. */
export function findNetworkLeftovers(): string[] {
  const found = [
    ...listTestNetns().map((ns) => `network namespace ${ns}`),
    ...leftoverLinks().map((l) => `link ${l}`),
  ];
  if (hasForwardRule()) found.push(`iptables FORWARD rule "${IPTABLES_COMMENT}"`);
  return found;
}

function leftoverLinks(): string[] {
  const out = execSync(['ip', '-o', 'link', 'show']).stdout;
  return out
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((name) => name === BRIDGE || new RegExp(`^${NETNS_PREFIX}\\d+-v$`).test(name));
}

function hasForwardRule(): boolean {
  if (execSync(['sh', '-c', 'command -v iptables']).code !== 0) return false;
  return execSync(['iptables', '-w', '-S', 'FORWARD']).stdout.includes(IPTABLES_COMMENT);
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}
