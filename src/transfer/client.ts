import { connect as tcpConnect } from 'node:net';
import { Readable } from 'node:stream';
import { Client, type ClientChannel } from 'ssh2';
import { FerryError, type ErrorCode } from '../errors';
import { coalesceWrites } from '../stream/coalesce';
import { parseKey } from './keys';
import { encodeRequest, type TransferRequest } from './protocol';
import { STREAM_BUFFER_BYTES } from '../stream/buffer-size';
import { ENVELOPE_ENV, ENVELOPE_VERSIONS } from '../stream/envelope-version';

/** Where a peer's transfer service is and which host key it must show. */
export interface Peer {
  name: string;
  /** "ip:port" */
  address: string;
  hostKey: string;
}

// AES-GCM first: the fastest cipher ssh2 has on these machines (DESIGN: ~280 MiB/s).
const CIPHERS = ['aes128-gcm@openssh.com', 'aes128-ctr'];

/** One authenticated, encrypted connection to a peer's transfer service. */
export class TransferClient {
  private constructor(
    private readonly conn: Client,
    readonly peer: Peer,
  ) {}

  static connect(peer: Peer, privateKey: string, timeoutMs = 10_000): Promise<TransferClient> {
    const [host, port] = splitAddress(peer.address);
    const expected = parseKey(peer.hostKey, `node ${peer.name}`).getPublicSSH();
    const unreachable = (err: Error): FerryError =>
      new FerryError('NODE_UNREACHABLE', `cannot reach the transfer service of ${peer.name} at ${peer.address}: ${err.message}`, { cause: err });
    return new Promise((resolve, reject) => {
      // ssh2 gets a socket of ferry's making so that its writes can be coalesced.
      const sock = coalesceWrites(tcpConnect({ host, port, timeout: timeoutMs }));
      sock.once('timeout', () => sock.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      sock.once('error', (err) => reject(unreachable(err)));
      sock.once('connect', () => {
        sock.setTimeout(0);
        const conn = new Client();
        conn.once('ready', () => resolve(new TransferClient(conn, peer)));
        conn.once('error', (err) => reject(unreachable(err)));
        conn.connect({
          sock,
          username: 'ferry',
          privateKey,
          readyTimeout: timeoutMs,
          keepaliveInterval: 5000,
          keepaliveCountMax: 3,
          algorithms: { cipher: CIPHERS as never },
          hostVerifier: (key: Buffer) => key.equals(expected),
        });
      });
    });
  }

  /**
   * Sends a request; the returned stream carries the peer's answer and errors when the peer answers
   * with a failure (its FerryError code and message) or the connection breaks.
   */
  request(req: TransferRequest): Readable {
    let channel: ClientChannel | undefined;
    // A bare Readable fed by the channel, not a PassThrough: one stream hop less for each 32 KiB
    // packet. The channel pauses while the reader is behind, and its window then holds the sender back.
    const out = new Readable({ highWaterMark: STREAM_BUFFER_BYTES, read: () => void channel?.resume() });
    const unreachable = (err: Error): FerryError =>
      new FerryError('NODE_UNREACHABLE', `transfer with ${this.peer.name} failed: ${err.message}; the peer went away, the move is retried`, { cause: err });
    const onChannel = (err: Error | undefined, ch: ClientChannel): void => {
      if (err) {
        out.destroy(unreachable(err));
        return;
      }
      if (out.destroyed) {
        ch.close(); // the reader gave up before the channel opened
        return;
      }
      channel = ch;
      let stderr = '';
      let code: number | undefined;
      channel.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
      channel.on('exit', (c: number | null) => (code = c ?? -1));
      channel.on('data', (b: Buffer) => {
        if (!out.push(b)) ch.pause();
      });
      channel.on('close', () => {
        if (code === 0) {
          out.push(null);
          return;
        }
        const m = /^([A-Z_]+) ([\s\S]*)$/.exec(stderr.trim());
        const e = m
          ? new FerryError(m[1] as ErrorCode, `${this.peer.name}: ${m[2]}`)
          : new FerryError('NODE_UNREACHABLE', `transfer from ${this.peer.name} broke off${code === undefined ? '' : ` (exit ${code})`}${stderr ? `: ${stderr.trim()}` : ''}`);
        out.destroy(e);
      });
      out.on('close', () => ch.close());
    };
    try {
      // Names the envelope versions this host reads, so that the peer writes one of them.
      this.conn.exec(encodeRequest(req), { env: { [ENVELOPE_ENV]: ENVELOPE_VERSIONS.join(',') } }, onChannel);
    } catch (err) {
      // ssh2 throws "Not connected" at once when the connection has gone (the peer died).
      process.nextTick(() => out.destroy(unreachable(err as Error)));
    }
    return out;
  }

  /** Sends a request whose answer is small, and returns it as text. */
  async ask(req: TransferRequest): Promise<string> {
    const parts: Buffer[] = [];
    for await (const c of this.request(req)) parts.push(c as Buffer);
    return Buffer.concat(parts).toString('utf8');
  }

  close(): void {
    this.conn.end();
  }
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new FerryError('INVALID_CONFIG', `transfer address ${JSON.stringify(address)} must look like host:port`);
  }
  return [address.slice(0, i), port];
}
