import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The CLI's entry module, as bin/ferry loads it (tests run from dist/test/). */
const MAIN = join(__dirname, '../../src/cli/main.js');

/** Packages that a client command must not load: the servers', the bank's, and what only they use. */
const SERVER_ONLY = ['zod', 'pino', 'express', 'dockerode', 'better-sqlite3', 'ssh2', 'node-cron', 'prom-client', '@aws-sdk/client-s3', 'zstd-napi'];

interface Run {
  status: number | null;
  output: string;
  /** Packages in the process's require cache when it exited. */
  loaded: string[];
}

/** Runs the CLI with `argv` in a fresh Node process and reports what it printed and which packages it had loaded. */
function runCli(argv: string[]): Run {
  // main() ends the process itself (process.exit) on an error or a usage message: report at exit.
  const script = [
    'process.on("exit", () => {',
    ' const names = new Set(Object.keys(require.cache).map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean));',
    ' require("node:fs").writeSync(2, "\\nLOADED " + JSON.stringify([...names].sort()) + "\\n");',
    '});',
    `require(${JSON.stringify(MAIN)}).main(${JSON.stringify(['node', 'ferry', ...argv])}).catch((err) => { console.error("main rejected: " + err.message); process.exitCode = 99; });`,
  ].join('');
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  if (!line) throw new Error(`the CLI did not report what it loaded (status ${r.status}, signal ${r.signal}, ${r.error?.message ?? 'no spawn error'}): ${r.stderr}`);
  return { status: r.status, output: r.stdout + r.stderr, loaded: JSON.parse(line.slice('LOADED '.length)) as string[] };
}

/**
 * Every `ferry` command starts a Node process: the client commands (those that talk to the local
 * API) load neither the servers' packages nor zod and pino, which only the server commands use (zod
 * to check a config: about 100 ms of a start that is otherwise about 200 ms). Each server command
 * loads what it needs when it runs.
 */
describe('CLI start-up: what a client command loads', function () {
  it('ferry --help prints the usage, loading commander but no server package', function () {
    const r = runCli(['--help']);
    expect(r.status, r.output).to.equal(0);
    expect(r.output).to.include('Usage: ferry');
    expect(r.loaded).to.include('commander');
    expect(r.loaded.filter((p) => SERVER_ONLY.includes(p))).to.deep.equal([]);
  });

  it('ferry volume ls with its API away says so, loading no server package', function () {
    const r = runCli(['volume', 'ls', '--api-socket', '/nonexistent/ferry.sock']);
    expect(r.status, r.output).to.equal(5);
    expect(r.output).to.include('is not running on this host');
    expect(r.loaded.filter((p) => SERVER_ONLY.includes(p))).to.deep.equal([]);
  });

  it('ferry serve reads its config first, so it loads zod (and stops on a config that is not JSON)', function () {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-startup-'));
    try {
      const config = join(dir, 'config.json');
      writeFileSync(config, 'not json');
      // Every path in this test's own directory, should the config ever be read differently.
      const r = runCli(['serve', '--config', config, '--data-dir', join(dir, 'data'), '--api-socket', join(dir, 'api.sock'), '--plugin-socket', join(dir, 'plugin.sock')]);
      expect(r.output).to.include(`config file ${config} is not valid JSON`);
      expect(r.status, r.output).to.not.equal(0);
      expect(r.loaded).to.include('zod');
      expect(r.loaded).not.to.include('express');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
