import { FerryError } from '../errors';
import type { PoolCapacity, SizeRules } from '../agent/backends/backend';
import { BACKENDS, BACKEND_KINDS, backendOptions, descriptorOf, type BackendKind } from '../agent/backends/registry';
import type { Config } from '../config/config';
import { validatePolicyName } from './policy-name';
import { checkReclaimOptions } from './reclaim';
import { checkRestoring } from './backup-refs';
import { formatSize, parseSize } from './size';
import { FAILOVER_OPTIONS, failoverOf } from './failover-settings';

/** The Create options ferry accepts (`docker volume create -o KEY=VALUE`). */
export const CREATE_OPTIONS: readonly string[] = [
  'size',
  'backend',
  ...backendOptions().keys(),
  'profile',
  'replica',
  // policy (issue 7 item 3)
  'policy',
  // snap (issue 7 item 1): -o from=VOLUME@SNAPSHOT, a new volume from a snapshot (src/volume/clone-source.ts)
  'from',
  // quiesce (issue 7 item 2): -o quiesce=pause|none, its snapshots' default
  'quiesce',
  // fence: -o failover=auto|manual (src/volume/failover-settings.ts)
  ...FAILOVER_OPTIONS,
  // reclaim: what a remove does with the data (reclaim.ts)
  'reclaim',
  'retain-removed',
  // bank-ops (issue 8): BANK/CHECKPOINT while `ferry backup restore` fills the volume (Mount refuses it until cleared)
  'restoring',
];

/** `-o replica=keep|drop`: whether the old host keeps a replica after a move (else control's `keepReplica`). */
export const REPLICA_POLICIES = ['keep', 'drop'] as const;
export type ReplicaPolicy = (typeof REPLICA_POLICIES)[number];

/**
 * quiesce (issue 7 item 2): `-o quiesce=pause|none`, how the containers using a volume are treated
 * around its snapshots unless a snapshot says otherwise: `none` (the default) crash-consistent,
 * `pause` frozen for the instant of the snapshot.
 */
export const QUIESCE_MODES = ['none', 'pause'] as const;
export type QuiesceMode = (typeof QUIESCE_MODES)[number];

/** What a volume is made with, after defaults and profiles are applied. */
export interface VolumeSpec {
  backend: BackendKind;
  sizeBytes?: number;
  /** The filesystem inside the dataset, for backends that take `-o fs` (their descriptor's values). */
  fs?: string;
  profile?: string;
  /** Absent: control's cluster setting decides. */
  replica?: ReplicaPolicy;
  /** policy (issue 7 item 3): the protection policy (`-o policy=`, or the profile's); control checks it exists. */
  policy?: string;
  /** quiesce: its snapshots' default quiesce mode; absent: none. */
  quiesce?: QuiesceMode;
}

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new FerryError('INVALID_OPTION', `invalid ${key} ${JSON.stringify(value)}: valid values are ${allowed.join(', ')}`);
  }
  return value as T;
}

/**
 * Turns Docker's Create `Opts` (which may be null) into a spec: profile first, then explicit
 * options, then config defaults. Throws INVALID_OPTION naming the valid keys or values.
 */
