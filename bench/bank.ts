import { spawn, spawnSync } from 'node:child_process';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { openStore } from '../src/bank/open-store';
import type { BankLocation } from '../src/bank/types';
import { cleanupDir, makeLoopFs, makeTempDir } from '../test/support/host';
import { progress } from './bench-env';
import type { WorkerJob, WorkerResult } from './bank-worker';
import { changeShare, treeDigest, writeMixedTree } from './mixed-tree';
import { markdownTable } from './report';
import { fmtMs, fmtRatio } from './stats';

/**
 * Issue 8's benchmark: ferry's bank beside restic (Debian's), on the same data, into the same two
 * kinds of bank: a local directory and the Swift s3api store (test/support/swift.ts, on loopback).
 * One generated 1 GiB tree of mixed files (bench/mixed-tree.ts, fixed seed): its first backup, a
 * backup after changing 1 % of it, the bytes each bank then holds, and a full restore of the second
 * backup (checked against the tree by one digest). Each tool runs as its own process under
 * /usr/bin/time -v: wall time from spawn to exit, and its peak RSS.
 *
 * ferry's side runs bench/bank-worker.ts: the library the agent's backup runner drives (Bank, the
 * tree archive, openStore), without the agent and control around it. Its second backup reuses
 * unchanged files by (size, mtime, inode, ctime), as the agent does on btrfs, zfs, lvm and loop and
 * as restic does with its parent snapshot; `readAll` adds a second row where ferry reads and hashes
 * every file (the agent on the `directory` backend).
 */

const GiB = 2 ** 30;
const SWIFT_AIO = join(__dirname, '../../scripts/swift-aio.sh');

interface Swift {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  dir: string;
}

/**
 * Swift's S3 endpoint behind TLS, in a process of its own: restic's S3 client (minio-go) sends
 * aws-chunked uploads over plain HTTP, which Swift 2.30's s3api refuses, and plain signed ones over
 * HTTPS. ferry goes through the same front, so both pay the same TLS. A self-signed certificate
 * for 127.0.0.1 (restic --cacert, NODE_EXTRA_CA_CERTS for ferry's worker).
 */
async function startTlsFront(dir: string, target: string): Promise<{ endpoint: string; cert: string; stop(): void }> {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  const script = `
    const tls = require('node:tls'); const net = require('node:net'); const fs = require('node:fs');
    const [key, cert, port] = process.argv.slice(1);
    const server = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (c) => {
      const u = net.connect(Number(port), '127.0.0.1');
      c.pipe(u); u.pipe(c);
      c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const proc = spawn(process.execPath, ['-e', script, key, cert, new URL(target).port], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((ok, fail) => {
    proc.once('exit', (code) => fail(new Error(`the TLS front of Swift exited with ${code}`)));
    proc.stdout.once('data', (d: Buffer) => {
      proc.removeAllListeners('exit');
      ok(Number(d.toString().trim()));
    });
  });
  return { endpoint: `https://127.0.0.1:${port}`, cert, stop: () => proc.kill() };
}

/** A Swift all-in-one under `dir` (scripts/swift-aio.sh, the tests' own), with a bucket for ferry. */
async function startSwift(dir: string, bucket: string): Promise<Swift> {
  const r = spawnSync('bash', [SWIFT_AIO, 'start', dir], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`swift-aio.sh start failed: ${r.stderr.slice(-2000)}`);
  const field = (k: string): string => {
    const v = new RegExp(`^${k}=(.*)$`, 'm').exec(r.stdout)?.[1];
    if (!v) throw new Error(`swift-aio.sh start printed no ${k}: ${r.stdout}`);
    return v;
  };
  const sw = { endpoint: field('endpoint'), accessKey: field('access_key'), secretKey: field('secret_key'), dir };
  const client = new S3Client({ endpoint: sw.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: sw.accessKey, secretAccessKey: sw.secretKey } });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return sw;
}
const SEED = 8;
const RESTIC_PASSWORD = 'ferry-bench-restic';
/**
 * How the agent's node runs (bin/ferry's first line, the one place for it): the environment it sets
 * (glibc's malloc) and the V8 flags. The worker is the agent's backup runner without the agent
 * around it, so it runs as the agent would.
 */
