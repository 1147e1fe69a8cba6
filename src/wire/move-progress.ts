import { formatSize } from '../volume/size';
import type { MoveRecord } from './records';

/** Progress as people read it: "41%, 1.2 GiB of 3.0 GiB". */
export function describeProgress(m: Pick<MoveRecord, 'bytesDone' | 'bytesTotal'>): string {
  if (!m.bytesTotal) return `${formatSize(m.bytesDone)} sent`;
  const pct = Math.min(99, Math.floor((100 * m.bytesDone) / m.bytesTotal));
  return `${pct}%, ${formatSize(m.bytesDone)} of ${formatSize(m.bytesTotal)}`;
}
