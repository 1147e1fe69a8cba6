import { existsSync } from 'node:fs';
import type { Config } from '../config/config';
import type { ControlClient } from '../control/control';
import { readToken } from '../control/service';
import type { Logger } from '../log';
import { loadOrCreateKey } from '../transfer/keys';
import { TransferServer } from '../transfer/server';
import type { Agent } from './agent';
import { DockerHost } from './docker-host';
import { httpControl } from './http-control';
import { Membership } from './membership';
import { Mover } from './mover';
import { SourceTransferHandler } from './transfer-handler';

/** The control client of an agent whose control service runs elsewhere. */
export function remoteControl(config: Config): ControlClient {
  return httpControl({ url: config.control.url!, token: readToken(config.control.tokenFile), tls: config.control.tls });
}

/**
 * Cluster mode: the transfer service (the source side of moves), the mover (the target side), and
 * registration with control, retried until control answers.
 */
export async function joinCluster(
  config: Config,
  agent: Agent,
  control: ControlClient,
  log: Logger,
): Promise<{ stop(): Promise<void> }> {
  const key = loadOrCreateKey(config.transfer.keyFile);
  const peers = async (): Promise<Map<string, string>> =>
    new Map((await control.listNodes()).filter((n) => n.transferKey && n.name !== config.nodeName).map((n) => [n.name, n.transferKey!]));
  const transfer = new TransferServer(key, peers, new SourceTransferHandler(agent, control), log.child({ component: 'transfer' }));
  const [host, port] = [config.transfer.listen.slice(0, config.transfer.listen.lastIndexOf(':')), Number(config.transfer.listen.split(':').pop())];
  const bound = await transfer.listen(port, host);
  const address = config.transfer.advertise ?? `${host}:${bound}`;
  const mover = new Mover(agent, control, key.privateKey, log.child({ component: 'mover' }), config.moves);
  agent.attachMover(mover, config.moves.mountWaitSeconds * 1000);
  if (existsSync(config.dockerSocket)) agent.attachDocker(new DockerHost(config.dockerSocket, log.child({ component: 'docker' })));
  const membership = new Membership(
    control,
    { name: config.nodeName, address, transferKey: key.publicKey },
    mover,
    agent,
    config.control.heartbeatSeconds * 1000,
    log.child({ component: 'membership' }),
  );
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      await membership.start();
      break;
    } catch (err) {
      log.warn({ err: (err as Error).message, retryInMs: delay }, 'cannot register with control yet');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  return {
    async stop() {
      membership.stop();
      await transfer.close();
    },
  };
}
