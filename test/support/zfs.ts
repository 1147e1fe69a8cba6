import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ownerAlive, ownerStamp } from './host';

/**
 * ZFS for tests: a zfs that answers (zfs-fuse started by scripts/start-zfs-fuse.sh when needed, or
 * the kernel's OpenZFS), and test pools on sparse files named after the run that made them, so that
 * a killed run's pools can be told from a live one's and destroyed.
 *
 * Environment (for runs elsewhere, e.g. the OpenZFS VM): FERRY_ZFS_POOL_DIR puts the pool files in
 * that directory instead of the test's temp dir.
 */

const POOL_PREFIX = 'ferrytest-';
let seq = 0;

function answers(): { ok: boolean; why: string } {
  const r = spawnSync('zpool', ['list', '-H', '-o', 'name'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error) return { ok: false, why: r.error.message };
  return { ok: r.status === 0, why: (r.stderr || r.stdout).trim() };
}

/** What keeps zfs from answering here, after trying to start zfs-fuse; [] when it answers. */
export function zfsMissing(): string[] {
  if (spawnSync('sh', ['-c', 'command -v zpool']).status !== 0) return ['the command zpool (zfs-fuse or OpenZFS)'];
  if (answers().ok) return [];
  const script = join(__dirname, '..', '..', '..', 'scripts', 'start-zfs-fuse.sh');
  const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 60_000 });
  const now = answers();
  if (now.ok) return [];
  return [`a zfs that answers (zpool list: ${now.why}; start-zfs-fuse.sh: ${(r.stderr || '').trim().split('\n').pop() ?? ''})`];
}

/** A pool name unique to this run and call: `ferrytest-<owner stamp>-<n>`. */
export function testPoolName(): string {
  return `${POOL_PREFIX}${ownerStamp()}-${++seq}`;
}

/** Where a test's pool file goes: FERRY_ZFS_POOL_DIR if set, else `dir`. */
export function poolFileIn(dir: string, pool: string): string {
  return join(process.env.FERRY_ZFS_POOL_DIR ?? dir, `${pool}.img`);
}

/** Destroys the test pools named in `pools` that exist (unmounting their filesystems). */
export function destroyPools(pools: readonly string[]): void {
  const have = new Set(listPools());
  for (const p of pools) {
    if (!have.has(p)) continue;
    // zfs-fuse can answer "pool is busy" for a moment after its filesystems were unmounted.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = spawnSync('zpool', ['destroy', '-f', p], { encoding: 'utf8', timeout: 60_000 });
      if (r.status === 0 || !listPools().includes(p)) break;
      if (Date.now() > deadline) throw new Error(`cannot destroy test pool ${p}: ${r.stderr.trim()}`);
      spawnSync('sleep', ['0.2']);
    }
  }
}

function listPools(): string[] {
  const r = spawnSync('zpool', ['list', '-H', '-o', 'name'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

/** Destroys test pools whose run is gone (a killed run's); pools of live runs stay. */
export function cleanupZfsLeftovers(): void {
  if (spawnSync('sh', ['-c', 'command -v zpool']).status !== 0) return;
  const dead = listPools().filter((p) => {
    const stamp = /^ferrytest-(\d+\.\d+)-\d+$/.exec(p)?.[1];
    return stamp !== undefined && stamp !== ownerStamp() && !ownerAlive(stamp);
  });
  destroyPools(dead);
}
