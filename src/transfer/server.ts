import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Server, type Connection } from 'ssh2';
import { FerryError, toFerryError } from '../errors';
import type { Logger } from '../log';
import { NO_METRICS, type MetricsSink } from '../metrics/sink';
import { parseKey, sameKey, type TransferKey } from './keys';
import { coalesceWrites } from '../stream/coalesce';
import { ENVELOPE_ENV, ENVELOPE_VERSIONS, envelopeFor, envelopeScope } from '../stream/envelope-version';
import { parseRequest, type TransferRequest } from './protocol';

/** What the agent does for a transfer request: a stream to send, or nothing. */
export interface TransferHandler {
  handle(req: TransferRequest, peer: string): Promise<Readable | undefined>;
}

/** The public keys allowed in, by node name (from control's node list). */
export type PeerKeys = () => Promise<Map<string, string>>;

/**
 * The transfer service of one host: ssh2 with this host's key, public-key authentication of other
 * cluster nodes only, and exec requests that parse as dataset requests. No shell, pty, sftp or forwarding.
 */
export class TransferServer {
  private readonly server: Server;
  /** Accepts the TCP connections and hands them to ssh2, with their writes coalesced. */
  private readonly listener: NetServer;
  private readonly connections = new Set<Connection>();

  constructor(
    key: TransferKey,
    peers: PeerKeys,
    handler: TransferHandler,
    private readonly log: Logger,
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {
    this.server = new Server({ hostKeys: [key.privateKey] }, (client: Connection) => {
      this.connections.add(client);
      client.on('close', () => this.connections.delete(client));
      let peer = '';
      client.on('authentication', (ctx) => {
        if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
        peers()
          .then((known) => {
            for (const [name, text] of known) {
              const k = parseKey(text, `node ${name}`);
              if (!sameKey(ctx.key, k)) continue;
              // Without a signature the client only asks whether the key would do.
              if (ctx.signature && k.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject();
              peer = name;
              return ctx.accept();
            }
            log.warn({ user: ctx.username }, 'transfer login with an unknown key refused');
            ctx.reject();
          })
          .catch(() => ctx.reject());
      });
      client.on('ready', () => {
        client.on('session', (acceptSession) => {
          const session = acceptSession();
          for (const ev of ['pty', 'shell', 'subsystem', 'x11', 'auth-agent'] as const) {
            session.on(ev, (_accept: unknown, reject?: () => void) => reject?.());
          }
          // The one variable a peer may set: the envelope versions it reads (before its exec).
          let envelope: string | undefined;
          session.on('env', (accept, reject, info) => {
            if (info.key !== ENVELOPE_ENV) return reject?.();
            envelope = info.val;
            accept?.();
          });
          session.on('exec', (accept, _reject, info) => {
            const channel = accept();
            // ssh2 never ends a channel whose window is full when its connection goes: a peer that
            // stopped reading (its receive failed) or died would leave `btrfs send` blocked for good,
            // pinning its snapshot. The stream ends with the connection.
            const gone = new AbortController();
            const onClose = (): void => gone.abort(new Error(`the connection from ${peer} closed`));
            client.once('close', onClose);
            void this.run(info.command, peer, envelope, handler, channel, channel.stderr, gone.signal).then((code) => {
              client.off('close', onClose);
              channel.exit(code);
              channel.end();
            });
          });
        });
      });
      client.on('error', (err) => log.debug({ err, peer }, 'transfer connection error'));
    });
    this.listener = createServer((socket) => this.server.injectSocket(coalesceWrites(socket)));
  }

  private async run(
    line: string,
    peer: string,
    envelope: string | undefined,
    handler: TransferHandler,
    out: Writable,
    err: Writable,
    signal: AbortSignal,
  ): Promise<number> {
    const started = Date.now();
    try {
      const req = parseRequest(line);
      const version = envelopeFor(envelope);
      if (version === undefined) {
        throw new FerryError(
          'INVALID_REQUEST',
          `${peer} reads dataset streams of envelope versions ${envelope} only, and this host writes ${ENVELOPE_VERSIONS.join(', ')}: run the same ferry version on both hosts`,
        );
      }
      // The backends' send() finds the version in the scope (see envelope-version.ts); a stream made
      // only as it is read (an async generator) finds it too, as it is read from inside.
      await envelopeScope.run(version, async () => {
        const stream = await handler.handle(req, peer);
        if (!stream) return;
        const piped = pipeline(stream, out, { end: false, signal });
        // Counted as it flows (pipeline has already piped it, so no chunk is missed): throughput.
        stream.on('data', (c: Buffer) => this.metrics.transferSent(c.length));
        await piped;
      });
      this.log.info({ op: `transfer ${req.op}`, volume: req.volume, peer, durationMs: Date.now() - started, outcome: 'ok' }, 'transfer request');
      return 0;
    } catch (e) {
      const fe = toFerryError(e);
      this.log.warn({ op: 'transfer', line, peer, code: fe.code, err: fe.message, outcome: 'error' }, 'transfer request');
      this.metrics.error(fe.code, 'transfer');
      err.write(`${fe.code} ${fe.message}\n`);
      return 1;
    }
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => resolve((this.listener.address() as AddressInfo).port));
    });
  }

  /** Stops listening and ends open connections (a peer's move then fails and is retried). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    for (const c of this.connections) c.end();
    return closed;
  }
}
