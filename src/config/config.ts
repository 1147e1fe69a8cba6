import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { FerryError } from '../errors';
import { DEFAULT_API_SOCKET, DEFAULT_DATA_DIR } from './defaults';
import { BACKENDS, BACKEND_KINDS, backendOptions, type BackendKind } from '../agent/backends/registry';

/** Each backend's own config section, under its kind, from its descriptor. */
type BackendSections = { [D in (typeof BACKENDS)[number] as D['kind']]: ReturnType<D['configSchema']> };
const backendSections = Object.fromEntries(BACKENDS.map((d) => [d.kind, d.configSchema(z)])) as BackendSections;

/** The Create options backends take beyond size (loop's `fs`), each an enum of every value some backend takes. */
const optionSchemas = Object.fromEntries(
  [...backendOptions()].map(([key, o]) => [key, z.enum(o.values as [string, ...string[]])]),
) as unknown as Record<'fs', z.ZodType<string>>;
const optionDefaults = Object.fromEntries([...backendOptions()].map(([key, o]) => [key, o.defaultValue])) as Record<'fs', string>;

/** A named set of Create options that `-o profile=NAME` applies (explicit options win). */
const profileSchema = z
  .object({
    backend: z.enum(BACKEND_KINDS).optional(),
    size: z.string().optional(),
    ...(Object.fromEntries(Object.entries(optionSchemas).map(([k, v]) => [k, v.optional()])) as Record<'fs', z.ZodOptional<z.ZodType<string>>>),
    /** policy (issue 7 item 3): the protection policy its volumes get (OpenSDS profiles; gold/silver/bronze). */
    policy: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/).max(40).optional(),
  })
  .strict();

const configSchema = z
  .object({
    /** This host's name in the cluster. */
    nodeName: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/).max(64),
    /** Where ferry keeps its database, pools and mountpoints. */
    dataDir: z.string().startsWith('/'),
    /** The Docker plugin socket that dockerd discovers. */
    pluginSocket: z.string().startsWith('/'),
    /** The socket of the REST API that the CLI talks to (root only). */
    apiSocket: z.string().startsWith('/'),
    /** dockerd's API socket, used to activate the plugin and to find containers using a volume. */
    dockerSocket: z.string().startsWith('/'),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    /** What a Create without options gets. */
    defaults: z
      .object({
        backend: z.enum(BACKEND_KINDS),
        /** Size for volumes created without `-o size`; absent means "the pool's limit" (btrfs, directory). */
        size: z.string().optional(),
        ...optionSchemas,
      })
      .strict(),
    profiles: z.record(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/), profileSchema),
    /** One section per backend, named after its kind (see each backend's descriptor). */
    ...backendSections,
    /** Where volumes are mounted for dockerd to bind into containers. */
    mountRoot: z.string().startsWith('/'),
    /** How often used bytes are measured and stray mounts retried, in seconds. */
    usageIntervalSeconds: z.number().int().min(1).max(86400),
    /** Cluster mode: where control is (agents) or listens (control), and the shared token. */
    control: z
      .object({
        url: z.string().url().optional(),
        listen: z.string().regex(/^[^:]+:\d+$/, 'host:port'),
        tokenFile: z.string().startsWith('/').optional(),
        heartbeatSeconds: z.number().min(0.2).max(60),
        /** A node silent this long is marked down. */
        downAfterSeconds: z.number().min(1).max(3600),
        tls: z.object({ ca: z.string().startsWith('/'), cert: z.string().startsWith('/'), key: z.string().startsWith('/') }).strict().optional(),
        /**
         * Read by ferry control (and ferry serve): after a move, the old host keeps its copy as a
         * replica (never mounted: control grants it no lease), so that a move back sends increments
         * only; false removes it. A volume created with `-o replica=keep|drop` overrides this.
         */
        keepReplica: z.boolean(),
        /**
         * reclaim: what `docker volume rm` and `prune` do with a volume's data when neither its
         * `-o reclaim` nor its policy says: delete it, or retain it for `retainRemoved` (7d).
         */
        reclaim: z.enum(['delete', 'retain']),
        retainRemoved: z.string().regex(/^[1-9][0-9]{0,8}[smhdw]$/, 'a duration such as 30s, 12h, 7d or 2w'),
        /**
         * fence: a primary host's right to mount its primary volumes lasts this long from the start of
         * its last heartbeat that control answered (agents: while control is unreachable; control:
         * no failover before it must have run out). Longer than heartbeatSeconds.
         */
        leaseSeconds: z.number().min(1).max(3600),
        /** fence: what control adds to leaseSeconds for clocks that run at different rates. */
        leaseMarginSeconds: z.number().min(0).max(600),
      })
      .strict()
      .refine((c) => c.leaseSeconds > 2 * c.heartbeatSeconds, {
        message: 'leaseSeconds must be more than twice heartbeatSeconds (a lease must outlive a missed heartbeat)',
        path: ['leaseSeconds'],
      }),
    /** Host-to-host dataset streams (ssh2). */
    transfer: z
      .object({
        listen: z.string().regex(/^[^:]+:\d+$/, 'host:port'),
        /** The address other hosts reach this one at, "ip:port" (default: the listen address). */
        advertise: z.string().regex(/^[^:]+:\d+$/, 'host:port').optional(),
        keyFile: z.string().startsWith('/'),
      })
      .strict(),
    /**
     * The web listener of `ferry serve` and `ferry agent`: /metrics and the dashboard (`ferry control`
     * serves both on its own listener, under the cluster token). "off" turns it off.
     */
    web: z
      .object({
        /** "host:port" or "off". Beyond loopback it needs a token: web.tokenFile, else control.tokenFile. */
        listen: z.union([z.literal('off'), z.string().regex(/^[^:]+:\d+$/, 'host:port or off')]),
        tokenFile: z.string().startsWith('/').optional(),
      })
      .strict(),
    moves: z
      .object({
        /** How long a Mount waits for a move before answering with its progress (dockerd allows 120). */
        mountWaitSeconds: z.number().min(1).max(115),
        /** A pause after each step of a move, in ms: only for tests that kill processes mid-move. */
        stepDelayMs: z.number().int().min(0).max(600_000),
      })
      .strict(),
    /** policy (issue 7 item 3): scheduled snapshots on each host. */
    schedules: z
      .object({
        /** How often a host asks control for policies and its volumes' schedules, in seconds. */
        refreshSeconds: z.number().min(0.2).max(3600),
      })
      .strict(),
  })
  .strict();

