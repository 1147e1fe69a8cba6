import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const TEST_IMAGE = 'ferry-test/busybox:latest';
export const E2E_LABEL = 'ferry-e2e';
/**
 * The one plugin name (and socket) of every single-host end-to-end suite's `ferry serve`, never that
 * of a ferry serving the host for real. One name, not one per suite: dockerd keeps every legacy
 * volume plugin it has used until it restarts, and asks each, dead ones too (about 15 s of retries
 * each), before it creates or finds a volume of a new name.
 */
export const E2E_DRIVER = 'ferry-e2e';
export const E2E_PLUGIN_SOCKET = `/run/docker/plugins/${E2E_DRIVER}.sock`;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the docker CLI; never throws, the caller asserts on the result. */
export function docker(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Run {
  const r = spawnSync('docker', args, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 180_000 });
  return { code: r.status ?? -1, stdout: (r.stdout ?? '').trim(), stderr: (r.stderr ?? '').trim() };
}

/** Like docker() but throws with stderr when the command fails. */
export function dockerOk(args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = docker(args, opts);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Fails with what to do when no dockerd answers; builds the test image when it is missing. */
export function requireDockerd(repoRoot: string): void {
  const info = docker(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 30_000 });
  if (info.code !== 0) {
    throw new Error(`no dockerd answers at /var/run/docker.sock (${info.stderr}): run scripts/start-dockerd.sh first`);
  }
  if (docker(['image', 'inspect', TEST_IMAGE]).code !== 0) {
    const r = spawnSync('bash', [join(repoRoot, 'scripts/build-test-image.sh')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot build ${TEST_IMAGE}: ${r.stderr}`);
  }
}

/** Removes containers and volumes that earlier e2e runs left in dockerd. */
export function removeE2eLeftovers(driver: string): void {
  const ids = docker(['ps', '-aq', '--filter', `label=${E2E_LABEL}`]).stdout.split('\n').filter(Boolean);
  if (ids.length) docker(['rm', '-f', ...ids]);
  const vols = docker(['volume', 'ls', '-q', '--filter', `driver=${driver}`]).stdout.split('\n').filter(Boolean);
  if (vols.length) docker(['volume', 'rm', '-f', ...vols]);
}

export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 200): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Restarts dockerd: through systemd where it runs, else by stopping the running dockerd and
 * starting it again with the same command line (how scripts/start-dockerd.sh started it).
 */
export async function restartDockerd(): Promise<void> {
  const systemd = spawnSync('systemctl', ['is-active', '--quiet', 'docker']);
  if (systemd.status === 0) {
    spawnSync('systemctl', ['restart', 'docker']);
  } else {
    const pidFile = '/var/run/docker.pid';
    if (!existsSync(pidFile)) throw new Error('cannot find dockerd: /var/run/docker.pid is missing');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    process.kill(pid, 'SIGTERM');
    await waitFor('dockerd to stop', () => !existsSync(`/proc/${pid}`), 60_000);
    const log = openSync('/var/log/ferry-dockerd.log', 'a');
    const child: ChildProcess = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
    child.unref();
  }
  await waitFor('dockerd to answer', () => docker(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 }).code === 0, 90_000, 500);
}
