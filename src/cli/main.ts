import { Command, CommanderError, Option } from 'commander';
import type { Config, ConfigInput } from '../config/config';
import type { Logger } from '../log';
import { DEFAULT_API_SOCKET } from '../config/defaults';
import { BACKEND_KINDS, type BackendKind } from '../agent/backends/registry';
import { CREATE_OPTIONS } from '../volume/options';
import { FerryError, toFerryError, type ErrorKind } from '../errors';
import type { AgentStatus, MoveRecord, MoveState, NodeRecord, RemovedVolume, VolumeView } from '../wire/records';
import { apiCall } from './client';
import { doctorText, runDoctor } from './doctor';
import { nodeTable, statusText, volumeTable } from './format';
import { Progress } from './progress';
import { registerFailoverCommands } from './failover-commands';
import { policyCommands } from './policy-commands';
import { registerSnapshotCommands } from './snapshot-commands';
import { reclaimCommands, removedListing, retainedNotice } from './reclaim-commands';
import { bankCommands } from './bank-commands';
import { backupCommands } from './backup-commands';

/**
 * The one translator from FerryError to an exit code (README: exit codes). 0 is success; 2 is also
 * what a usage error (unknown command or flag, missing argument) exits with; `ferry doctor` exits 1
 * when a check fails.
 */
export const EXIT_CODES: Record<ErrorKind, number> = { internal: 1, invalid: 2, not_found: 3, conflict: 4, unavailable: 5, unauthorized: 6 };
/** What `ferry doctor` exits with when one of its checks fails. */
export const DOCTOR_FAILED_EXIT = 1;

