import type { CpuTimes } from './cpu';
import type { MoveFigures, MoveRun, SizeFigures } from './move-figures';
import type { RsyncRun } from './sshd';
import { markdownTable, renderGroups, type Row, type RowGroup } from './report';
import { fmtMs, fmtRatio } from './stats';

/** The move milestone's aims. */
export const MOVE_AIMS = {
  /** ferry's throughput at least this share of the local send | receive pipe's. */
  pipeRatio: 0.8,
  downtimeMs: 1000,
  /** Downtime is flat when the largest size's is at most this much above the smallest size's. */
  flatSpreadMs: 250,
  /** Bytes sent for a change at most this many times the change. */
  bytesRatio: 2,
} as const;

const MiB = 1024 * 1024;
const mibps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const fmtRate = (bytes: number, ms: number): string => `${mibps(bytes, ms).toFixed(0)} MiB/s`;
const fmtMiB = (bytes: number): string => `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 2 : 1)} MiB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const cpuMs = (c: CpuTimes | undefined): number => (c ? c.selfMs + c.childrenMs : 0);

/** Until on disk: a move's wall time and the sync after it. */
function durableMs(m: MoveRun): number {
  return (m.wallMs ?? m.moveMs) + (m.syncMs ?? 0);
}

/** ferry until on disk: the mean of the two whole-volume moves (rsync, ferry, ferry, rsync). */
function ferryDurableMs(s: SizeFigures): number {
  return (durableMs(s.full) + durableMs(s.full2)) / 2;
}

/** rsync until on disk: the mean of its runs before and after ferry's two. */
function rsyncDurableMs(s: SizeFigures): number {
  return (s.rsync.ms + s.rsync.syncMs + s.rsync2.ms + s.rsync2.syncMs) / 2;
}

/** ferry's throughput over the local pipe's, both until the data is on disk. */
export function pipeRatio(s: SizeFigures): number {
  return (s.pipe.ms + s.pipe.syncMs) / ferryDurableMs(s);
}

/** ferry's throughput over rsync's, both until on disk, each the mean of its two runs. */
export function rsyncRatio(s: SizeFigures): number {
  return rsyncDurableMs(s) / ferryDurableMs(s);
}

/** "3.2 s · 320 MiB/s, on disk 6.0 s · 171 MiB/s" */
function timeAndRate(bytes: number, ms: number, syncMs: number): string {
  return `${secs(ms)} · ${fmtRate(bytes, ms)}, on disk ${secs(ms + syncMs)} · ${fmtRate(bytes, ms + syncMs)}`;
}

/** What `ferry volume inspect` says when it disagrees with what the target received. */
function inspectNote(m: MoveRun): string {
  return Math.abs(m.bytesDone - m.bytesReceived) > 0.01 * m.bytesReceived + 4096 ? `; \`inspect\` says move.bytesDone = ${fmtMiB(m.bytesDone)}` : '';
}

function spread(values: number[]): number {
  return values.length ? Math.max(...values) - Math.min(...values) : 0;
}

