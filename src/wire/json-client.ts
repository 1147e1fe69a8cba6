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

/**
 * bank-ops: sendJson for a long operation answered as NDJSON (the local API's `?progress=1`): each
 * `{"progress": ...}` line goes to `onProgress`; the last line's `{"result": ...}` resolves, its
 * `{"error": ...}` rejects with that FerryError. An answer that is plain JSON (an error before the
 * work began) is read as sendJson reads it.
 */
export function sendJsonStream<T>(peer: JsonPeer, method: string, path: string, body: unknown, onProgress: (p: unknown) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body ?? {});
    const headers = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)), ...peer.headers };
    const onAnswer = (res: import('node:http').IncomingMessage): void => {
      let pending = '';
      let settled = false;
      const line = (text: string): void => {
        if (!text.trim() || settled) return;
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          settled = true;
          reject(peer.notJson(res.statusCode, text));
          return;
        }
        const err = errorFromBody(json);
        if (err) {
          settled = true;
          reject(err);
          return;
        }
        const o = json as { progress?: unknown; result?: unknown };
        if ('progress' in o) onProgress(o.progress);
        else if ('result' in o) {
          settled = true;
          resolve(o.result as T);
        }
      };
      const ndjson = String(res.headers['content-type'] ?? '').startsWith('application/x-ndjson');
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        pending += c;
        if (!ndjson) return;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const l of lines) line(l);
      });
      res.on('end', () => {
        line(pending);
        if (!settled) reject(peer.notJson(res.statusCode, 'the answer ended before its result'));
      });
    };
    // No keep-alive agent (Node's global one drops a socket silent for 5 s): a long operation may be
    // quiet between its progress lines (a snapshot, a lock wait).
    const options = { method, headers, agent: peer.agent ?? false };
    const req = peer.url
      ? (peer.url.protocol === 'https:' ? httpsRequest : httpRequest)(new URL(path, peer.url), options, onAnswer)
      : httpRequest({ ...options, socketPath: peer.socketPath, path }, onAnswer);
    req.on('error', (err: NodeJS.ErrnoException) => reject(peer.unreachable(err)));
    req.end(payload);
  });
}