export function resolveCreateOptions(opts: Record<string, unknown> | null | undefined, config: Config): VolumeSpec {
  const given: Record<string, string> = {};
  for (const [key, value] of Object.entries(opts ?? {})) {
    if (!CREATE_OPTIONS.includes(key)) {
      throw new FerryError('INVALID_OPTION', `unknown option ${JSON.stringify(key)}: valid options are ${CREATE_OPTIONS.join(', ')}`);
    }
    if (typeof value !== 'string') {
      throw new FerryError('INVALID_OPTION', `option ${key} must be a string, got ${JSON.stringify(value)}`);
    }
    given[key] = value;
  }

  let profile: Record<string, string | undefined> = {};
  if (given.profile !== undefined) {
    const names = Object.keys(config.profiles);
    const found = config.profiles[given.profile];
    if (!found) {
      throw new FerryError(
        'INVALID_OPTION',
        `unknown profile ${JSON.stringify(given.profile)}: ${names.length ? `valid profiles are ${names.join(', ')}` : 'the config defines no profiles'}`,
      );
    }
    profile = found;
  }

  const backend = oneOf('backend', given.backend ?? profile.backend ?? config.defaults.backend, BACKEND_KINDS);
  const descriptor = descriptorOf(backend)!;
  // Options some backend takes beyond size (loop's fs): only for a backend that takes them, from its values.
  const fsOption = descriptor.options.fs;
  const fsText = given.fs ?? profile.fs;
  if (fsText !== undefined && !fsOption) {
    const takers = backendOptions().get('fs')?.kinds ?? [];
    throw new FerryError(
      'INVALID_OPTION',
      `option fs applies to backend ${takers.join(', ')} only, not ${backend}: drop -o fs or add -o backend=${takers[0] ?? '...'}`,
    );
  }
  const fs = fsOption ? oneOf('fs', fsText ?? config.defaults.fs, fsOption.values) : undefined;
  // The configured default size is for backends that enforce one; the others would refuse it.
  const sizeText = given.size ?? profile.size ?? (descriptor.sizeRules.enforcesSize ? config.defaults.size : undefined);
  const sizeBytes = sizeText === undefined ? undefined : parseSize(sizeText);
  const replica = given.replica === undefined ? undefined : oneOf('replica', given.replica, REPLICA_POLICIES);
  failoverOf(given);
  // reclaim: checked here, decided at remove by control (reclaimOf).
  checkReclaimOptions(given);
  if (given.restoring !== undefined) checkRestoring(given.restoring);
  // policy (issue 7 item 3): an explicit -o policy= wins over the profile's; "" means none.
  const policyText = given.policy ?? profile.policy;
  const policy = policyText ? validatePolicyName(policyText) : undefined;
  const quiesce = given.quiesce === undefined ? undefined : oneOf('quiesce', given.quiesce, QUIESCE_MODES);
  return {
    backend,
    sizeBytes,
    fs,
    ...(given.profile !== undefined ? { profile: given.profile } : {}),
    ...(replica ? { replica } : {}),
    ...(policy ? { policy } : {}),
    ...(quiesce ? { quiesce } : {}),
  };
}

/**
 * Whether the old primary keeps its copy after a move (pure): the volume's own `replica` option if
 * it was created with one, else the cluster's setting.
 */
export function keepsReplica(options: Readonly<Record<string, string>>, clusterDefault: boolean): boolean {
  if (options.replica === 'keep') return true;
  if (options.replica === 'drop') return false;
  return clusterDefault;
}

/** Refuses a spec that the chosen backend cannot make in its pool, before anything is written. */
export function checkSpecFits(spec: VolumeSpec, rules: SizeRules, capacity: PoolCapacity): void {
  if (spec.sizeBytes === undefined) {
    if (rules.requiresSize) {
      throw new FerryError('INVALID_OPTION', `backend ${spec.backend} needs a size: add -o size=... (for example 10G)`);
    }
    return;
  }
  if (!rules.enforcesSize) {
    const sized = BACKENDS.filter((d) => d.sizeRules.enforcesSize).map((d) => `-o backend=${d.kind}`);
    throw new FerryError('INVALID_OPTION', `backend ${spec.backend} cannot enforce a size limit: drop -o size, or use ${sized.join(' or ')}`);
  }
  const min = rules.minBytes(spec);
  if (spec.sizeBytes < min) {
    throw new FerryError(
      'INVALID_OPTION',
      `size ${formatSize(spec.sizeBytes)} is too small for backend ${spec.backend}${spec.fs ? ` with ${spec.fs}` : ''}: the minimum is ${formatSize(min)}`,
    );
  }
  if (spec.sizeBytes > capacity.totalBytes) {
    throw new FerryError(
      'INVALID_OPTION',
      `size ${formatSize(spec.sizeBytes)} is larger than the ${spec.backend} pool (${formatSize(capacity.totalBytes)}): ask for less, or grow the pool`,
    );
  }
}

/**
 * quiesce: how a snapshot of some volumes taken together is quiesced (pure): as asked, else `pause`
 * when any of them was created with `-o quiesce=pause` (a group is one instant for all), else none.
 */
export function quiesceModeOf(options: readonly Readonly<Record<string, string>>[], asked?: QuiesceMode): QuiesceMode {
  if (asked) return asked;
  return options.some((o) => o.quiesce === 'pause') ? 'pause' : 'none';
}
