import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The CLI's entry module, as bin/ferry loads it (tests run from dist/test/). */
const MAIN = join(__dirname, '../../src/cli/main.js');

/** The packages a fresh Node process holds after loading the CLI and running `argv`, from its require cache. */
function packagesLoaded(argv: string[]): string[] {
  // main() ends the process itself (process.exit) on an error or a usage message: report at exit.
  const script = [
    'process.on("exit", () => {',
    ' const names = new Set(Object.keys(require.cache).map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean));',
    ' require("node:fs").writeSync(2, "\\nLOADED " + JSON.stringify([...names].sort()) + "\\n");',
    '});',
    `require(${JSON.stringify(MAIN)}).main(${JSON.stringify(['node', 'ferry', ...argv])}).catch(() => undefined);`,
  ].join('');
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  if (!line) throw new Error(`the CLI did not report what it loaded: ${r.stderr}`);
  return JSON.parse(line.slice('LOADED '.length)) as string[];
}

/**
 * Every `ferry` command starts a Node process: the client commands (those that talk to the local
 * API) load neither the server's packages nor zod, which only checks a config (about 100 ms of a
 * start that is otherwise about 200 ms). Each server command loads what it needs when it runs.
 */
describe('CLI start-up: what a client command loads', function () {
  const server = ['zod', 'express', 'dockerode', 'better-sqlite3', 'ssh2', 'node-cron', 'prom-client'];

  it('ferry --help loads commander, but no server package and not zod', function () {
    const loaded = packagesLoaded(['--help']);
    expect(loaded).to.include('commander');
    expect(loaded.filter((p) => server.includes(p))).to.deep.equal([]);
  });

  it('ferry volume ls (its API away) loads no server package and not zod', function () {
    const loaded = packagesLoaded(['volume', 'ls', '--api-socket', '/nonexistent/ferry.sock']);
    expect(loaded.filter((p) => server.includes(p))).to.deep.equal([]);
  });

  it('ferry serve reads its config first, so it loads zod (and fails on a config file that is not there)', function () {
    const loaded = packagesLoaded(['serve', '--config', '/nonexistent/ferry.json']);
    expect(loaded).to.include('zod');
    expect(loaded).not.to.include('express');
  });
});