export type Config = Readonly<z.infer<typeof configSchema>>;

/** Settings a config file or flags may give; everything else comes from defaults. */
export type ConfigInput = Partial<Omit<z.infer<typeof configSchema>, BackendKind | 'defaults' | 'control' | 'transfer' | 'moves' | 'web' | 'schedules'>> & {
  schedules?: Partial<z.infer<typeof configSchema>['schedules']>;
  web?: Partial<z.infer<typeof configSchema>['web']>;
  control?: Partial<z.infer<typeof configSchema>['control']>;
  transfer?: Partial<z.infer<typeof configSchema>['transfer']>;
  moves?: Partial<z.infer<typeof configSchema>['moves']>;
  defaults?: Partial<z.infer<typeof configSchema>['defaults']>;
} & { [K in BackendKind]?: Partial<z.infer<typeof configSchema>[K]> };

function defaultsFor(dataDir: string): z.infer<typeof configSchema> {
  return {
    nodeName: hostname().split('.')[0] || 'localhost',
    dataDir,
    pluginSocket: '/run/docker/plugins/ferry.sock',
    apiSocket: DEFAULT_API_SOCKET,
    dockerSocket: '/var/run/docker.sock',
    logLevel: 'info',
    // The first registered backend is the default.
    defaults: { backend: BACKEND_KINDS[0], size: undefined, ...optionDefaults },
    profiles: {},
    ...(Object.fromEntries(BACKENDS.map((d) => [d.kind, d.configDefaults(dataDir)])) as { [K in BackendKind]: z.infer<BackendSections[K]> }),
    mountRoot: join(dataDir, 'mounts'),
    usageIntervalSeconds: 30,
    control: { listen: '0.0.0.0:7400', heartbeatSeconds: 2, downAfterSeconds: 10, keepReplica: true, reclaim: 'delete', retainRemoved: '7d', leaseSeconds: 30, leaseMarginSeconds: 2 },
    transfer: { listen: '0.0.0.0:7401', keyFile: join(dataDir, 'transfer', 'id_ed25519') },
    web: { listen: '127.0.0.1:7402' },
    moves: { mountWaitSeconds: 100, stepDelayMs: 0 },
    schedules: { refreshSeconds: 10 },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(base[k]) && k !== 'profiles' ? merge(base[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (isObject(o)) for (const v of Object.values(o)) deepFreeze(v);
  return Object.freeze(o);
}

/**
 * Builds the config once at start: defaults, then the file (if any), then flags. Validated against
 * the schema; a bad value fails with INVALID_CONFIG naming the setting and what is allowed.
 */
export function loadConfig(opts: { file?: string; overrides?: ConfigInput } = {}): Config {
  let fromFile: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new FerryError('INVALID_CONFIG', `cannot read config file ${opts.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (!isObject(parsed)) throw new Error('the top level must be a JSON object');
      fromFile = parsed;
    } catch (err) {
      throw new FerryError('INVALID_CONFIG', `config file ${opts.file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const overrides = (opts.overrides ?? {}) as Record<string, unknown>;
  for (const [where, given] of [[opts.file ?? 'the config', fromFile], ['the flags', overrides]] as const) {
    const moves = given.moves;
    if (isObject(moves) && moves.keepReplica !== undefined) {
      // Until 0.1 the target host's config decided; now control does, for the whole cluster.
      throw new FerryError(
        'INVALID_CONFIG',
        `moves.keepReplica in ${where} is no longer read: whether a moved volume's old host keeps a replica is now decided by ferry control. ` +
          `Remove moves.keepReplica here and set "control": {"keepReplica": ${JSON.stringify(moves.keepReplica)}} in the config of ferry control, ` +
          'or create single volumes with -o replica=keep or -o replica=drop',
      );
    }
  }
  const dataDir = (overrides.dataDir ?? fromFile.dataDir ?? DEFAULT_DATA_DIR) as string;
  const merged = merge(merge(defaultsFor(typeof dataDir === 'string' ? dataDir : DEFAULT_DATA_DIR), fromFile), overrides);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues
      .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
      .join('; ');
    throw new FerryError('INVALID_CONFIG', `invalid ferry config${opts.file ? ` (${opts.file})` : ''}: ${problems}`);
  }
  return deepFreeze(result.data);
}
