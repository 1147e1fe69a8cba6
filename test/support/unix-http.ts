import { request, type RequestOptions } from 'node:http';

/** An answer's status and parsed JSON body. */
export interface JsonAnswer {
  status: number;
  json: Record<string, unknown>;
}

/**
 * Sends one HTTP request (over TCP or a Unix socket, as `options` say) with `text` as its body and
 * resolves with the answer's status and parsed JSON. With `options.timeout`, a silent peer fails it.
 */
export function requestJson(options: RequestOptions, text: string): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...options.headers };
    const req = request({ ...options, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown> });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${options.method ?? 'GET'} ${options.path} within ${options.timeout} ms`)));
    req.on('error', reject);
    req.end(text);
  });
}

/** POSTs (or sends `method`) to a Unix socket and returns status and parsed JSON body. */
export function unixRequest(socketPath: string, path: string, body?: unknown, method = 'POST'): Promise<JsonAnswer> {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  return requestJson({ socketPath, path, method }, text);
}