const AGENT_NODE = ((): { env: Record<string, string>; flags: string[] } => {
  const shebang = readFileSync(join(__dirname, '../../bin/ferry'), 'utf8').split('\n')[0];
  const words = shebang.replace(/^#!\S*env\s+-S\s+/, '').trim().split(/\s+/);
  const at = words.indexOf('node');
  if (!shebang.startsWith('#!') || at < 0) throw new Error(`bin/ferry's first line does not start node through env -S: ${shebang}`);
  const env = Object.fromEntries(words.slice(0, at).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { env, flags: words.slice(at + 1) };
})();

export interface ToolRun {
  ms: number;
  /** Peak RSS of the process (/usr/bin/time's "Maximum resident set size"), KiB. */
  maxRssKiB: number;
}

export interface BankKindFigures {
  kind: 'file' | 's3';
  /** storedFirst: the bank's bytes after the first backup; storedBytes: after the second. */
  ferry: { first: ToolRun; second: ToolRun; secondReadAll?: ToolRun; restore: ToolRun; storedFirst: number; storedBytes: number; firstUploaded: number; secondUploaded: number };
  restic: { first: ToolRun; second: ToolRun; restore: ToolRun; storedFirst: number; storedBytes: number };
}

export interface BankBenchFigures {
  treeBytes: number;
  files: number;
  changedBytes: number;
  resticVersion: string;
  kinds: BankKindFigures[];
}

interface Timed {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  maxRssKiB: number;
}

/** Runs argv under /usr/bin/time -v; its wall time from spawn to exit, and the peak RSS time reports. */
function timedRun(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-v', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ code: code ?? -1, stdout, stderr, ms, maxRssKiB: rss ? Number(rss[1]) : 0 });
    });
  });
}

async function timedOk(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  const r = await timedRun(argv, env);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r;
}

/** Apparent bytes of every file under `dir`. */
function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

export class BankBench {
  aborted = false;
  private dir?: string;
  private swift?: Swift;
  private tls?: { stop(): void };

  constructor(
    private readonly treeBytes = GiB,
    private readonly readAll = true,
  ) {}

