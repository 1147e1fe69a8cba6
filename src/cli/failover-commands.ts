import type { Command } from 'commander';
import type { FailoverRecord } from '../wire/records';
import { apiCall } from './client';

/**
 * fence (issue 7 item 5): `ferry volume failover VOLUME --to HOST [--force] [--json]`: promotes the
 * standby on HOST from the newest snapshot it holds. Refused while the primary is up or may still hold
 * its lease, unless --force (which fences it).
 */
export function registerFailoverCommands(volume: Command, api: () => string): void {
  volume
    .command('failover <name>')
    .description("make a standby the volume's primary (the primary host is lost; refused while it may still write, unless --force)")
    .requiredOption('--to <host>', 'the standby host to promote')
    .option('--force', 'also while the primary is up or may hold its lease: fences it (what it wrote after the snapshot is kept there as a snapshot)')
    .option('--json', 'print the failover record as JSON')
    .action(async (name: string, o: { to: string; force?: boolean; json?: boolean }) => {
      const { failover } = await apiCall<{ failover: FailoverRecord }>(api(), 'POST', `/v1/volumes/${encodeURIComponent(name)}/failover`, { to: o.to, force: !!o.force });
      if (o.json) {
        console.log(JSON.stringify(failover, null, 2));
        return;
      }
      console.log(
        `${name}: ${failover.from} -> ${failover.to} at generation ${failover.generation}, from snapshot ${failover.snapshot}; ` +
          `lost: what ${failover.from} wrote from ${failover.lostFrom} to ${failover.lostTo ?? 'its last heartbeat'} (kept there as a snapshot when it is back)`,
      );
    });
}
