import type { Command } from 'commander';
import { FerryError } from '../errors';
import { formatSize } from '../volume/size';
import type { RemovedVolume, VolumeView } from '../wire/records';
import { apiCall } from './client';
import { table } from './format';

/** reclaim: `ferry volume ls --removed` as a table: what is kept, where, and until when. */
export function removedTable(removed: readonly RemovedVolume[]): string {
  return table(
    ['NAME', 'ID', 'REMOVED AT', 'EXPIRES AT', 'HOST', 'SIZE', 'STATE'],
    removed.map((r) => [
      r.name,
      String(r.id),
      r.removedAt,
      r.expiresAt,
      r.node,
      r.usedBytes === null ? '-' : formatSize(r.usedBytes),
      r.state === 'retained' ? 'retained' : r.state === 'retaining' ? 'being removed' : 'being destroyed',
    ]),
  );
}

/** What `ferry volume rm` adds on stderr when the volume's data is retained. */
export function retainedNotice(r: RemovedVolume): string {
  return `ferry: the data of ${r.name} is kept on ${r.node} until ${r.expiresAt} (reclaim=retain): ferry volume undelete ${r.name} brings it back`;
}

/** `ferry volume ls --removed [--json|-q]`: the text to print. */
export async function removedListing(api: string, o: { json?: boolean; quiet?: boolean }): Promise<string> {
  const { removed } = await apiCall<{ removed: RemovedVolume[] }>(api, 'GET', '/v1/removed');
  return o.json ? JSON.stringify(removed, null, 2) : o.quiet ? removed.map((r) => r.name).join('\n') : removed.length ? removedTable(removed) : '';
}

/** Adds reclaim's subcommands to `ferry volume`: `undelete NAME [--as NEW] [--id N]`. */
export function reclaimCommands(volume: Command, api: () => string): void {
  volume
    .command('undelete <name>')
    .description('bring back a volume removed with reclaim=retain, with its data (ferry volume ls --removed lists them)')
    .option('--as <new>', 'the name to bring it back as (when its old name is taken again)')
    .option('--id <n>', 'which removal of that name (default: the newest retained)')
    .option('--json', 'print the volume as JSON')
    .action(async (name: string, o: { as?: string; id?: string; json?: boolean }) => {
      const id = o.id === undefined ? undefined : Number(o.id);
      if (id !== undefined && (!Number.isInteger(id) || id < 1)) throw new FerryError('INVALID_OPTION', `--id must be a removal id from ferry volume ls --removed, got ${JSON.stringify(o.id)}`);
      const { volume } = await apiCall<{ volume: VolumeView }>(api(), 'POST', `/v1/removed/${encodeURIComponent(name)}/undelete`, {
        ...(o.as !== undefined ? { as: o.as } : {}),
        ...(id !== undefined ? { id } : {}),
      });
      console.log(o.json ? JSON.stringify(volume, null, 2) : volume.name);
    });
}