  async run(): Promise<BankBenchFigures> {
    const d = (this.dir = makeTempDir('bench-bank'));
    const src = join(d, 'volume');
    const keyFile = join(d, 'bank.key');
    writeFileSync(keyFile, Buffer.from('ferry-bench-key-'.repeat(4)), { mode: 0o600 });
    progress(`bank: writing a ${(this.treeBytes / GiB).toFixed(2)} GiB tree of mixed files`);
    const tree = await writeMixedTree(src, this.treeBytes, SEED);
    const digest0 = await treeDigest(src);
    // The SDK's notice that its 2027 releases need Node 22 would clutter the output.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    progress('bank: starting a Swift all-in-one (s3api) on loopback');
    this.swift = await startSwift(join(d, 'swift'), 'ferry-bench');
    const sw = this.swift;
    const front = await startTlsFront(d, sw.endpoint);
    this.tls = front;
    const s3Env = { AWS_ACCESS_KEY_ID: sw.accessKey, AWS_SECRET_ACCESS_KEY: sw.secretKey, AWS_DEFAULT_REGION: 'us-east-1' };
    // ferry and restic work through the TLS front; the bench lists what they stored on plain HTTP.
    const s3 = { accessKey: sw.accessKey, secretKey: sw.secretKey };
    const kinds: { kind: 'file' | 's3'; ferry: BankLocation; ferryList: BankLocation; restic: string; resticList: BankLocation }[] = [
      {
        kind: 'file',
        ferry: { url: `file://${join(d, 'ferry-bank')}` },
        ferryList: { url: `file://${join(d, 'ferry-bank')}` },
        restic: join(d, 'restic-repo'),
        resticList: { url: `file://${join(d, 'restic-repo')}` },
      },
      {
        kind: 's3',
        ferry: { url: 's3://ferry-bench/ferry', endpoint: front.endpoint, ...s3 },
        ferryList: { url: 's3://ferry-bench/ferry', endpoint: sw.endpoint, ...s3 },
        restic: `s3:${front.endpoint}/restic-bench`,
        resticList: { url: 's3://restic-bench', endpoint: sw.endpoint, ...s3 },
      },
    ];
    const restic = (repo: string, args: string[]): Promise<Timed> =>
      timedOk(['restic', '-r', repo, '--cache-dir', join(d, 'restic-cache'), '--cacert', front.cert, ...args], { RESTIC_PASSWORD, ...s3Env });
    // Packs for Swift are staged on this disk, beside the banks, as the agent stages them under its data directory.
    const ferry = async (job: Omit<WorkerJob, 'keyFile' | 'volume'>): Promise<Timed & { result: WorkerResult }> => {
      const r = await timedOk([process.execPath, ...AGENT_NODE.flags, join(__dirname, 'bank-worker.js'), JSON.stringify({ ...job, keyFile, volume: 'bench', spoolDir: join(d, 'spool') })], { ...AGENT_NODE.env, NODE_EXTRA_CA_CERTS: front.cert });
      return { ...r, result: JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as WorkerResult };
    };
    const run = (t: Timed): ToolRun => ({ ms: t.ms, maxRssKiB: t.maxRssKiB });
    const figures: BankKindFigures[] = [];
    mkdirSync(join(d, 'ferry-bank'));

    for (const k of kinds) {
      progress(`bank (${k.kind}): first backup, ferry then restic`);
      const f1 = await ferry({ op: 'backup', loc: k.ferry, dir: src });
      await restic(k.restic, ['init']);
      const r1 = await restic(k.restic, ['backup', '--quiet', src]);
      figures.push({
        kind: k.kind,
        ferry: { first: run(f1), firstUploaded: f1.result.uploadedBytes, storedFirst: await storedBytes(k.ferryList) } as BankKindFigures['ferry'],
        restic: { first: run(r1), storedFirst: await storedBytes(k.resticList) } as BankKindFigures['restic'],
      });
    }
    progress('bank: changing 1 % of the tree');
    const changedBytes = await changeShare(src, tree.bytes, 0.01, SEED);
    const digest1 = await treeDigest(src);
    if (digest1 === digest0) throw new Error('changing 1 % of the tree changed nothing');
    for (const [i, k] of kinds.entries()) {
      const fig = figures[i];
      progress(`bank (${k.kind}): backup after the change, ferry then restic`);
      const f2 = await ferry({ op: 'backup', loc: k.ferry, dir: src, stableInodes: true });
      fig.ferry.second = run(f2);
      fig.ferry.secondUploaded = f2.result.uploadedBytes;
      fig.restic.second = run(await restic(k.restic, ['backup', '--quiet', src]));
      fig.ferry.storedBytes = await storedBytes(k.ferryList);
      fig.restic.storedBytes = await storedBytes(k.resticList);
      if (this.readAll) {
        // The same data again, every file read and hashed (nothing new to upload): the directory backend's case.
        fig.ferry.secondReadAll = run(await ferry({ op: 'backup', loc: k.ferry, dir: src, stableInodes: false }));
      }
      progress(`bank (${k.kind}): full restore, ferry then restic`);
      const fInto = freshFs(d, `ferry-restore-${k.kind}`);
      fig.ferry.restore = run(await ferry({ op: 'restore', loc: k.ferry, dir: fInto }));
      const rInto = freshFs(d, `restic-restore-${k.kind}`);
      fig.restic.restore = run(await restic(k.restic, ['restore', 'latest', '--target', rInto]));
      // Both restores must be the tree as it was backed up.
      for (const [who, root] of [['ferry', fInto], ['restic', join(rInto, src)]] as const) {
        const got = await treeDigest(root);
        if (got !== digest1) throw new Error(`${who}'s restore from the ${k.kind} bank differs from the tree it backed up`);
      }
      for (const into of [fInto, rInto]) cleanupDir(dirname(into));
    }
    const version = (await timedRun(['restic', 'version'])).stdout.trim();
    return { treeBytes: tree.bytes, files: tree.files, changedBytes, resticVersion: version, kinds: figures };
  }

