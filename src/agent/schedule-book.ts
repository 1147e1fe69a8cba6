import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from '../log';
import { writeFileAtomic } from './atomic-file';
import type { SnapshotReport } from '../wire/control-client';
import type { PolicyRecord } from '../wire/records';

/** A volume this host runs a schedule for, as control last described it. */
export interface ScheduledVolume {
  volume: string;
  backend: string;
  policy: string;
}

interface BookFile {
  version: 1;
  /** When control last answered (wall time); null before it ever did. */
  heardAt: string | null;
  /** The policies control last listed, by name. */
  policies: Record<string, PolicyRecord>;
  /** The volumes primary here that name a policy, as control last listed them. */
  volumes: ScheduledVolume[];
  /** The last scheduled run of each volume, by volume: its policy and when. */
  lastRuns: Record<string, { policy: string; at: string }>;
  /** Snapshots taken while control was unreachable, to record once it answers. */
  pending: SnapshotReport[];
  // bank-policy (issue 8): absent in a book an older ferry wrote (read as empty).
  /** The last scheduled backup of each volume, by volume: its policy and when. */
  backupRuns: Record<string, { policy: string; at: string }>;
  /** The last restore drill of each volume, by volume: its policy and when. */
  drills: Record<string, { policy: string; at: string }>;
  /** Drill scratch volumes made and not yet known removed (removed at the next start after a crash). */
  scratch: string[];
}

const EMPTY: BookFile = { version: 1, heardAt: null, policies: {}, volumes: [], lastRuns: {}, pending: [], backupRuns: {}, drills: {}, scratch: [] };

/**
 * What the scheduler of this host knows, kept on local disk (`<dataDir>/schedules.json`, written
 * atomically) so that schedules go on from the last policies control gave while control is
 * unreachable, and across restarts: the policies, the volumes to snapshot, the last run of each
 * (for the one catch-up run after a restart), and snapshots still to record with control.
 */
export class ScheduleBook {
  private data: BookFile;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {
    this.data = this.read();
  }

  private read(): BookFile {
    if (!existsSync(this.file)) return structuredClone(EMPTY);
    try {
      const d = JSON.parse(readFileSync(this.file, 'utf8')) as BookFile;
      if (d.version !== 1 || !Array.isArray(d.volumes)) throw new Error(`unknown version ${String(d.version)}`);
      return { ...structuredClone(EMPTY), ...d };
    } catch (err) {
      // A file this version cannot read is set aside, never trusted: control's answer rebuilds it.
      this.log.warn({ err, file: this.file }, 'cannot read the schedule book; starting from control');
      return structuredClone(EMPTY);
    }
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.data, null, 1));
  }

  /** When control last answered, or null. */
  get heardAt(): string | null {
    return this.data.heardAt;
  }

  policy(name: string): PolicyRecord | undefined {
    return this.data.policies[name];
  }

  volumes(): readonly ScheduledVolume[] {
    return this.data.volumes;
  }

  /** Replaces what control said (policies and this host's volumes with one), at `at`. */
  heard(policies: readonly PolicyRecord[], volumes: readonly ScheduledVolume[], at: Date): void {
    this.data.policies = Object.fromEntries(policies.map((p) => [p.name, p]));
    this.data.volumes = [...volumes];
    this.data.heardAt = at.toISOString();
    // Last runs of volumes no longer scheduled here go: a volume back later starts afresh.
    for (const runs of [this.data.lastRuns, this.data.backupRuns, this.data.drills]) {
      for (const v of Object.keys(runs)) if (!volumes.some((s) => s.volume === v)) delete runs[v];
    }
    this.save();
  }

  /** The last run of `volume` under `policy`, if any (a run under another policy does not count). */
  lastRun(volume: string, policy: string): Date | undefined {
    const r = this.data.lastRuns[volume];
    return r && r.policy === policy ? new Date(r.at) : undefined;
  }

  ran(volume: string, policy: string, at: Date): void {
    this.data.lastRuns[volume] = { policy, at: at.toISOString() };
    this.save();
  }

  // --- bank-policy (issue 8): scheduled backups and restore drills ---

  /** The last scheduled backup of `volume` under `policy`, if any. */
  lastBackup(volume: string, policy: string): Date | undefined {
    const r = this.data.backupRuns[volume];
    return r && r.policy === policy ? new Date(r.at) : undefined;
  }

  backedUp(volume: string, policy: string, at: Date): void {
    this.data.backupRuns[volume] = { policy, at: at.toISOString() };
    this.save();
  }

  /** The last restore drill of `volume` under `policy` (passed or failed), if any. */
  lastDrill(volume: string, policy: string): Date | undefined {
    const r = this.data.drills[volume];
    return r && r.policy === policy ? new Date(r.at) : undefined;
  }

  drilled(volume: string, policy: string, at: Date): void {
    this.data.drills[volume] = { policy, at: at.toISOString() };
    this.save();
  }

  /** Drill scratch volumes not yet known removed. */
  scratchVolumes(): readonly string[] {
    return this.data.scratch;
  }

  /** Written BEFORE the scratch volume is made: a crash then leaves a name to remove, never an unknown volume. */
  addScratch(name: string): void {
    this.data.scratch.push(name);
    this.save();
  }

  dropScratch(name: string): void {
    this.data.scratch = this.data.scratch.filter((n) => n !== name);
    this.save();
  }

  pending(): readonly SnapshotReport[] {
    return this.data.pending;
  }

  addPending(r: SnapshotReport): void {
    this.data.pending.push(r);
    this.save();
  }

  /** Drops pending records that control now has (or that no longer apply). */
  dropPending(done: readonly SnapshotReport[]): void {
    this.data.pending = this.data.pending.filter((p) => !done.includes(p));
    this.save();
  }
}
