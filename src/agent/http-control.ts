import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { FerryError } from '../errors';
import { AGENT_CALLS, encodeArgs, type AgentCall } from '../wire/agent-calls';
import type { ControlClient } from '../wire/control-client';
import { sendJson, type JsonPeer } from '../wire/json-client';

/** Where control is and how to prove who we are. TLS files make it mutual TLS. */
export interface ControlEndpoint {
  url: string;
  token: string;
  tls?: { ca: string; cert: string; key: string };
  timeoutMs?: number;
}

/** A ControlClient that calls `ferry control` over HTTP(S): the same calls as LocalControl, remote. */
export function httpControl(ep: ControlEndpoint): ControlClient {
  const url = new URL(ep.url);
  const peer: JsonPeer = {
    url,
    agent:
      url.protocol === 'https:'
        ? new HttpsAgent({
            keepAlive: true,
            ...(ep.tls ? { ca: readFileSync(ep.tls.ca), cert: readFileSync(ep.tls.cert), key: readFileSync(ep.tls.key) } : {}),
          })
        : undefined,
    headers: { Authorization: `Bearer ${ep.token}` },
    timeoutMs: ep.timeoutMs ?? 15_000,
    unreachable: (err) =>
      new FerryError('NODE_UNREACHABLE', `control at ${ep.url} is unreachable (${err.message}): is ferry control running and reachable?`, { cause: err, details: { controlUnreachable: true } }),
    notJson: (status) => new FerryError('NODE_UNREACHABLE', `control at ${ep.url} answered ${status} with something that is not JSON`, { details: { controlUnreachable: true } }),
  };
  const call = async (method: AgentCall, args: unknown[]): Promise<unknown> => {
    const { result } = await sendJson<{ result?: unknown }>(peer, 'POST', `/v1/agent/${method}`, { args: encodeArgs(method, args) });
    return result === null ? undefined : result;
  };
  const client: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const method of Object.keys(AGENT_CALLS) as AgentCall[]) client[method] = (...args) => call(method, args);
  return client as unknown as ControlClient;
}
