import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { unwrapStream } from '../src/agent/backends/stream-envelope';
import { coalesceWrites } from '../src/stream/coalesce';
import { TransferClient } from '../src/transfer/client';
import { loadOrCreateKey } from '../src/transfer/keys';
import { cleanupDir, makeTempDir } from '../test/support/host';
import { progress } from './bench-env';
import { cpuOf } from './cpu';
import { markdownTable } from './report';
import { elapsedMs } from './stats';

/**
 * The data path of moves and replication alone, without disks, btrfs or a move's steps: the bytes of
 * a child's stdout (`dd`, standing in for `btrfs send`) through ferry's transfer service (ssh2,
 * AES-GCM, the envelope) into another child's stdin (`dd`, for `btrfs receive`), sender and receiver
 * in two processes on loopback. Envelope version 1 (SHA-256) and 2 (CRC-32) in turns, in the same
 * run, beside the same bytes through two Node processes over bare TCP (no ssh, no envelope): what
 * moving bytes through Node costs here at all. Needs no root and no cluster.
 */

export interface PathRun {
  ms: number;
  /** CPU of the sending process (ssh2 server, envelope) and of the receiving one (this process). */
  senderMs: number;
  receiverMs: number;
}

export interface TransferPathFigures {
  bytes: number;
  rounds: number;
  runs: Record<'env1' | 'env2' | 'raw', PathRun[]>;
}

const BLOCK = 64 * 1024;

export class TransferPathBench {
  aborted = false;
  private dir?: string;
  private peer?: ChildProcess;

  constructor(
    private readonly bytes: number,
    private readonly rounds: number,
  ) {}

  async run(): Promise<TransferPathFigures> {
    this.dir = makeTempDir('bench-transfer');
    const mine = loadOrCreateKey(join(this.dir, 'receiver', 'id_ed25519'));
    const theirsPath = join(this.dir, 'sender', 'id_ed25519');
    const theirs = loadOrCreateKey(theirsPath);
    const ports = await this.startPeer(theirsPath, `${join(this.dir, 'receiver', 'id_ed25519')}.pub`);
    const runs: TransferPathFigures['runs'] = { env1: [], env2: [], raw: [] };
    const blocks = Math.round(this.bytes / BLOCK);
    for (let r = 1; r <= this.rounds; r++) {
      for (const kind of ['env1', 'env2', 'raw'] as const) {
        if (this.aborted) throw new Error('interrupted');
        progress(`transfer path: round ${r}/${this.rounds}, ${kind}`);
        runs[kind].push(
          await this.measure(async () => {
            if (kind === 'raw') return rawStream(ports.raw, blocks);
            const c = await TransferClient.connect({ name: 'sender', address: `127.0.0.1:${ports.ssh}`, hostKey: theirs.publicKey }, mine.privateKey);
            const { body } = unwrapStream(c.request({ op: 'send', volume: kind, snapshot: `b${blocks}` }));
            body.once('close', () => c.close());
            return body;
          }),
        );
      }
    }
    return { bytes: blocks * BLOCK, rounds: this.rounds, runs };
  }

  private startPeer(keyPath: string, peerKeyPath: string): Promise<{ ssh: number; raw: number }> {
    const script = join(__dirname, 'transfer-peer.js');
    const peer = spawn(process.execPath, [script, keyPath, peerKeyPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.peer = peer;
    return new Promise((resolve, reject) => {
      peer.once('error', reject);
      peer.once('exit', (code) => reject(new Error(`the transfer peer exited ${code} before it listened`)));
      peer.stdout!.once('data', (b: Buffer) => resolve(JSON.parse(b.toString()) as { ssh: number; raw: number }));
    });
  }

  /** Pipes `open()`'s stream into `dd of=/dev/null` until dd exits; wall time and both processes' CPU. */
  private async measure(open: () => Promise<Readable>): Promise<PathRun> {
    const sender0 = cpuOf(this.peer!.pid!).selfMs;
    const receiver0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    const sink = spawn('dd', ['of=/dev/null', 'bs=64k', 'status=none'], { stdio: ['pipe', 'ignore', 'inherit'] });
    const exited = new Promise<void>((resolve, reject) => sink.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`dd exited ${code}`)))));
    const body = await open();
    // As btrfs receive's stdin is fed (the runner coalesces its writes).
    body.pipe(coalesceWrites(sink.stdin!));
    await Promise.all([exited, new Promise((resolve, reject) => body.once('end', resolve).once('error', reject))]);
    const ms = elapsedMs(start);
    const used = process.cpuUsage(receiver0);
    return { ms, senderMs: cpuOf(this.peer!.pid!).selfMs - sender0, receiverMs: (used.user + used.system) / 1000 };
  }

  async cleanup(): Promise<void> {
    this.peer?.kill();
    if (this.dir) cleanupDir(this.dir);
    this.dir = undefined;
  }
}

/** The same bytes from the peer's bare TCP server. */
function rawStream(port: number, blocks: number): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port }, () => {
      sock.write(`${blocks}\n`);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The section's table: medians per path, throughput, CPU seconds per GiB on each side, ratios to version 1. */
export function renderTransferPath(f: TransferPathFigures): string {
  const gib = f.bytes / 2 ** 30;
  const v1 = f.runs.env1;
  const cell = (runs: PathRun[], pick: (r: PathRun) => number, base?: PathRun[]): string => {
    const m = median(runs.map(pick));
    return `${(m / 1000 / gib).toFixed(2)} s${base ? ` (${(m / median(base.map(pick))).toFixed(2)}×)` : ''}`;
  };
  const row = (label: string, runs: PathRun[], base?: PathRun[]): string[] => {
    const ms = median(runs.map((r) => r.ms));
    return [
      label,
      `${((f.bytes / 2 ** 20) / (ms / 1000)).toFixed(0)} MiB/s${base ? ` (${(median(base.map((r) => r.ms)) / ms).toFixed(2)}×)` : ''}`,
      cell(runs, (r) => r.senderMs, base),
      cell(runs, (r) => r.receiverMs, base),
      cell(runs, (r) => r.senderMs + r.receiverMs, base),
    ];
  };
  return markdownTable(
    ['Path (median of ' + f.rounds + ')', 'throughput (× version 1)', 'sender CPU per GiB', 'receiver CPU per GiB', 'both'],
    [
      row('ferry, envelope version 1 (SHA-256)', v1),
      row('ferry, envelope version 2 (CRC-32)', f.runs.env2, v1),
      row('bare TCP through two Node processes (no ssh, no envelope)', f.runs.raw, v1),
    ],
  );
}
