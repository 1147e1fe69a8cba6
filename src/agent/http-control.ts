import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { AGENT_CALLS, encodeArgs, type AgentCall } from '../control/cluster-api';
import type { ControlClient } from '../control/control';
import { FerryError, type ErrorCode } from '../errors';

/** Where control is and how to prove who we are. TLS files make it mutual TLS. */
export interface ControlEndpoint {
  url: string;
  token: string;
  tls?: { ca: string; cert: string; key: string };
  timeoutMs?: number;
}

/** A ControlClient that calls `ferry control` over HTTP(S): the same calls as LocalControl, remote. */
export function httpControl(ep: ControlEndpoint): ControlClient {
  const base = new URL(ep.url);
  const https = base.protocol === 'https:';
  const agent = https
    ? new HttpsAgent({
        keepAlive: true,
        ...(ep.tls ? { ca: readFileSync(ep.tls.ca), cert: readFileSync(ep.tls.cert), key: readFileSync(ep.tls.key) } : {}),
      })
    : undefined;

  const call = (method: AgentCall, args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ args: encodeArgs(method, args) });
      const req = (https ? httpsRequest : httpRequest)(
        new URL(`/v1/agent/${method}`, base),
        {
          method: 'POST',
          agent,
          timeout: ep.timeoutMs ?? 15_000,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Authorization: `Bearer ${ep.token}` },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            let json: { result?: unknown; error?: { code: ErrorCode; message: string } };
            try {
              json = JSON.parse(Buffer.concat(parts).toString('utf8')) as typeof json;
            } catch {
              reject(new FerryError('NODE_UNREACHABLE', `control at ${ep.url} answered ${res.statusCode} with something that is not JSON`));
              return;
            }
            if (json.error) reject(new FerryError(json.error.code, json.error.message));
            else resolve(json.result === null ? undefined : json.result);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) => reject(new FerryError('NODE_UNREACHABLE', `control at ${ep.url} is unreachable (${err.message}): is ferry control running and reachable?`, { cause: err })));
      req.end(body);
    });

  const client: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const method of Object.keys(AGENT_CALLS) as AgentCall[]) client[method] = (...args) => call(method, args);
  return client as unknown as ControlClient;
}
