/**
 * Holes in sparse files (pure): a file that occupies fewer blocks than its size is read with its
 * 4 KiB-aligned all-zero blocks treated as holes, kept out of the data stream; restore writes only
 * the data runs and ftruncates to the size, so the holes stay holes.
 */

/** The granularity of holes: a block of this many zero bytes at an aligned offset is a hole. */
export const HOLE_BLOCK = 4096;

const ZEROS = Buffer.alloc(HOLE_BLOCK);

/** True when the file occupies fewer bytes on disk than its size (stat's blocks are 512 bytes). */
export function looksSparse(size: number, blocks: number): boolean {
  return blocks * 512 < size;
}

/**
 * The data runs of `buf`, read at file offset `at` (a multiple of HOLE_BLOCK): maximal stretches
 * that are not all-zero aligned blocks, as {at (in the file), start, end (in buf)}. A short last
 * block counts as a hole when it is all zero (the file's size brings its zeros back).
 */
export function dataRuns(buf: Buffer, at: number): Array<{ at: number; start: number; end: number }> {
  if (at % HOLE_BLOCK !== 0) throw new Error(`dataRuns: offset ${at} is not a multiple of ${HOLE_BLOCK}`);
  const runs: Array<{ at: number; start: number; end: number }> = [];
  let runStart = -1;
  for (let i = 0; i < buf.length; i += HOLE_BLOCK) {
    const end = Math.min(i + HOLE_BLOCK, buf.length);
    const zero = buf.subarray(i, end).equals(end - i === HOLE_BLOCK ? ZEROS : ZEROS.subarray(0, end - i));
    if (!zero && runStart < 0) runStart = i;
    if (zero && runStart >= 0) {
      runs.push({ at: at + runStart, start: runStart, end: i });
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push({ at: at + runStart, start: runStart, end: buf.length });
  return runs;
}
