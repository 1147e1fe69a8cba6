import type { CheckpointSummary } from '../bank/types';

/**
 * bank-policy: what scheduled backups and restore drills ask of the agent's Backups (bank-ops,
 * src/agent/backups.ts), as a type of its own so that the scheduler and the drills depend on these
 * calls only (and their tests can hand a small in-memory runner).
 */
export interface BackupRunner {
  /** Backs `volume` up to bank `o.bank` (primary host only); the checkpoint made. */
  create(volume: string, o: { bank: string; origin: 'manual' | 'schedule' | 'drill' }): Promise<CheckpointSummary>;
  /** Checkpoints of one bank and one volume, oldest first. */
  list(o: { bank?: string; volume?: string }): Promise<Array<CheckpointSummary & { bank: string }>>;
  /** Removes one checkpoint's manifest (its chunks go at the next gc). */
  remove(bank: string, volume: string, checkpoint: string): Promise<unknown>;
  /** Restores a checkpoint as new volume `o.as` on this host (VOLUME_EXISTS when the name is taken). */
  restore(bank: string, volume: string, checkpoint: string, o: { as: string }): Promise<unknown>;
}
