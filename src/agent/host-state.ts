import { join } from 'node:path';
import type { ReconcileReport } from './reconciler';

/**
 * What the agent knows of its own host that control does not: which volumes' filesystems are mounted
 * under the mount root, and what reconciliation found at start (datasets missing, orphans). Shared
 * by the parts that mount, destroy, keep up and report; only this class changes it.
 */
export class HostState {
  /** Volumes whose filesystem is mounted under the mount root, by name. */
  private readonly mounted = new Map<string, string>();
  private orphanList: ReconcileReport['orphans'] = [];
  private missingList: string[] = [];

  constructor(private readonly mountRoot: string) {}

  /** Where `name` is (or would be) mounted. */
  mountpointOf(name: string): string {
    return join(this.mountRoot, name);
  }

  /** The mountpoint while mounted, else undefined. */
  mountedAt(name: string): string | undefined {
    return this.mounted.get(name);
  }

  markMounted(name: string): void {
    this.mounted.set(name, this.mountpointOf(name));
  }

  markUnmounted(name: string): void {
    this.mounted.delete(name);
  }

  /** Names of the volumes mounted here, sorted. */
  mountedNames(): string[] {
    return [...this.mounted.keys()].sort();
  }

  /** Records what reconciliation found. */
  setFindings(report: Pick<ReconcileReport, 'orphans' | 'missing'>): void {
    this.orphanList = report.orphans;
    this.missingList = report.missing;
  }

  /** Whether `name` is recorded here but its dataset was missing at start. */
  isMissing(name: string): boolean {
    return this.missingList.includes(name);
  }

  /** `name`'s dataset exists here again (a move brought it). */
  found(name: string): void {
    this.missingList = this.missingList.filter((n) => n !== name);
  }

  get orphans(): ReconcileReport['orphans'] {
    return this.orphanList;
  }

  get missing(): string[] {
    return this.missingList;
  }
}