function parseOpt(value: string, prev: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new FerryError('INVALID_OPTION', `option ${JSON.stringify(value)} must look like KEY=VALUE, e.g. size=10G`);
  return { ...prev, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/**
 * The config the server commands and doctor run with. Loaded here, not at the top: its schema (zod)
 * costs about 100 ms of a command's start, and the client commands read no config.
 */
async function configFrom(flags: Record<string, string | undefined>): Promise<Config> {
  const { loadConfig } = await import('../config/config');
  const overrides: ConfigInput = {
    dataDir: flags.dataDir,
    nodeName: flags.nodeName,
    pluginSocket: flags.pluginSocket,
    apiSocket: flags.apiSocket,
    logLevel: flags.logLevel as ConfigInput['logLevel'],
    ...(flags.backend ? { defaults: { backend: flags.backend as BackendKind } } : {}),
    control: { url: flags.control, listen: flags.listen, tokenFile: flags.tokenFile },
    transfer: { listen: flags.transferListen, advertise: flags.advertise },
    web: { listen: flags.webListen },
  };
  return loadConfig({ file: flags.config, overrides });
}

/** The log of a server command; pino, like the config's schema, loads only when one runs. */
async function serverLogger(config: Config): Promise<Logger> {
  const { createLogger } = await import('../log');
  return createLogger(config.logLevel);
}

async function control(flags: Record<string, string | undefined>): Promise<void> {
  const config = await configFrom(flags);
  const log = await serverLogger(config);
  const { startControl } = await import('../control/service');
  const svc = await startControl(config, log);
  const shutdown = (): void => void svc.stop().then(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

async function serve(flags: Record<string, string | undefined>): Promise<void> {
  const config = await configFrom(flags);
  const log = await serverLogger(config);
  // Loaded here, not at the top: the CLI's other commands do not need the server and its modules.
  const { startFerry } = await import('../serve');
  const ferry = await startFerry(config, log);
  const shutdown = (signal: string): void => {
    log.info({ signal }, 'stopping; mounted volumes stay mounted for their containers');
    // Nothing that stop() waits for may keep ferry from ending: state is safe at every step.
    setTimeout(() => {
      log.warn('stop took longer than 10 s; exiting anyway');
      log.flush();
      process.exit(0);
    }, 10_000).unref();
    void ferry.stop().then(() => {
      log.flush();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  await ferry.ready.catch(() => undefined);
}

/** Entry point of the `ferry` command. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('ferry')
    .description('Docker volumes that follow their containers from host to host')
    .option('--api-socket <path>', 'socket of the local ferry API', DEFAULT_API_SOCKET)
    .showHelpAfterError()
    // Usage errors exit 2 (as FerryError's `invalid`), not commander's 1; help and version exit 0.
    .exitOverride();
  const api = (): string => program.opts<{ apiSocket: string }>().apiSocket;

  const withAgentFlags = (c: Command): Command =>
    c
      .option('-c, --config <file>', 'JSON config file')
      .option('--data-dir <dir>', 'where ferry keeps state, pools and mounts (default /var/lib/ferry)')
      .option('--node-name <name>', "this host's name (default: hostname)")
      .option('--plugin-socket <path>', 'Docker plugin socket (default /run/docker/plugins/ferry.sock)')
      .addOption(new Option('--backend <kind>', 'default backend').choices(BACKEND_KINDS))
      .addOption(new Option('--log-level <level>').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']))
      .option('--web-listen <host:port|off>', 'where /metrics and the dashboard listen (default 127.0.0.1:7402)');
  withAgentFlags(program.command('serve').description('run control + agent on this host (the single-host plugin)')).action(
    async (flags: Record<string, string | undefined>) => {
      await serve({ ...flags, apiSocket: program.getOptionValueSource('apiSocket') === 'default' ? undefined : api() });
    },
  );
  withAgentFlags(
    program
      .command('agent')
      .description('run the dataset agent of one host of a cluster')
      .requiredOption('--control <url>', 'URL of ferry control, e.g. http://10.0.0.1:7400')
      .option('--token-file <file>', 'file holding the cluster token')
      .option('--transfer-listen <host:port>', 'where this host serves dataset streams (default 0.0.0.0:7401)')
      .option('--advertise <ip:port>', 'the transfer address other hosts use (default: the listen address)'),
  ).action(async (flags: Record<string, string | undefined>) => {
    await serve({ ...flags, apiSocket: program.getOptionValueSource('apiSocket') === 'default' ? undefined : api() });
  });
  program
    .command('control')
    .description("run the cluster's control service (SQLite state, REST API over TCP)")
    .option('-c, --config <file>', 'JSON config file')
    .option('--data-dir <dir>', 'where control keeps its database (default /var/lib/ferry)')
    .option('--listen <host:port>', 'address of the REST API (default 0.0.0.0:7400)')
    .option('--token-file <file>', 'file holding the cluster token')
    .addOption(new Option('--log-level <level>').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']))
    .action(async (flags: Record<string, string | undefined>) => control(flags));
  program
    .command('node')
    .description('hosts of the cluster')
    .command('ls')
    .option('--json', 'print JSON (an array of hosts; README: JSON shapes)')
    .option('-q, --quiet', 'print names only')
    .action(async (o: { json?: boolean; quiet?: boolean }) => {
      const { nodes } = await apiCall<{ nodes: NodeRecord[] }>(api(), 'GET', '/v1/nodes');
      print(o.json ? JSON.stringify(nodes, null, 2) : o.quiet ? nodes.map((n) => n.name).join('\n') : nodeTable(nodes));
    });

  const volume = program.command('volume').description('manage volumes');
  registerFailoverCommands(volume, api); // fence
  volume
    .command('move <name>')
    .description('move a volume to another host (pre-copy, then a short cut-over)')
    .requiredOption('--to <host>', 'the host to move it to')
    .option('--no-wait', 'return once the move has started')
    .option('--restart-containers', 'stop the containers using it on its host and start them again on the target')
    .action(async (name: string, o: { to: string; wait: boolean; restartContainers?: boolean }) => {
      const { move } = await apiCall<{ move: MoveRecord }>(api(), 'POST', `/v1/volumes/${encodeURIComponent(name)}/move`, {
        to: o.to,
        restartContainers: !!o.restartContainers,
      });
      if (!o.wait) {
        console.log(`move ${move.id} of ${name} to ${o.to} started`);
        return;
      }
      await followMove(api(), name, move.id);
    });
  volume
    .command('ls')
    .description('list volumes')
    .option('--json', 'print JSON (an array of volumes; README: JSON shapes)')
    .option('-q, --quiet', 'print names only')
    .option('--removed', 'list removed volumes whose data is retained (reclaim=retain) instead')
    .action(async (o: { json?: boolean; quiet?: boolean; removed?: boolean }) => {
      if (o.removed) return print(await removedListing(api(), o));
      const { volumes } = await apiCall<{ volumes: VolumeView[] }>(api(), 'GET', '/v1/volumes');
      print(o.json ? JSON.stringify(volumes, null, 2) : o.quiet ? volumes.map((v) => v.name).join('\n') : volumeTable(volumes));
    });
  volume
    .command('create <name>')
    .description('create a volume')
    .option('-o, --opt <key=value>', `option: ${CREATE_OPTIONS.join(', ')} (repeatable)`, parseOpt, {})
    .action(async (name: string, o: { opt: Record<string, string> }) => {
      await apiCall(api(), 'POST', '/v1/volumes', { name, options: o.opt });
      console.log(name);
    });
  volume
    .command('inspect <name>')
    .description('show a volume with its mounts and recent events (JSON)')
    .option('--json', 'print JSON (the default; accepted like on every other listing)')
    .action(async (name: string) => {
      console.log(JSON.stringify(await apiCall(api(), 'GET', `/v1/volumes/${encodeURIComponent(name)}`), null, 2));
    });
  volume
    .command('rm <name>')
    .description('remove a volume from every host and destroy its data, or keep it for a while with reclaim=retain (refused while mounted anywhere)')
    .action(async (name: string) => {
      const r = await apiCall<{ pending: { node: string; up: boolean }[]; retained?: RemovedVolume | null }>(api(), 'DELETE', `/v1/volumes/${encodeURIComponent(name)}`);
      console.log(name);
      if (r.retained) process.stderr.write(`${retainedNotice(r.retained)}\n`);
      if (r.pending.length) {
        const hosts = r.pending.map((p) => (p.up ? p.node : `${p.node} (down)`)).join(', ');
        process.stderr.write(`ferry: the copies on ${hosts} are destroyed when those hosts next hear from control; ferry volume inspect ${name} shows what is left\n`);
      }
    });
  policyCommands(program, volume, api);
  registerSnapshotCommands(program, volume, api); // snap (issue 7 item 1)
  reclaimCommands(volume, api);
  bankCommands(program, api); // bank-ops (issue 8)
  backupCommands(program, api);
  program
    .command('status')
    .description("this host's backends, pools, volumes and anything that needs attention")
    .option('--json', 'print JSON (README: JSON shapes)')
    .action(async (o: { json?: boolean }) => {
      const s = await apiCall<AgentStatus>(api(), 'GET', '/v1/status');
      console.log(o.json ? JSON.stringify(s, null, 2) : statusText(s));
    });

  withAgentFlags(
    program
      .command('doctor')
      .description('check this host: tools, dockerd and the plugin, pools, control, peers, clocks, stale mounts; says what to run for each problem')
      .option('--json', 'print JSON (README: JSON shapes)'),
  ).action(async (flags: Record<string, string | undefined> & { json?: boolean }) => {
    const report = await runDoctor(api(), await configFrom(flags));
    print(flags.json ? JSON.stringify(report, null, 2) : doctorText(report));
    // Exit 0 only when every check passed: scripts and monitoring run ferry doctor as a probe.
    if (!report.ok) process.exitCode = DOCTOR_FAILED_EXIT;
  });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed the usage error (or the help).
      process.exit(err.exitCode === 0 ? 0 : EXIT_CODES.invalid);
    }
    const e = toFerryError(err);
    process.stderr.write(`ferry: ${e.message}\n`);
    process.exit(EXIT_CODES[e.kind]);
  }
}

/** Prints a result on stdout; nothing at all for an empty one (`ls -q` of nothing prints no blank line). */
function print(text: string): void {
  if (text) console.log(text);
}

/**
 * How long the CLI waits before it asks again about a move in `state` (pure): 250 ms while the bytes
 * travel and while the source's containers stop (releasing can take as long as they do), 50 ms from
 * the final increment on, which ends within a second, so that the command returns about when the
 * move does (at 250 ms it lost 125 ms on average after the end, 250 at worst).
 */
export function movePollMs(state: MoveState): number {
  return state === 'final' || state === 'switched' ? 50 : 250;
}

/** Shows a move's progress (a bar on a terminal, plain lines otherwise) until it ends; throws when it failed. */
async function followMove(socket: string, name: string, id: number): Promise<void> {
  let progress: Progress | undefined;
  for (;;) {
    const { move } = await apiCall<{ move: MoveRecord | null }>(socket, 'GET', `/v1/volumes/${encodeURIComponent(name)}/move`);
    if (!move || move.id !== id) {
      progress?.stop();
      throw new FerryError('MOVE_CONFLICT', `move ${id} of ${name} is no longer recorded`);
    }
    progress ??= new Progress(`${name}: ${move.source} -> ${move.target}`);
    progress.update({ done: move.bytesDone, total: move.bytesTotal, step: move.state });
    if (move.state === 'done') {
      progress.stop();
      console.log(`${name} is now on ${move.target}`);
      return;
    }
    if (move.state === 'failed') {
      progress.stop();
      throw new FerryError('MOVE_CONFLICT', `move of ${name} to ${move.target} failed: ${move.error}; ${name} stays on ${move.source}`);
    }
    await new Promise((r) => setTimeout(r, movePollMs(move.state)));
  }
}