/** The figures as tables: transfer, cut-over, bytes for a change. */
export function moveGroups(f: MoveFigures): RowGroup[] {
  const skipped = f.skipped.map(
    (label): Row => ({ figure: `Move ${label}`, ferry: 'skipped', aim: '—', otherwise: 'opt in with `--move-sizes 256M,1G,4G`' }),
  );
  const transfer: RowGroup = {
    title: 'Moving a whole volume h1 → h2: ferry beside `btrfs send | btrfs receive` and `rsync -a` over ssh',
    note:
      'Random (incompressible) data in 64 MiB files. ferry: wall time of `ferry volume move NAME --to h2` (its CLI polls every 250 ms, every 50 ms from the final increment on), ' +
      'throughput = volume bytes / wall time; “on disk” adds a `sync -f` of the target’s filesystem afterwards. Beside it the same bytes ' +
      `by \`btrfs send | btrfs receive\` between two pools on loop files on this disk (no network, cipher or checksum${f.pipeQuotas ? '; quotas on, as in ferry’s pools' : ''}) ` +
      'and by `rsync -a` over OpenSSH (aes128-gcm) from h1’s network namespace to h2’s, into h2’s pool. ' +
      (f.dropCaches
        ? 'Every run starts with the page cache dropped (`--drop-caches`), so all three read the data from disk. '
        : 'rsync reads the volume’s files; ferry and the pipe read a read-only snapshot taken for the purpose, whose pages btrfs caches apart from the volume’s, so from disk (`--drop-caches` drops the page cache before every run). ') +
      'Ratio and aim compare the times until on disk: ferry’s second pre-copy round snapshots the first, which writes the received data out within the move, ' +
      'while a bare pipe or rsync ends with most of it dirty in the page cache. This disk writes the first GiB or two after a quiet spell several times ' +
      'faster than the next ones and stays slow for minutes, so whichever ran first looked faster: two volumes are written first, then rsync, ferry, ferry, rsync ' +
      'run in that order (one volume each) and the ratio compares the means. The pipe runs last.',
    rows: [
      ...f.sizes.map((s): Row => {
        const r = pipeRatio(s);
        const vsRsync = rsyncRatio(s);
        const cliFailed = [s.full, s.full2].find((m) => m.cliError)?.cliError;
        return {
          figure: `Move ${s.label}`,
          ferry:
            `${fmtRatio(vsRsync)} rsync’s throughput, ${fmtRatio(r)} the pipe’s (until on disk); ` +
            [s.full, s.full2].map((m) => `${timeAndRate(s.bytes, m.wallMs ?? m.moveMs, m.syncMs ?? 0)} (move ${secs(m.moveMs)})`).join(' and ') +
            (cliFailed ? `; **the CLI failed** (“${cliFailed}”) while the move went on: timed until control recorded it done` : ''),
          aim: `≥ ${MOVE_AIMS.pipeRatio}× the pipe, ≥ 1× rsync`,
          met: r >= MOVE_AIMS.pipeRatio && vsRsync >= 1,
          otherwise: `rsync: ${[s.rsync, s.rsync2].map((x) => timeAndRate(s.bytes, x.ms, x.syncMs)).join(' and ')}; send | receive: ${timeAndRate(s.bytes, s.pipe.ms, s.pipe.syncMs)}`,
        };
      }),
      ...skipped,
      ...f.sizes.map(
        (s): Row => ({
          figure: `… bytes of the ${s.label} move`,
          ferry: `${fmtMiB(s.full.bytesReceived)} received (${s.full.precopyRounds.length} pre-copy rounds + final)${inspectNote(s.full)}`,
          aim: '—',
          otherwise: `rsync: ${fmtMiB(s.rsync.bytesSent)} sent`,
        }),
      ),
      ...f.sizes.map(
        (s): Row => ({
          figure: `… a move back of ${s.label} with nothing changed`,
          ferry: `${fmtMs(s.back.wallMs ?? s.back.moveMs)} (move ${fmtMs(s.back.moveMs)}, ${fmtMiB(s.back.bytesDone)} sent)`,
          aim: '—',
          otherwise: 'for scale: the fixed cost of a move (snapshots, ssh handshake, switch, promote, CLI)',
        }),
      ),
    ],
  };

  const cliDowntimes = f.sizes.map((s) => s.change.finalToDoneMs);
  const mountDowntimes = f.sizes.map((s) => s.mount.releaseToMountMs);
  const flatCli = spread(cliDowntimes) <= MOVE_AIMS.flatSpreadMs;
  const flatMount = spread(mountDowntimes) <= MOVE_AIMS.flatSpreadMs;
  const downtimeAim = `< ${fmtMs(MOVE_AIMS.downtimeMs)}, flat (spread ≤ ${MOVE_AIMS.flatSpreadMs} ms)`;
  const cutover: RowGroup = {
    title: 'Cut-over: how long the volume is unavailable, with 10 MiB changed',
    note:
      '`ferry volume move` rows: 10 MiB overwritten on h1 after a move to h2 and back (so both hosts share a snapshot), then a move to h2; ' +
      'the change travels in the pre-copy, and the window is control’s move-final → move-done (no Mount is granted anywhere meanwhile). ' +
      'Mount-driven rows: h2 holds the volume (a plugin Mount, as for a running container), h1 Mounts it (as dockerd does for a new container), ' +
      'which starts the move; once it waits for the release, 10 MiB are written on h2, then h2 Unmounts: the final increment carries the change. ' +
      'Timed from that Unmount to h1’s Mount answering (and to a first 4 KiB fsynced write there). No container start is included.',
    rows: [
      ...f.sizes.map(
        (s): Row => ({
          figure: `${s.label}, \`ferry volume move\`: move-final → move-done`,
          ferry: `${fmtMs(s.change.finalToDoneMs)} (whole move ${fmtMs(s.change.wallMs ?? s.change.moveMs)})`,
          aim: downtimeAim,
          met: s.change.finalToDoneMs < MOVE_AIMS.downtimeMs && flatCli,
          otherwise: `rsync -a of the same change, the container stopped meanwhile: ${fmtMs(s.rsyncChange.ms)}`,
        }),
      ),
      ...f.sizes.map(
        (s): Row => ({
          figure: `${s.label}, Mount-driven: source Unmount → target Mount answers`,
          ferry:
            `${fmtMs(s.mount.releaseToMountMs)} (first write ${fmtMs(s.mount.releaseToFirstWriteMs)}; ` +
            `release noticed after ${fmtMs(s.mount.releaseToFinalMs)}, final → done ${fmtMs(s.mount.finalToDoneMs)})`,
          aim: downtimeAim,
          met: s.mount.releaseToMountMs < MOVE_AIMS.downtimeMs && flatMount,
          otherwise: `Mount with no move: ${fmtMs(s.mount.localMountMs)} (first write ${fmtMs(s.mount.localFirstWriteMs)})`,
        }),
      ),
    ],
  };

  const change = f.changeBytes;
  const bytes: RowGroup = {
    title: 'Bytes on the wire for a 10 MiB change',
    note:
      'Bytes the target agent received for the move after the change (its “move done” log line: pre-copy rounds and final increment, ferry’s envelope included), ' +
      'beside `ferry volume inspect`’s move.bytesDone where that differs; rsync: “Total bytes sent” of `--stats`.',
    rows: [
      ...f.sizes.map(
        (s): Row => ({
          figure: `${s.label}, \`ferry volume move\` after the change`,
          ferry: `${fmtMiB(s.change.bytesReceived)} (${fmtRatio(s.change.bytesReceived / change)} the change)${inspectNote(s.change)}`,
          aim: `≤ ${MOVE_AIMS.bytesRatio}× the change`,
          met: s.change.bytesReceived <= MOVE_AIMS.bytesRatio * change,
          otherwise: `rsync -a: ${fmtMiB(s.rsyncChange.bytesSent)} sent in ${fmtMs(s.rsyncChange.ms)}`,
        }),
      ),
      ...f.sizes.map(
        (s): Row => ({
          figure: `${s.label}, Mount-driven (change in the final increment)`,
          ferry: `${fmtMiB(s.mount.bytesReceived)}: pre-copy ${s.mount.precopyRounds.map((r) => fmtMiB(r.bytes)).join(' + ') || '—'}, final ${fmtMiB(
            s.mount.bytesReceived - s.mount.precopyRounds.reduce((a, r) => a + r.bytes, 0),
          )}${inspectNote(s.mount)}`,
          aim: `≤ ${MOVE_AIMS.bytesRatio}× the change`,
          met: s.mount.bytesReceived <= MOVE_AIMS.bytesRatio * change,
          otherwise: '—',
        }),
      ),
    ],
  };
  return [transfer, cutover, bytes];
}

