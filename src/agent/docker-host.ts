import type Docker from 'dockerode';
import type { Logger } from '../log';
import type { ContainerSpec } from '../wire/records';
import { COMPOSE_PROJECT_LABEL, type HostContainer } from './quiesce-plan';

/** What a command run in a container with `docker exec` ended with. */
export interface ExecResult {
  /** Null when it did not end within its time (it was then killed, where this host can see it). */
  exitCode: number | null;
  timedOut: boolean;
  /** stdout and stderr interleaved, the last `EXEC_OUTPUT_CHARS` characters. */
  output: string;
  durationMs: number;
}

/** How much of a hook's output is kept (the event log shows it; a chatty hook must not fill it). */
export const EXEC_OUTPUT_CHARS = 2000;

/**
 * This host's dockerd, for what a volume plugin may ask of it outside a Mount request (dockerd holds
 * the container's lock during Mount: never call it from there).
 */
export class DockerHost {
  private client?: Promise<Docker>;

  constructor(
    private readonly socketPath: string,
    private readonly log: Logger,
  ) {}

  /** dockerode loads on first use (its 170 modules cost an agent 3-5 MB that a host without mounts never needs). */
  private docker(): Promise<Docker> {
    this.client ??= import('dockerode').then(({ default: D }) => new D({ socketPath: this.socketPath, timeout: 60_000 }));
    return this.client;
  }

  /** Names of the running containers that mount `volume`. */
  async containersUsing(volume: string): Promise<string[]> {
    const list = await (await this.docker()).listContainers({ filters: { volume: [volume] } });
    return list.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')).sort();
  }

