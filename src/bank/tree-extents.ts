/**
 * Extent assignment for the tree archive (pure): the data of every file read by a backup goes
 * through ONE chunker, in walk order. Each stretch of a file's bytes that enters the stream is a
 * Piece; when the chunker cuts a chunk of N bytes, the first N pending bytes are the chunk's, and
 * each file they came from gets an extent (chunk, offset in chunk, length, at = offset in file).
 */

/** `length` bytes of file number `file`, starting at byte `at` of that file, entered the stream. */
export interface Piece {
  file: number;
  at: number;
  length: number;
}

/** Where a chunk (by its number in cut order) holds some of a file's bytes. */
export interface PlacedExtent {
  file: number;
  chunk: number;
  offset: number;
  length: number;
  at: number;
}

/**
 * Takes the first `chunkLength` bytes of `pending` as chunk number `chunk`: the extents they make
 * (contiguous pieces of one file merged) and the pieces left. Throws when fewer bytes are pending
 * than the chunk holds (the chunker cut bytes that never entered it: a bug, never data).
 */
export function takeChunk(pending: readonly Piece[], chunkLength: number, chunk: number): { extents: PlacedExtent[]; rest: Piece[] } {
  const extents: PlacedExtent[] = [];
  let need = chunkLength;
  let offset = 0;
  let i = 0;
  let head: Piece | undefined;
  while (need > 0) {
    const p = pending[i];
    if (!p) throw new Error(`chunk ${chunk} holds ${chunkLength} bytes but only ${chunkLength - need} were pending`);
    const take = Math.min(need, p.length);
    const last = extents[extents.length - 1];
    // One file's bytes that follow each other in the file and in the chunk are one extent.
    if (last && last.file === p.file && last.at + last.length === p.at) last.length += take;
    else extents.push({ file: p.file, chunk, offset, length: take, at: p.at });
    offset += take;
    need -= take;
    if (take < p.length) head = { file: p.file, at: p.at + take, length: p.length - take };
    i++;
  }
  const rest = pending.slice(i);
  if (head) rest.unshift(head);
  return { extents, rest };
}

/** The pending pieces of a backup's stream, fed as bytes enter the chunker and cut as chunks leave it. */
export class ExtentLedger {
  private pending: Piece[] = [];
  private chunks = 0;

  /** Bytes of `file` at `at` entered the stream (merged with the previous piece when they follow it). */
  add(piece: Piece): void {
    if (piece.length === 0) return;
    const last = this.pending[this.pending.length - 1];
    if (last && last.file === piece.file && last.at + last.length === piece.at) last.length += piece.length;
    else this.pending.push({ ...piece });
  }

  /** The chunker cut the next chunk, of `length` bytes: its number and the extents it holds. */
  cut(length: number): { chunk: number; extents: PlacedExtent[] } {
    const chunk = this.chunks++;
    const { extents, rest } = takeChunk(this.pending, length, chunk);
    this.pending = rest;
    return { chunk, extents };
  }

  /** Bytes that entered the stream and are in no chunk yet. */
  pendingBytes(): number {
    return this.pending.reduce((n, p) => n + p.length, 0);
  }
}
