import type { PhaseProfile } from './ferry-log';
import type { Memory } from './proc';
import { markdownTable, type RowGroup } from './report';
import { CASE_NAMES, CASES, type SingleHostFigures } from './single-host';
import { fmtMs, fmtP50Mean, fmtRatio, fmtSummary, type Summary } from './stats';
import type { Pair, VersusLocalFigures } from './versus-local';

/** The single-host milestone's aims, in milliseconds and bytes. */
export const AIMS = {
  getP99Ms: 1,
  listP99Ms: 20,
  btrfsCreateP99Ms: 50,
  rssBytes: 100e6,
  endToEndRatio: 1.5,
} as const;

export interface MemoryFigures {
  ferry: Memory;
  /** Right after start, before any volume. */
  ferryIdle: Memory;
  /** dockerd's, for scale: the `local` driver lives inside it. */
  dockerd?: Memory;
}

const n = (x: number): string => x.toLocaleString('en-US');
const mb = (kib: number): string => `${((kib * 1024) / 1e6).toFixed(1)} MB`;

function ratios(p: Pair): { p50: number; mean: number } {
  return { p50: p.ferry.p50 / p.local.p50, mean: p.ferry.mean / p.local.mean };
}

function endToEndRow(figure: string, p: Pair): RowGroup['rows'][number] {
  const r = ratios(p);
  return {
    figure,
    ferry: `${fmtP50Mean(p.ferry)} (${fmtRatio(r.p50)} / ${fmtRatio(r.mean)} of local)`,
    aim: `≤ ${AIMS.endToEndRatio}× local`,
    met: r.p50 <= AIMS.endToEndRatio && r.mean <= AIMS.endToEndRatio,
    otherwise: `\`local\`: ${fmtP50Mean(p.local)}`,
  };
}

/** The figures as tables: the plugin socket on its own, then ferry beside `local` through dockerd. */
export function singleHostGroups(s: SingleHostFigures, v: VersusLocalFigures, mem: MemoryFigures): RowGroup[] {
  const c = s.counts;
  const vc = v.counts;
  const localCreate = `\`local\` (a directory, no size limit), Engine API create (N=${n(vc.localVolumes)}): ${fmtSummary(v.apiCreateLocal, true)}`;
  const plugin: RowGroup = {
    title: 'ferry on its own: the plugin socket, as dockerd calls it',
    note:
      'One request at a time over one keep-alive connection (dockerd keeps one HTTP client per plugin, whose connections are kept alive). ' +
      `Latency measured by the client, from request to parsed answer. ${n(c.btrfsVolumes)} btrfs volumes exist while Get and List are timed.`,
    rows: [
      {
        figure: `Create, btrfs 64M (N=${n(c.btrfsVolumes)})`,
        ferry: fmtSummary(s.create.btrfs, true),
        aim: `p99 < ${AIMS.btrfsCreateP99Ms} ms`,
        met: s.create.btrfs.p99 < AIMS.btrfsCreateP99Ms,
        otherwise: localCreate,
      },
      ...CASE_NAMES.filter((k) => k !== 'btrfs').map((k) => ({
        figure: `Create, ${CASES[k].label} (N=${n(s.create[k].n)})`,
        ferry: fmtSummary(s.create[k], true),
        aim: '—',
        otherwise:
          k === 'directory'
            ? '`local`: same kind of volume, see above'
            : `\`local\` cannot cap a size: by hand, truncate + mkfs.${CASES[k].opts.fs} + \`docker volume create -o type=${CASES[k].opts.fs} -o o=loop -o device=IMG\``,
      })),
      {
        figure: `Get, random names (N=${n(c.gets)})`,
        ferry: fmtSummary(s.get, true),
        aim: `p99 < ${AIMS.getP99Ms} ms`,
        met: s.get.p99 < AIMS.getP99Ms,
        otherwise: '`local`: in dockerd’s memory, no socket hop (see Engine API inspect below)',
      },
      {
        figure: `… Capabilities, timed between those Gets (N=${n(s.capabilities.n)})`,
        ferry: fmtSummary(s.capabilities, true),
        aim: '—',
        otherwise: 'for scale: ferry’s HTTP, express, route wrapper and logging, with no volume work',
      },
      {
        figure: `… a bare Node HTTP server, timed between those Gets (N=${n(s.bareNodeHttp.n)})`,
        ferry: fmtSummary(s.bareNodeHttp, true),
        aim: '—',
        otherwise: 'for scale: the floor of Node HTTP over a Unix socket on this machine, at that moment',
      },
      {
        figure: `Get, a new connection per request (N=${n(c.freshGets)})`,
        ferry: fmtSummary(s.getFreshConnection, true),
        aim: '—',
        otherwise: 'for scale: what a client without keep-alive pays',
      },
      {
        figure: `List of ${n(s.listedVolumes)} volumes (N=${n(c.lists)})`,
        ferry: fmtSummary(s.list, true),
        aim: `p99 < ${AIMS.listP99Ms} ms`,
        met: s.list.p99 < AIMS.listP99Ms,
        otherwise: `\`local\`, Engine API list of ${n(v.apiList.listed.local)}: ${fmtSummary(v.apiList.local)}`,
      },
      ...CASE_NAMES.map((k) => ({
        figure: `Mount + Unmount, ${CASES[k].label} (N=${n(s.mountRoundTrip[k].n)})`,
        ferry: `${fmtSummary(s.mountRoundTrip[k])} (Mount p50 ${fmtMs(s.mount[k].p50)}, Unmount p50 ${fmtMs(s.unmount[k].p50)})`,
        aim: '—',
        otherwise: k.startsWith('loop') ? 'by hand: mount -o loop IMG DIR; umount DIR' : '`local`: nothing to mount, dockerd binds the directory',
      })),
      ...CASE_NAMES.map((k) => ({
        figure: `Remove, ${CASES[k].label} (N=${n(s.remove[k].n)})`,
        ferry: fmtSummary(s.remove[k], true),
        aim: '—',
        otherwise: k.startsWith('loop') ? 'by hand: rm IMG' : '`local`: rm -rf of the directory, inside dockerd',
      })),
      {
        figure: 'Agent memory after all of the above',
        ferry:
          `VmRSS ${mb(mem.ferry.rssKiB)} · VmHWM ${mb(mem.ferry.hwmKiB)} (anonymous ${mb(mem.ferry.anonKiB)}, mapped files ${mb(mem.ferry.fileKiB)}); ` +
          `idle after start: VmRSS ${mb(mem.ferryIdle.rssKiB)}`,
        aim: `VmHWM < ${AIMS.rssBytes / 1e6} MB`,
        met: mem.ferry.hwmKiB * 1024 < AIMS.rssBytes,
        otherwise: mem.dockerd ? `\`local\` lives inside dockerd (dockerd now: VmRSS ${mb(mem.dockerd.rssKiB)})` : '`local` lives inside dockerd',
      },
    ],
  };
  const viaDockerd: RowGroup = {
    title: 'ferry beside Docker’s `local` driver, through the real dockerd',
    note:
      'Engine API rows: one keep-alive connection to /var/run/docker.sock, no CLI start-up. CLI rows: wall time of each `docker` command, as a user at a shell sees it; ' +
      'ferry and local alternate, each going first half of the time. Ratios are ferry/local of p50 and of the mean.',
    rows: [
      {
        figure: `Engine API volume list, ${n(v.apiList.listed.ferry)} vs ${n(v.apiList.listed.local)} volumes (N=${vc.apiLists})`,
        ferry: `${fmtSummary(v.apiList.ferry)} (${fmtRatio(ratios(v.apiList).p50)} of local)`,
        aim: '—',
        otherwise: `\`local\`: ${fmtSummary(v.apiList.local)}`,
      },
      {
        figure: `Engine API volume inspect (N=${vc.apiGets})`,
        ferry: `${fmtSummary(v.apiGet.ferry)} (${fmtRatio(ratios(v.apiGet).p50)} of local)`,
        aim: '—',
        otherwise: `\`local\`: ${fmtSummary(v.apiGet.local)}`,
      },
      endToEndRow(`\`docker volume create\` (ferry: -o size=64M) (N=${vc.cliCreates})`, v.cliCreate),
      endToEndRow(`\`docker run --rm -v VOL:/data busybox true\`, existing volume (N=${vc.cliRuns})`, v.cliRun),
    ],
  };
  return [plugin, viaDockerd];
}

