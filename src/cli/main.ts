import { Command, Option } from 'commander';
import type { AgentStatus } from '../agent/agent';
import { loadConfig, DEFAULT_API_SOCKET, type ConfigInput } from '../config/config';
import type { VolumeView } from '../control/control';
import { FerryError, toFerryError, type ErrorKind } from '../errors';
import { createLogger } from '../log';
import { startFerry } from '../serve';
import { apiCall } from './client';
import { statusText, volumeTable } from './format';

/** The one translator from FerryError to an exit code. */
const EXIT_CODES: Record<ErrorKind, number> = { internal: 1, invalid: 2, not_found: 3, conflict: 4, unavailable: 5 };

function parseOpt(value: string, prev: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new FerryError('INVALID_OPTION', `option ${JSON.stringify(value)} must look like KEY=VALUE, e.g. size=10G`);
  return { ...prev, [value.slice(0, eq)]: value.slice(eq + 1) };
}

async function serve(flags: Record<string, string | undefined>): Promise<void> {
  const overrides: ConfigInput = {
    dataDir: flags.dataDir,
    nodeName: flags.nodeName,
    pluginSocket: flags.pluginSocket,
    apiSocket: flags.apiSocket,
    logLevel: flags.logLevel as ConfigInput['logLevel'],
    ...(flags.backend ? { defaults: { backend: flags.backend as 'btrfs' } } : {}),
  };
  const config = loadConfig({ file: flags.config, overrides });
  const log = createLogger(config.logLevel);
  const ferry = await startFerry(config, log);
  const shutdown = (signal: string): void => {
    log.info({ signal }, 'stopping; mounted volumes stay mounted for their containers');
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
    .showHelpAfterError();
  const api = (): string => program.opts<{ apiSocket: string }>().apiSocket;

  program
    .command('serve')
    .description('run control + agent on this host (the single-host plugin)')
    .option('-c, --config <file>', 'JSON config file')
    .option('--data-dir <dir>', 'where ferry keeps state, pools and mounts (default /var/lib/ferry)')
    .option('--node-name <name>', "this host's name (default: hostname)")
    .option('--plugin-socket <path>', 'Docker plugin socket (default /run/docker/plugins/ferry.sock)')
    .addOption(new Option('--backend <kind>', 'default backend').choices(['btrfs', 'loop', 'directory']))
    .addOption(new Option('--log-level <level>').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']))
    .action(async (flags: Record<string, string | undefined>) => {
      await serve({ ...flags, apiSocket: program.getOptionValueSource('apiSocket') === 'default' ? undefined : api() });
    });

  const volume = program.command('volume').description('manage volumes');
  volume
    .command('ls')
    .description('list volumes')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { volumes } = await apiCall<{ volumes: VolumeView[] }>(api(), 'GET', '/v1/volumes');
      console.log(o.json ? JSON.stringify(volumes, null, 2) : volumeTable(volumes));
    });
  volume
    .command('create <name>')
    .description('create a volume')
    .option('-o, --opt <key=value>', 'option: size, backend, fs, profile (repeatable)', parseOpt, {})
    .action(async (name: string, o: { opt: Record<string, string> }) => {
      await apiCall(api(), 'POST', '/v1/volumes', { name, options: o.opt });
      console.log(name);
    });
  volume
    .command('inspect <name>')
    .description('show a volume with its mounts and recent events (JSON)')
    .action(async (name: string) => {
      console.log(JSON.stringify(await apiCall(api(), 'GET', `/v1/volumes/${encodeURIComponent(name)}`), null, 2));
    });
  volume
    .command('rm <name>')
    .description('remove a volume and destroy its data')
    .action(async (name: string) => {
      await apiCall(api(), 'DELETE', `/v1/volumes/${encodeURIComponent(name)}`);
      console.log(name);
    });
  program
    .command('status')
    .description("this host's backends, pools, volumes and anything that needs attention")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const s = await apiCall<AgentStatus>(api(), 'GET', '/v1/status');
      console.log(o.json ? JSON.stringify(s, null, 2) : statusText(s));
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = toFerryError(err);
    process.stderr.write(`ferry: ${e.message}\n`);
    process.exit(EXIT_CODES[e.kind]);
  }
}