function cpuCell(c: CpuTimes | undefined): string {
  return c ? `${secs(c.selfMs)} + ${secs(c.childrenMs)}` : '—';
}

/**
 * Where a whole-volume move's time goes: CPU per process beside wall time, for both of ferry's moves
 * and both rsync runs (in the order they ran), and the local pipe.
 */
export function cpuTable(f: MoveFigures): string {
  const rows: string[][] = [];
  for (const s of f.sizes) {
    const moves: [string, MoveRun][] = [['1st', s.full], ['2nd', s.full2]];
    for (const [which, m] of moves) {
      const c = m.cpu ?? {};
      const wall = m.wallMs ?? m.moveMs;
      const agents = Object.entries(c).filter(([k]) => k.endsWith('agent'));
      const total = Object.values(c).reduce((a, x) => a + cpuMs(x), 0);
      // At this machine's single-core rates: the envelope's checksum on both sides (wrap, unwrap), AES-GCM on both (encrypt, decrypt).
      const mib = m.bytesReceived / MiB;
      const sum = (2 * mib) / f.crypto.crc32MiBps;
      const aes = (2 * mib) / f.crypto.aes128gcmMiBps;
      rows.push([
        `ferry move ${s.label} (${which})`,
        secs(wall),
        agents.map(([k, v]) => `${k} ${cpuCell(v)}`).join('; ') + `; control ${secs(cpuMs(c.control))}`,
        `${secs(total)} (${(total / wall).toFixed(2)} cores)`,
        `CRC-32 ≈ ${sum.toFixed(1)} s, AES-GCM ≈ ${aes.toFixed(1)} s of the agents’ own time`,
      ]);
    }
    const pipeCpu = cpuMs(s.pipe.cpu);
    rows.push([`send | receive ${s.label}`, secs(s.pipe.ms), `btrfs send + receive ${secs(pipeCpu)}`, `${secs(pipeCpu)} (${(pipeCpu / s.pipe.ms).toFixed(2)} cores)`, '—']);
    const runs: [string, RsyncRun][] = [['before', s.rsync], ['after', s.rsync2]];
    for (const [which, r] of runs) {
      const rs = cpuMs(r.senderCpu) + cpuMs(r.receiverCpu);
      rows.push([
        `rsync ${s.label} (${which})`,
        secs(r.ms),
        `sender (rsync + ssh) ${secs(cpuMs(r.senderCpu))}; receiver (sshd + rsync) ${secs(cpuMs(r.receiverCpu))}`,
        `${secs(rs)} (${(rs / r.ms).toFixed(2)} cores)`,
        '—',
      ]);
    }
  }
  return markdownTable(['Transfer', 'wall', 'CPU by process (agent: own + exited children, i.e. btrfs)', 'CPU total', 'crypto share (estimate)'], rows);
}

