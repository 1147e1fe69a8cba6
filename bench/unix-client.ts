import { Agent, request } from 'node:http';

/** One HTTP answer with its parsed JSON body (undefined when the body is empty or not JSON). */
export interface UnixResponse {
  status: number;
  json: unknown;
  text: string;
}

/**
 * HTTP over a Unix socket. With `keepAlive` one connection is reused for every call, as dockerd's
 * plugin client does (moby pkg/plugins: one http.Client per plugin on a default http.Transport, which
 * keeps connections alive); without it each call opens and closes its own connection.
 */
export class UnixHttp {
  private readonly agent: Agent | false;

  constructor(
    readonly socketPath: string,
    keepAlive: boolean,
  ) {
    this.agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
  }

  call(method: string, path: string, body?: unknown, timeoutMs = 180_000): Promise<UnixResponse> {
    return new Promise((resolve, reject) => {
      const text = body === undefined ? '' : JSON.stringify(body);
      const req = request(
        {
          socketPath: this.socketPath,
          path,
          method,
          agent: this.agent,
          timeout: timeoutMs,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            const out = Buffer.concat(parts).toString('utf8');
            let json: unknown;
            try {
              json = out ? JSON.parse(out) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, json, text: out });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${this.socketPath} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(text);
    });
  }

  close(): void {
    if (this.agent) this.agent.destroy();
  }
}

/** The Docker volume plugin protocol over a socket: POST with a JSON body; a non-empty `Err` throws. */
export class PluginClient {
  readonly http: UnixHttp;

  constructor(socketPath: string, keepAlive: boolean) {
    this.http = new UnixHttp(socketPath, keepAlive);
  }

  async call(endpoint: string, body: object = {}): Promise<Record<string, unknown>> {
    const r = await this.http.call('POST', endpoint, body);
    const json = (r.json ?? {}) as Record<string, unknown>;
    if (r.status !== 200 || (typeof json.Err === 'string' && json.Err !== '')) {
      throw new Error(`${endpoint} ${JSON.stringify(body)} failed (HTTP ${r.status}): ${typeof json.Err === 'string' ? json.Err : r.text}`);
    }
    return json;
  }

  close(): void {
    this.http.close();
  }
}

/** dockerd's Engine API over /var/run/docker.sock; a status of 300 or more throws with dockerd's message. */
export class DockerApi {
  readonly http: UnixHttp;

  constructor(socketPath = '/var/run/docker.sock') {
    this.http = new UnixHttp(socketPath, true);
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const r = await this.http.call(method, path, body);
    if (r.status >= 300) {
      const msg = (r.json as { message?: string } | undefined)?.message ?? r.text;
      throw Object.assign(new Error(`dockerd ${method} ${path}: HTTP ${r.status}: ${msg}`), { status: r.status });
    }
    return r.json;
  }

  close(): void {
    this.http.close();
  }
}

/** `?filters=` for the Engine API from `{ key: [values] }`. */
export function filtersQuery(filters: Record<string, string[]>): string {
  return `filters=${encodeURIComponent(JSON.stringify(filters))}`;
}
