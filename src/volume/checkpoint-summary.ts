/**
 * A checkpoint as a bank's manifest records it and `ferry backup ls` shows it. Here, below both the
 * bank (which writes it) and the wire (whose ListedCheckpoint adds the bank's name), so the two
 * share one record.
 */
export interface CheckpointSummary {
  /** Sortable by time: yyyymmddThhmmssZ-<8 hex>. */
  id: string;
  volume: string;
  /** ISO-8601 UTC */
  time: string;
  host: string;
  /** The source volume's backend, size limit and fs, as a restore's defaults. */
  backend: string;
  sizeBytes?: number;
  fs?: string;
  /** Bytes of file data in the tree (logical), files counted. */
  dataBytes: number;
  files: number;
  /** Bytes this checkpoint added to the bank (new chunks, sealed). */
  addedBytes: number;
  /** The checkpoint whose unchanged files this one reused, if any. */
  parent?: string;
  /** manual | schedule | drill */
  origin: string;
}
