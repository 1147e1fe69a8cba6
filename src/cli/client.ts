import { FerryError } from '../errors';
import { sendJson, sendJsonStream, type JsonPeer } from '../wire/json-client';

/** Calls the REST API of the local ferry over its Unix socket; API errors come back as FerryError. */
/** The local ferry's API socket as a JSON peer, with the CLI's messages for a ferry that does not answer. */
function localPeer(socketPath: string): JsonPeer {
  return {
    socketPath,
    unreachable: (err) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        return new FerryError('NODE_UNREACHABLE', `ferry is not running on this host (nothing answers at ${socketPath}): start it with "ferry serve"`);
      }
      if (err.code === 'EACCES') return new FerryError('NODE_UNREACHABLE', `permission denied on ${socketPath}: run ferry as root`);
      return new FerryError('NODE_UNREACHABLE', `cannot reach ferry at ${socketPath}: ${err.message}`, { cause: err });
    },
    notJson: (status, text) => new FerryError('INTERNAL', `ferry answered ${status} with a body that is not JSON: ${text.slice(0, 200)}`),
  };
}

/** Calls the REST API of the local ferry over its Unix socket; API errors come back as FerryError. */
export function apiCall<T>(socketPath: string, method: string, path: string, body?: unknown): Promise<T> {
  return sendJson<T>(localPeer(socketPath), method, path, body);
}

/** bank-ops: a long call with its progress streamed (`?progress=1`), each progress sample to `onProgress`. */
export function apiStream<T>(socketPath: string, method: string, path: string, body: unknown, onProgress: (p: unknown) => void): Promise<T> {
  return sendJsonStream<T>(localPeer(socketPath), method, `${path}${path.includes('?') ? '&' : '?'}progress=1`, body, onProgress);
}
