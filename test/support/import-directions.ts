import { dirname, join, normalize } from 'node:path';
import ts from 'typescript';

/**
 * Which parts of ferry may import which (DESIGN: imports point one way). A part is a folder under
 * src/ (src/agent/backends is its own part, `backends`), or one of the top files errors, log, serve.
 * An entry with a `/` is one file (path under src/) rather than a whole part. A part may always
 * import its own files. Packages: where `packages` lists a part, it may load only those (and node:
 * built-ins).
 *
 * - errors, log, stream: the ground; they import no other part.
 * - wire: the records, the ControlClient interface, AGENT_CALLS's schemas, the JSON client and the
 *   FerryError<->HTTP translation that control, agents and the CLI share; only errors and volume
 *   (names, sizes), and no server package (no express, no sqlite).
 * - control: the cluster's truth (SQLite, moves, the cluster API); never the agent, the plugin, the
 *   local API or the CLI: it knows agents only through wire. It serves the dashboard (web) on its
 *   own listener, so it may import web, which reads control only through wire's ControlClient.
 * - agent: talks to control only through wire (never control's server files); uses backends and transfer.
 *   One file of control is the agent's too: control/move-states.ts, the pure move state machine that
 *   the target's mover steps through and control enforces (no I/O, no server).
 * - backends: never the agent that uses them, except two leaf helpers that sit in agent/ and import
 *   nothing (mount-table.ts, keyed-lock.ts; candidates for a shared folder).
 * - transfer: host-to-host streams; never the agent or control.
 * - plugin (Docker's wire) and api (the CLI's local API): adapters over the agent; never control.
 * - web: the web listener of serve and agent (/metrics, the dashboard); reads through wire, never the
 *   agent or control directly (what it shows is handed to it).
 * - metrics: Prometheus series (prom-client), each process its own registry; reads what it shows
 *   through facts handed to it (wire's records), never the agent or control. The plugin server, the
 *   transfer server and the agent's mover tell it what happens through metrics/sink.ts (a plain
 *   interface); control and serve serve it.
 * - cli: wire and config to talk to a running ferry; serve and control/service.ts only to start one.
 * - registry: the light half of the backends (backend.ts's interfaces, the registry and each
 *   backend's descriptor: kind, config section, Create options, size rules, abilities, a lazy
 *   factory). config, volume and cli read it; it loads no backend implementation, but for a
 *   descriptor's lazy `import()` of its own folder's implementation.
 * - doctor: `ferry doctor`'s decisions (pure) and the probes that only read the host, dockerd and the
 *   plugin socket; the agent (its share of the checks) and the CLI use it. It never imports either.
 * - bank: the backup format and its object stores (file://, s3://): chunker, seal, manifests, the
 *   tree archive; a library the agent (backup, restore) and control (bank add's key check, listing)
 *   use. It never imports them.
 * - serve: the composition root; it may import anything.
 */
export const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  log: [],
  stream: [],
  exec: ['errors', 'log', 'stream'],
  bank: ['errors', 'log', 'exec', 'stream', 'volume'],
  config: ['errors', 'registry'],
  volume: ['errors', 'config', 'registry'],
  registry: ['errors', 'log', 'exec', 'volume'],
  wire: ['errors', 'volume'],
  transfer: ['errors', 'log', 'stream', 'volume', 'metrics/sink.ts'],
  backends: ['errors', 'log', 'exec', 'config', 'volume', 'stream', 'registry', 'agent/mount-table.ts', 'agent/keyed-lock.ts'],
  agent: ['errors', 'log', 'exec', 'config', 'volume', 'stream', 'wire', 'backends', 'registry', 'transfer', 'doctor', 'bank', 'control/move-states.ts', 'metrics/sink.ts'],
  control: ['errors', 'log', 'config', 'volume', 'wire', 'web', 'metrics', 'bank'],
  plugin: ['errors', 'log', 'volume', 'wire', 'agent', 'metrics/sink.ts'],
  metrics: ['errors', 'log', 'wire'],
  api: ['errors', 'log', 'volume', 'wire', 'agent'],
  web: ['errors', 'log', 'config', 'volume', 'wire'],
  cli: ['errors', 'log', 'config', 'volume', 'wire', 'registry', 'doctor', 'serve', 'control/service.ts'],
  doctor: ['errors', 'config', 'volume', 'wire', 'registry'],
  serve: ['*'],
};

/** Parts that may load only these packages (besides node: built-ins). */
export const PACKAGES: Record<string, readonly string[]> = {
  wire: ['zod'],
  errors: [],
  volume: [],
};

/** The light half of agent/backends: interfaces, the registry, the descriptors. */
const REGISTRY_FILES = /^agent\/backends\/(backend|registry|descriptor|[^/]+\/descriptor)\.ts$/;

/** The part a file under src/ belongs to ("agent/mounts.ts" -> agent). */
export function partOf(path: string): string {
  const [top, second] = path.split('/');
  if (top.endsWith('.ts')) return top.slice(0, -3);
  if (top === 'agent' && second === 'backends') return REGISTRY_FILES.test(path) ? 'registry' : 'backends';
  return top;
}

/** Every module specifier a source imports: static imports and re-exports, `import()` and `require()`. */
export function specifiersOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** A relative specifier resolved against the files that exist (path under src/), else undefined. */
function resolve(from: string, spec: string, files: ReadonlySet<string>): string | undefined {
  const base = normalize(join(dirname(from), spec));
  return [`${base}.ts`, `${base}/index.ts`, base].find((p) => files.has(p));
}

/**
 * True when `source` loads `spec` only through `import()`: a backend's descriptor loads its own
 * implementation that way, when an agent makes its backends (config and the CLI never pay for it).
 */
function lazilyImports(source: string, spec: string): boolean {
  const quoted = `['"]${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"]`;
  return new RegExp(`import\\(\\s*${quoted}\\s*\\)`).test(source) && !new RegExp(`from\\s+${quoted}`).test(source);
}

export interface Violation {
  file: string;
  imports: string;
  why: string;
}

/**
 * Checks every file (path under src/ -> its text) against the table: each relative import must go to
 * the file's own part or one it may use; each package to one its part may load.
 */
export function checkImports(
  files: ReadonlyMap<string, string>,
  allowed: Record<string, readonly string[]> = ALLOWED,
  packages: Record<string, readonly string[]> = PACKAGES,
): Violation[] {
  const names = new Set(files.keys());
  const out: Violation[] = [];
  for (const [file, text] of files) {
    const part = partOf(file);
    const rule = allowed[part];
    for (const spec of specifiersOf(text)) {
      if (!spec.startsWith('.')) {
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        const only = packages[part];
        if (only && !spec.startsWith('node:') && !only.includes(pkg)) out.push({ file, imports: spec, why: `${part} may load only ${only.join(', ') || 'no package'}` });
        continue;
      }
      const target = resolve(file, spec, names);
      if (!target) {
        out.push({ file, imports: spec, why: 'does not resolve to a file under src/' });
        continue;
      }
      const to = partOf(target);
      if (to === part) continue;
      if (part === 'registry' && to === 'backends' && dirname(target) === dirname(file) && lazilyImports(text, spec)) continue;
      if (!rule) {
        out.push({ file, imports: target, why: `part ${part} has no entry in the table of directions` });
        continue;
      }
      if (rule.includes('*') || rule.includes(to) || rule.includes(target)) continue;
      out.push({ file, imports: target, why: `${part} must not import ${to}` });
    }
  }
  return out;
}
