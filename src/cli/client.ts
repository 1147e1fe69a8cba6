import { FerryError } from '../errors';
import { sendJson } from '../wire/json-client';

/** Calls the REST API of the local ferry over its Unix socket; API errors come back as FerryError. */
export function apiCall<T>(socketPath: string, method: string, path: string, body?: unknown): Promise<T> {
  return sendJson<T>(
    {
      socketPath,
      unreachable: (err) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          return new FerryError('NODE_UNREACHABLE', `ferry is not running on this host (nothing answers at ${socketPath}): start it with "ferry serve"`);
        }
        if (err.code === 'EACCES') return new FerryError('NODE_UNREACHABLE', `permission denied on ${socketPath}: run ferry as root`);
        return new FerryError('NODE_UNREACHABLE', `cannot reach ferry at ${socketPath}: ${err.message}`, { cause: err });
      },
      notJson: (status, text) => new FerryError('INTERNAL', `ferry answered ${status} with a body that is not JSON: ${text.slice(0, 200)}`),
    },
    method,
    path,
    body,
  );
}