function phaseCell(m: MoveRun): string {
  const e = m.events;
  let at = e.requested;
  const rounds = m.precopyRounds.map((r, i) => {
    const cell = `round ${i + 1} ${fmtMs(r.endMs - at)} (${fmtMiB(r.bytes)})`;
    at = r.endMs;
    return cell;
  });
  return `requested → ${rounds.map((r) => `${r} → `).join('')}${e.releasing ? `releasing ${fmtMs(e.releasing - at)} → ` : ''}final ${fmtMs(e.final - (e.releasing ?? e.requested))} → switched ${fmtMs(
    e.switched - e.final,
  )} → done ${fmtMs(e.done - e.switched)}`;
}

/** The cut-over step by step, from control's events and the agents' command log. */
export function cutoverTable(f: MoveFigures): string {
  const rows = f.sizes.flatMap((s) => [
    [`${s.label} \`ferry volume move\`, whole volume`, phaseCell(s.full), '—'],
    [
      `${s.label} \`ferry volume move\` (10 MiB pre-copied)`,
      phaseCell(s.change),
      '—',
    ],
    [
      `${s.label} Mount-driven (10 MiB in the final)`,
      `release → final ${fmtMs(s.mount.releaseToFinalMs)} → switched ${fmtMs(s.mount.events.switched - s.mount.events.final)} → done ${fmtMs(
        s.mount.events.done - s.mount.events.switched,
      )} → Mount answers ${fmtMs(s.mount.doneToMountMs)}`,
      s.mount.cutoverCommands
        .slice(0, 6)
        .map((c) => `${c.host} ${c.command} ${fmtMs(c.totalMs)}${c.count > 1 ? ` (×${c.count})` : ''}`)
        .join('; ') || '—',
    ],
  ]);
  return markdownTable(['Move', 'Steps (control’s events)', 'Commands the agents ran between release and Mount (busy time)'], rows);
}

/** `ferry volume move` runs that failed while their move went on, one line (empty when none did). */
function cliFailures(f: MoveFigures): string {
  const failed = f.sizes.flatMap((s) =>
    (
      [
        ['whole-volume move', s.full],
        ['move back', s.back],
        ['move after the change', s.change],
      ] as const
    )
      .filter(([, m]) => m.cliError)
      .map(([what, m]) => `${s.label} ${what} (move ${m.id}): “${m.cliError}”`),
  );
  return failed.length ? `**\`ferry volume move\` failed while its move went on** (the move was then followed through the API): ${failed.join('; ')}.` : '';
}

/** Everything the move section prints. */
export function renderMoves(f: MoveFigures): string {
  return [
    renderGroups(moveGroups(f)),
    '',
    '#### Where a move’s time goes',
    '',
    `CPU seconds per process while each transfer ran (own + exited children). This machine, one core: CRC-32 ${f.crypto.crc32MiBps.toFixed(0)} MiB/s (the envelope's checksum, zlib), ` +
      `SHA-256 ${f.crypto.sha256MiBps.toFixed(0)} MiB/s (the envelope's format 1), ` +
      `AES-128-GCM ${f.crypto.aes128gcmMiBps.toFixed(0)} MiB/s (Node’s OpenSSL, which ssh2’s binding uses too).`,
    '',
    cpuTable(f),
    '',
    cutoverTable(f),
    '',
    cliFailures(f),
    f.skipped.length ? `Skipped: ${f.skipped.join(', ')} (opt in with \`--move-sizes 256M,1G,4G\`). ` : '',
    `The move section took ${secs(f.totalMs)}.`,
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n');
}
