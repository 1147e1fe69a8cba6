import { request } from 'node:http';
import { FerryError, type ErrorCode } from '../errors';

/** Calls the REST API of the local ferry over its Unix socket; API errors come back as FerryError. */
export function apiCall<T>(socketPath: string, method: string, path: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            reject(new FerryError('INTERNAL', `ferry answered ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`));
            return;
          }
          const err = (json as { error?: { code: ErrorCode; message: string } }).error;
          if ((res.statusCode ?? 500) >= 400 && err) reject(new FerryError(err.code, err.message));
          else resolve(json as T);
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new FerryError('NODE_UNREACHABLE', `ferry is not running on this host (nothing answers at ${socketPath}): start it with "ferry serve"`));
      } else if (err.code === 'EACCES') {
        reject(new FerryError('NODE_UNREACHABLE', `permission denied on ${socketPath}: run ferry as root`));
      } else reject(new FerryError('NODE_UNREACHABLE', `cannot reach ferry at ${socketPath}: ${err.message}`, { cause: err }));
    });
    if (payload) req.write(payload);
    req.end();
  });
}