  async cleanup(): Promise<void> {
    this.tls?.stop();
    this.tls = undefined;
    if (this.swift) spawnSync('bash', [SWIFT_AIO, 'stop', this.swift.dir], { stdio: 'ignore', timeout: 60_000 });
    this.swift = undefined;
    if (this.dir) cleanupDir(this.dir);
    this.dir = undefined;
  }
}

/**
 * A fresh ext4 (a sparse 3 GiB image on loop, lost+found removed) to restore into, as a restore into
 * a new volume has: restored into a directory of a filesystem where the tree of an earlier restore
 * was just deleted, ext4's inode allocator scans past the recently freed inodes (recently_deleted:
 * about 5 s of kernel CPU for 19,000 files here), which only the tool that came right after the
 * deletion paid. Answers the mount point, under a directory of its own.
 */
function freshFs(d: string, name: string): string {
  const dir = join(d, name);
  mkdirSync(dir);
  const into = join(dir, 'fs');
  makeLoopFs(join(dir, 'fs.img'), into, 3 * GiB, 'ext4');
  rmdirSync(join(into, 'lost+found'));
  return into;
}

async function storedBytes(loc: BankLocation): Promise<number> {
  if (loc.url.startsWith('file://')) return dirBytes(loc.url.slice('file://'.length));
  return (await openStore(loc).list('')).reduce((n, o) => n + o.size, 0);
}

const MB = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
const rss = (kib: number): string => `${(kib / 1024).toFixed(0)} MB`;

/** One table per kind of bank: ferry, restic, restic / ferry (above 1: ferry is faster or smaller). */
export function renderBank(f: BankBenchFigures): string {
  const parts: string[] = [];
  for (const k of f.kinds) {
    const time = (label: string, a: ToolRun, b: ToolRun): string[] => [label, fmtMs(a.ms), fmtMs(b.ms), fmtRatio(b.ms / a.ms), a.ms < b.ms ? 'yes' : '**no**'];
    const rows: string[][] = [
      time('first backup', k.ferry.first, k.restic.first),
      time('backup after a 1 % change', k.ferry.second, k.restic.second),
      ...(k.ferry.secondReadAll ? [[`the same, ferry reading every file`, fmtMs(k.ferry.secondReadAll.ms), fmtMs(k.restic.second.ms), fmtRatio(k.restic.second.ms / k.ferry.secondReadAll.ms), '—']] : []),
      ['bytes stored after both', MB(k.ferry.storedBytes), MB(k.restic.storedBytes), fmtRatio(k.restic.storedBytes / k.ferry.storedBytes), k.ferry.storedBytes <= k.restic.storedBytes ? 'yes' : '**no**'],
      [
        'bank growth by the second backup',
        MB(k.ferry.storedBytes - k.ferry.storedFirst),
        MB(k.restic.storedBytes - k.restic.storedFirst),
        fmtRatio((k.restic.storedBytes - k.restic.storedFirst) / (k.ferry.storedBytes - k.ferry.storedFirst)),
        '—',
      ],
      time('full restore', k.ferry.restore, k.restic.restore),
      [
        'peak RSS (first backup · second · restore)',
        [k.ferry.first, k.ferry.second, k.ferry.restore].map((r) => rss(r.maxRssKiB)).join(' · '),
        [k.restic.first, k.restic.second, k.restic.restore].map((r) => rss(r.maxRssKiB)).join(' · '),
        '—',
        Math.max(k.ferry.first.maxRssKiB, k.ferry.second.maxRssKiB, k.ferry.restore.maxRssKiB) < 200 * 1000 ? 'yes (< 200 MB)' : '**no** (< 200 MB)',
      ],
    ];
    parts.push(`#### ${k.kind === 'file' ? 'file:// bank (a local directory)' : 's3:// bank (Swift s3api on loopback, through one TLS front for both)'}`, '', markdownTable(['Figure', 'ferry', 'restic', 'restic / ferry', 'Within aim'], rows), '');
  }
  return parts.join('\n');
}
