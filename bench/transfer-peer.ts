/**
 * The sending side of the transfer-path benchmark (transfer-path.ts), its own process so that its
 * CPU is its own: a TransferServer whose handler streams `dd if=/dev/zero` (a stand-in for `btrfs
 * send`: a child's stdout) in the envelope version the request's volume names (`env1`, `env2`), and
 * a bare TCP server that pipes the same bytes with neither ssh nor envelope (the floor of moving
 * bytes through Node here). Prints `{"ssh":PORT,"raw":PORT}` once both listen.
 *
 *   node dist/bench/transfer-peer.js KEY PEER_PUBLIC_KEY
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { wrapStream } from '../src/agent/backends/stream-envelope';
import { silentLogger } from '../src/log';
import { streamBuffers } from '../src/stream/buffer-size';
import { loadOrCreateKey } from '../src/transfer/keys';
import { TransferServer } from '../src/transfer/server';

/** `dd` of `blocks` 64 KiB blocks of zeros; the snapshot name is `b<blocks>`. */
function zeros(blocks: number): NodeJS.ReadableStream {
  return spawn('dd', ['if=/dev/zero', 'bs=64k', `count=${blocks}`, 'status=none'], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout;
}

async function main(): Promise<void> {
  const [keyPath, peerKeyPath] = process.argv.slice(2);
  const key = loadOrCreateKey(keyPath);
  const peer = readFileSync(peerKeyPath, 'utf8').trim();
  const server = new TransferServer(
    key,
    async () => new Map([['bench', peer]]),
    {
      async handle(req) {
        if (req.op !== 'send') return undefined;
        const inner = new PassThrough(streamBuffers);
        zeros(Number(req.snapshot.slice(1))).pipe(inner);
        return wrapStream(inner, { backend: 'bench', snapshot: req.snapshot }, Number(req.volume.slice(3)));
      },
    },
    silentLogger(),
  );
  const ssh = await server.listen(0, '127.0.0.1');
  const raw = createServer((sock) => {
    sock.once('data', (line: Buffer) => zeros(Number(line.toString().trim())).pipe(sock));
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  process.stdout.write(JSON.stringify({ ssh, raw: (raw.address() as AddressInfo).port }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`transfer peer failed: ${String(err)}\n`);
  process.exit(1);
});