  /** Stops the running containers that mount `volume` and returns what it takes to start them elsewhere. */
  async captureAndStop(volume: string): Promise<ContainerSpec[]> {
    const specs: ContainerSpec[] = [];
    const docker = await this.docker();
    for (const c of await docker.listContainers({ filters: { volume: [volume] } })) {
      const info = await docker.getContainer(c.Id).inspect();
      // The hostname dockerd gave it is the old container's id: let the new one get its own.
      const { Hostname: _h, ...config } = info.Config as unknown as Record<string, unknown>;
      specs.push({ name: info.Name.replace(/^\//, ''), config, hostConfig: info.HostConfig as unknown as Record<string, unknown> });
      await docker.getContainer(c.Id).stop({ t: 10 });
      this.log.info({ volume, container: info.Name }, 'stopped a container for a move');
    }
    return specs;
  }

  /** Creates and starts containers from specs; returns the names it could not start, with why. */
  async recreate(specs: ContainerSpec[]): Promise<{ name: string; error: string }[]> {
    const failed: { name: string; error: string }[] = [];
    const docker = await this.docker();
    for (const s of specs) {
      try {
        const c = await docker.createContainer({ ...s.config, name: s.name, HostConfig: s.hostConfig });
        await c.start();
        this.log.info({ container: s.name }, 'started a moved container');
      } catch (err) {
        failed.push({ name: s.name, error: (err as Error).message });
      }
    }
    return failed;
  }

  // --- quiesce (issue 7 item 2): containers around a snapshot ---

  /** The running and paused containers that mount any of `volumes` (named volumes only). */
  async containersWithVolumes(volumes: readonly string[]): Promise<HostContainer[]> {
    if (volumes.length === 0) return [];
    // dockerd's volume filter matches a name or a mount destination: plan() keeps names only.
    return toHostContainers(await (await this.docker()).listContainers({ filters: { volume: [...volumes] } }));
  }

  /** The running and paused containers of Compose project `project` (by its label). */
  async projectContainers(project: string): Promise<HostContainer[]> {
    return toHostContainers(await (await this.docker()).listContainers({ filters: { label: [`${COMPOSE_PROJECT_LABEL}=${project}`] } }));
  }

  async pause(id: string): Promise<void> {
    await (await this.docker()).getContainer(id).pause();
  }

  async unpause(id: string): Promise<void> {
    await (await this.docker()).getContainer(id).unpause();
  }

  /** group: container `id`'s main process id on this host; 0 when it is not running. */
  async pidOf(id: string): Promise<number> {
    return (await (await this.docker()).getContainer(id).inspect()).State.Pid ?? 0;
  }

  // --- bank-policy (issue 8 item 5): the restore drill's container ---

  /**
   * `docker run --rm` through dockerd: `cmd` in `image` (pulled when this host lacks it) with `mounts`,
   * labelled `labels`, for at most `timeoutMs` (then killed: timedOut). The output's last
   * EXEC_OUTPUT_CHARS characters come back; the container is removed whatever happened.
   */
  async runOnce(o: { image: string; cmd: readonly string[]; mounts: readonly RunMount[]; timeoutMs: number; labels?: Record<string, string> }): Promise<RunResult> {
    const docker = await this.docker();
    const started = Date.now();
    try {
      await docker.getImage(o.image).inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      this.log.info({ image: o.image }, 'pulling an image');
      const stream = await docker.pull(o.image);
      await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve())));
    }
    const container: Docker.Container = await docker.createContainer({
      Image: o.image,
      Cmd: [...o.cmd],
      Labels: o.labels ?? {},
      HostConfig: {
        Mounts: o.mounts.map((m) => ({ Type: 'volume' as const, Source: m.volume, Target: m.target, // NoCopy: the image's files at the target must never land in the restored data.
          VolumeOptions: { NoCopy: true, Labels: {}, DriverConfig: { Name: m.driver, Options: {} } } })),
      },
    });
    try {
      // next-exit, asked before the start: a created container is already "not running", and the default
      // condition would answer at once with exit code 0.
      const waited = container.wait({ condition: 'next-exit' });
      await container.start();
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        waited.then((r: { StatusCode?: number }) => ({ code: r.StatusCode ?? null })),
        new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), o.timeoutMs))),
      ]);
      clearTimeout(timer);
      if (ended === null) await container.kill().catch((err: unknown) => this.log.warn({ err, image: o.image }, 'cannot kill a container past its time'));
      const logs = (await container.logs({ stdout: true, stderr: true, follow: false, tail: 500 })) as unknown as Buffer;
      return {
        exitCode: ended?.code ?? null,
        timedOut: ended === null,
        output: demuxDockerLogs(Buffer.isBuffer(logs) ? logs : Buffer.from(String(logs))).slice(-EXEC_OUTPUT_CHARS),
        durationMs: Date.now() - started,
      };
    } finally {
      await container.remove({ force: true }).catch((err: unknown) => this.log.warn({ err, image: o.image }, 'cannot remove a finished container'));
    }
  }

  /** bank-policy: removes the containers labelled `label` (any state); answers how many. */
  async removeLabelled(label: string): Promise<number> {
    const docker = await this.docker();
    const list = await docker.listContainers({ all: true, filters: { label: [label] } });
    for (const c of list) await docker.getContainer(c.Id).remove({ force: true });
    return list.length;
  }

  /** bank-policy: `docker volume rm NAME` (dockerd and its driver forget it); false when dockerd does not know it. */
  async removeVolume(name: string): Promise<boolean> {
    try {
      await (await this.docker()).getVolume(name).remove();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  /**
   * Runs `argv` in container `id` (`docker exec`, no shell of ferry's) for at most `timeoutMs`. A
   * command past its time is killed by its host pid where this process can see it (dockerd has no
   * call to stop an exec); where it cannot (a managed plugin's own pid namespace) it is logged.
   */
  async exec(id: string, argv: readonly string[], timeoutMs: number): Promise<ExecResult> {
    const docker = await this.docker();
    const started = Date.now();
    const exec = await docker.getContainer(id).exec({ Cmd: [...argv], AttachStdout: true, AttachStderr: true, Tty: false });
    const stream = await exec.start({ hijack: true, stdin: false });
    let output = '';
    const keep = { write: (chunk: Buffer): boolean => ((output = (output + chunk.toString('utf8')).slice(-EXEC_OUTPUT_CHARS)), true) };
    docker.modem.demuxStream(stream, keep as unknown as NodeJS.WritableStream, keep as unknown as NodeJS.WritableStream);
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      new Promise<boolean>((resolve) => {
        stream.once('end', () => resolve(true));
        stream.once('close', () => resolve(true));
        stream.once('error', () => resolve(true));
      }),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!ended) {
      stream.destroy();
      const info = await exec.inspect().catch(() => undefined);
      if (info?.Running && info.Pid > 0) {
        try {
          process.kill(info.Pid, 'SIGKILL');
        } catch (err) {
          this.log.warn({ err, container: id, pid: info.Pid }, 'cannot kill a hook past its time');
        }
      }
      return { exitCode: null, timedOut: true, output, durationMs: Date.now() - started };
    }
    // The stream ends as the process does; dockerd records the exit code a moment later.
    const deadline = Date.now() + 5000;
    let info = await exec.inspect();
    while (info.Running && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      info = await exec.inspect();
    }
    return { exitCode: info.ExitCode ?? null, timedOut: false, output, durationMs: Date.now() - started };
  }
}

/** bank-policy: a volume mounted into a container runOnce starts (a named volume of driver `driver`). */
export interface RunMount {
  volume: string;
  driver: string;
  target: string;
}

/** bank-policy: what a container runOnce started ended with (ExecResult's fields, and the image pulled or not). */
export type RunResult = ExecResult;

/** Docker's stream frames (non-TTY logs): [stream 1 byte, 3 zero, size 4 bytes BE][payload]; the payloads joined. */
export function demuxDockerLogs(buf: Buffer): string {
  // A TTY container's logs are not framed (runOnce never asks for a TTY): the buffer as it is.
  if (buf.length >= 8 && (buf[0] > 2 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0)) return buf.toString('utf8');
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, Math.min(buf.length, i + 8 + size)));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

function toHostContainers(list: Docker.ContainerInfo[]): HostContainer[] {
  return list.map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
    state: c.State,
    labels: c.Labels ?? {},
    volumes: (c.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name as string),
  }));
}