/** ferry's memory after start and after each phase, one line. */
export function memoryTraceLine(s: SingleHostFigures, mem: MemoryFigures): string {
  const steps = [`start ${mb(mem.ferryIdle.rssKiB)}`, ...s.memoryTrace.map((t) => `${t.after} ${mb(t.memory.rssKiB)}`)];
  return `ferry’s VmRSS after each phase: ${steps.join(' → ')}; at the end ${mb(mem.ferry.rssKiB)} (anonymous ${mb(mem.ferry.anonKiB)}).`;
}

/** Where ferry's time goes per phase: client latency, server-side time, spawned commands. */
export function profileTable(profiles: readonly PhaseProfile[], client: ReadonlyMap<string, Summary>): string {
  const rows = profiles.map((p) => {
    const cl = client.get(p.label);
    const top = p.commands
      .slice(0, 4)
      .map((c) => `${c.command} ${fmtMs(c.meanMs)}${c.count !== p.samples ? ` ×${(c.count / Math.max(1, p.samples)).toFixed(1)}` : ''}`)
      .join(', ');
    const bg = p.background.map((b) => `${b.command} ×${b.count} (${fmtMs(b.meanMs)})`).join(', ');
    return [
      p.label,
      cl ? fmtMs(cl.mean) : '—',
      cl ? fmtMs(cl.p99) : '—',
      fmtMs(p.serverMsPerSample),
      fmtMs(p.serverMs.p99),
      p.commandsPerSample.toFixed(1),
      fmtMs(p.commandMsPerSample),
      top || '—',
      bg || '—',
    ];
  });
  return markdownTable(
    ['Phase (per sample)', 'client mean', 'client p99', 'server mean', 'server p99 (per request)', 'commands', 'time in commands', 'commands (mean each, × per sample)', 'other commands meanwhile'],
    rows,
  );
}
