import { join } from 'node:path';
import { loadConfig, type Config, type ConfigInput } from '../../src/config/config';
import { silentLogger } from '../../src/log';
import { startFerry, type Ferry } from '../../src/serve';

/** A config whose every path lives under `dir`, with a small sparse btrfs pool. */
export function testConfig(dir: string, over: ConfigInput = {}): Config {
  return loadConfig({
    overrides: {
      dataDir: join(dir, 'data'),
      pluginSocket: join(dir, 'plugins', 'ferry.sock'),
      apiSocket: join(dir, 'api.sock'),
      nodeName: 'h1',
      logLevel: 'silent',
      // A free port: several test ferries may run in one process.
      web: { listen: '127.0.0.1:0', ...over.web },
      ...over,
      btrfs: { poolSize: '2G', ...over.btrfs },
    },
  });
}

/** Starts ferry serve in this process and waits until it is ready. */
export async function startTestFerry(config: Config): Promise<Ferry> {
  const f = await startFerry(config, silentLogger(), { touchDockerd: false });
  await f.ready;
  return f;
}
