import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { BankLocation } from '../../src/bank/types';
import { ownerAlive, ownerStamp } from './host';

/** scripts/swift-aio.sh, from dist/test/support/. */
const SCRIPT = resolve(__dirname, '../../../scripts/swift-aio.sh');
/** Each test process's Swift lives in its own /tmp/ferry-swift-<owner stamp>-XXXXXX. */
const DIR_PREFIX = '/tmp/ferry-swift-';

/** An OpenStack Swift all-in-one on 127.0.0.1 with its S3 API (scripts/swift-aio.sh). */
export interface SwiftAio {
  /** http://127.0.0.1:PORT, the S3 endpoint. */
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** Where its config, data and logs are. */
  dir: string;
  /** Seconds the last start took (to ready: a signed S3 request answered). */
  startSeconds: number;
  /** Stops the servers named (default: all; the data stays); `start` brings them back on the same ports. */
  stop(servers?: Array<'proxy' | 'account' | 'container' | 'object' | 'memcached'>): Promise<void>;
  start(): Promise<void>;
  /** A new empty bucket, and the BankLocation of a bank at s3://BUCKET/PREFIX. */
  bank(prefix?: string): Promise<BankLocation>;
}

let shared: Promise<SwiftAio> | undefined;
let bucketCount = 0;

function runScript(cmd: 'start' | 'stop', dir: string, servers: string[] = []): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawn('bash', [SCRIPT, cmd, dir, ...servers], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? ok(out) : fail(new Error(`swift-aio.sh ${cmd} ${dir} failed (exit ${code}):\n${err.slice(-3000)}`))));
  });
}

/** Stops and removes the Swift dirs of test processes that are gone (a killed run's leftovers). */
function cleanupSwiftLeftovers(): void {
  for (const name of readdirSync('/tmp')) {
    const dir = join('/tmp', name);
    if (!dir.startsWith(DIR_PREFIX)) continue;
    const owner = existsSync(join(dir, 'owner')) ? readFileSync(join(dir, 'owner'), 'utf8') : '';
    if (owner && ownerAlive(owner)) continue;
    spawnSync('bash', [SCRIPT, 'stop', dir], { stdio: 'ignore', timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The tools a Swift all-in-one needs, or what is missing. */
function missingTools(): string | undefined {
  if (!existsSync('/usr/bin/python3') || spawnSync('/usr/bin/python3', ['-c', 'import swift']).status !== 0) return 'python3-swift';
  for (const t of ['memcached', 'swift-ring-builder']) {
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return t;
  }
  return undefined;
}

async function startShared(): Promise<SwiftAio> {
  cleanupSwiftLeftovers();
  const dir = mkdtempSync(`${DIR_PREFIX}${ownerStamp()}-`);
  writeFileSync(join(dir, 'owner'), ownerStamp());
  const begin = Date.now();
  const out = await runScript('start', dir);
  const field = (k: string): string => {
    const v = new RegExp(`^${k}=(.*)$`, 'm').exec(out)?.[1];
    if (!v) throw new Error(`swift-aio.sh start printed no ${k}: ${out}`);
    return v;
  };
  const aio: SwiftAio = {
    endpoint: field('endpoint'),
    region: field('region'),
    accessKey: field('access_key'),
    secretKey: field('secret_key'),
    dir,
    startSeconds: (Date.now() - begin) / 1000,
    stop: async (servers = []) => {
      await runScript('stop', dir, servers);
    },
    start: async () => {
      const t = Date.now();
      await runScript('start', dir);
      aio.startSeconds = (Date.now() - t) / 1000;
    },
    bank: async (prefix = 'bank') => {
      const bucket = `ferry-test-${process.pid}-${++bucketCount}`;
      // The SDK's notice that its 2027 releases need Node 22 (ours is pinned) would clutter the output.
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
      const client = new S3Client({
        endpoint: aio.endpoint,
        region: aio.region,
        forcePathStyle: true,
        credentials: { accessKeyId: aio.accessKey, secretAccessKey: aio.secretKey },
      });
      try {
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
      return { url: `s3://${bucket}/${prefix}`, endpoint: aio.endpoint, region: aio.region, accessKey: aio.accessKey, secretKey: aio.secretKey };
    },
  };
  // Stopped when this process exits, however mocha ends it (--exit calls process.exit).
  process.on('exit', () => {
    spawnSync('bash', [SCRIPT, 'stop', dir], { stdio: 'ignore', timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
  });
  return aio;
}

/**
 * The Swift all-in-one of this test process, started at the first call (about 5 s on an idle
 * machine) and stopped at exit. Where Swift is not installed, skips the calling suite saying so;
 * in CI (CI=true, where scripts/install-deps.sh installs it) that is a failure instead.
 */
export async function swiftAio(ctx: Mocha.Context): Promise<SwiftAio> {
  const missing = missingTools();
  if (missing) {
    const why = `this machine lacks swift (${missing}; scripts/install-deps.sh installs it)`;
    if (process.env.CI === 'true') throw new Error(`the s3:// bank tests need Swift: ${why}`);
    console.log(`    SKIPPED ${ctx.currentTest?.parent?.title ?? ctx.test?.parent?.title ?? 'swift tests'}: ${why}`);
    ctx.skip();
  }
  shared ??= startShared();
  try {
    return await shared;
  } catch (err) {
    shared = undefined;
    throw err;
  }
}
