import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError } from '../errors';

/** The largest request body ferry's Unix-socket servers (plugin, REST API) read, in bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The request body as text. INVALID_REQUEST past MAX_BODY_BYTES (and the connection is dropped). */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new FerryError('INVALID_REQUEST', `request body is larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/** Answers `body` as JSON with `status`; the text is encoded once (a List of 1,000 is 200 KB). */
export function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json; charset=utf-8'): void {
  const data = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': data.length });
  res.end(data);
}
