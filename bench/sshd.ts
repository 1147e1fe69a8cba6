import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { progress } from './bench-env';
import { cpuOf, type CpuTimes, cpuDelta } from './cpu';
import { runTimed, runTimedOk } from './proc';

/**
 * OpenSSH's sshd inside one test host's network namespace, with a generated host key and client
 * key, listening only on that host's address: what a user would otherwise move a volume with
 * (rsync over ssh). Used by the move benchmark; stop() kills it.
 */

/** The cipher both ssh2 (ferry) and OpenSSH are fastest with on these machines (DESIGN.md). */
export const SSH_CIPHER = 'aes128-gcm@openssh.com';
/** sshd refuses to start without its privilege separation directory. */
const PRIVSEP_DIR = '/run/sshd';

export interface RsyncRun {
  /** Until rsync exited: the data received, much of it still dirty in the page cache. */
  ms: number;
  /** Then `sync -f` of the destination's filesystem: until the data is on disk. */
  syncMs: number;
  /** rsync and ssh on the sending side (children of this process). */
  senderCpu: CpuTimes;
  /** sshd and the rsync it started on the receiving side. */
  receiverCpu: CpuTimes;
  /** "Total bytes sent" of rsync --stats: what crossed the wire, protocol included. */
  bytesSent: number;
}

export class SshdInNetns {
  private exited = false;
  private madePrivsepDir = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    readonly ip: string,
    readonly port: number,
  ) {
    child.once('exit', () => (this.exited = true));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get clientKey(): string {
    return join(this.dir, 'client_key');
  }

  /** Keys and config under `dir`, then sshd -D in network namespace `netnsPath`; resolves once it listens. */
  static async start(dir: string, netnsPath: string, ip: string, port: number): Promise<SshdInNetns> {
    mkdirSync(dir, { recursive: true });
    const hostKey = join(dir, 'host_key');
    const clientKey = join(dir, 'client_key');
    await runTimedOk(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-bench-host', '-f', hostKey]);
    await runTimedOk(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-bench-client', '-f', clientKey]);
    const authorized = join(dir, 'authorized_keys');
    await runTimedOk(['cp', `${clientKey}.pub`, authorized]);
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        `ListenAddress ${ip}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorized}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        // Keys in a temp dir of a root-owned run: their modes are not what sshd insists on by default.
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'Compression no',
        `Ciphers ${SSH_CIPHER}`,
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    let madePrivsepDir = false;
    if (!existsSync(PRIVSEP_DIR)) {
      mkdirSync(PRIVSEP_DIR, { mode: 0o755 });
      madePrivsepDir = true;
    }
    // -D: stay in the foreground (its pid is ours to kill); -e: log to stderr. nsenter without
    // --fork execs sshd itself, so the child's pid is sshd's. sshd needs its absolute path to re-exec.
    const child = spawn('nsenter', [`--net=${netnsPath}`, '--', '/usr/sbin/sshd', '-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    const sshd = new SshdInNetns(child, dir, ip, port);
    sshd.madePrivsepDir = madePrivsepDir;
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4096)));
    try {
      await sshd.waitListening(netnsPath, () => stderr);
    } catch (err) {
      await sshd.stop();
      throw err;
    }
    progress(`sshd listens on ${ip}:${port} (pid ${sshd.pid})`);
    return sshd;
  }

  /** Polls with ssh itself until a login works: sshd prints nothing when it listens at LogLevel ERROR. */
  private async waitListening(netnsPath: string, stderr: () => string): Promise<void> {
    const end = Date.now() + 15_000;
    for (;;) {
      if (this.exited) throw new Error(`sshd exited: ${stderr()}`);
      const r = await runTimed(['nsenter', `--net=${netnsPath}`, '--', 'ssh', ...this.sshOptions(), `root@${this.ip}`, 'true'], 10_000);
      if (r.code === 0) return;
      if (Date.now() > end) throw new Error(`sshd on ${this.ip}:${this.port} does not let the client in: ${r.stderr} ${stderr()}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** ssh options for the client: this port, the generated key, no host key bookkeeping, the fast cipher. */
  sshOptions(): string[] {
    return [
      '-p', String(this.port), '-i', this.clientKey,
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR',
      '-c', SSH_CIPHER,
    ];
  }

  /**
   * `rsync -a SRC/ root@ip:DEST/` run in network namespace `fromNetns`, timed, with the CPU spent on
   * each side: a full copy when DEST does not exist yet, else only what changed (rsync's quick check
   * by size and mtime, then its delta algorithm on the files that differ).
   */
  async rsync(fromNetns: string, src: string, dest: string): Promise<RsyncRun> {
    const self = cpuOf('self');
    const remote = cpuOf(this.pid);
    const r = await runTimed(
      ['nsenter', `--net=${fromNetns}`, '--', 'rsync', '-a', '--stats', '-e', ['ssh', ...this.sshOptions()].join(' '), `${src}/`, `root@${this.ip}:${dest}/`],
      30 * 60_000,
    );
    if (r.code !== 0) throw new Error(`rsync to ${this.ip}:${dest} exited ${r.code}: ${r.stderr}`);
    const syncMs = (await runTimedOk(['sync', '-f', dest])).ms;
    // The session's processes reach sshd's counters once sshd has reaped them.
    await new Promise((res) => setTimeout(res, 300));
    const sent = /Total bytes sent:\s*([\d,.]+)/.exec(r.stdout)?.[1];
    return {
      ms: r.ms,
      syncMs,
      senderCpu: cpuDelta(self, cpuOf('self')),
      receiverCpu: cpuDelta(remote, cpuOf(this.pid)),
      bytesSent: sent ? Number(sent.replace(/[,.]/g, '')) : NaN,
    };
  }

  /** Kills sshd (SIGTERM, then SIGKILL) and waits for it; removes the privsep dir if this made it. Idempotent. */
  async stop(): Promise<void> {
    if (!this.exited && this.child.pid !== undefined) {
      const gone = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const late = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 3000))]);
      if (late) {
        this.child.kill('SIGKILL');
        await gone;
      }
    }
    if (this.madePrivsepDir) {
      try {
        rmdirSync(PRIVSEP_DIR);
      } catch {
        // Something else uses it now: leave it.
      }
      this.madePrivsepDir = false;
    }
  }
}
