import { request as httpRequest, type Agent as HttpAgent } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FerryError } from '../errors';
import { errorFromBody } from './http-errors';

/**
 * Where one JSON-over-HTTP peer is and how to reach it: a Unix socket (the CLI to its local ferry)
 * or a URL (an agent to control over TCP, or TLS with `https:`).
 */
export interface JsonPeer {
  socketPath?: string;
  url?: URL;
  /** Keep-alive and TLS client certificates. */
  agent?: HttpAgent;
  headers?: Record<string, string>;
  /** A silent peer fails the call after this long; none by default. */
  timeoutMs?: number;
  /** The error for a peer that cannot be reached (refused, absent, timed out). */
  unreachable(err: NodeJS.ErrnoException): FerryError;
  /** The error for an answer that is not JSON. */
  notJson(status: number | undefined, text: string): FerryError;
}

/**
 * The one JSON-over-HTTP client: sends `body` as JSON, parses the JSON answer, and rejects with the
 * FerryError that an `{error}` body carries (http-errors, the other half of the servers' sendError).
 */
export function sendJson<T>(peer: JsonPeer, method: string, path: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)) } : {}), ...peer.headers };
    const onAnswer = (res: import('node:http').IncomingMessage): void => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          reject(peer.notJson(res.statusCode, text));
          return;
        }
        const err = errorFromBody(json);
        if (err) reject(err);
        else resolve(json as T);
      });
    };
    const options = { method, headers, agent: peer.agent, ...(peer.timeoutMs ? { timeout: peer.timeoutMs } : {}) };
    const req = peer.url
      ? (peer.url.protocol === 'https:' ? httpsRequest : httpRequest)(new URL(path, peer.url), options, onAnswer)
      : httpRequest({ ...options, socketPath: peer.socketPath, path }, onAnswer);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => reject(peer.unreachable(err)));
    req.end(payload);
  });
}
