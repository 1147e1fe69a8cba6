/**
 * A reader of Prometheus' text exposition format, for tests that scrape a live ferry: every sample
 * keyed by its name and labels (sorted), as `name{a="1",b="2"}`, and the names of the metric families.
 */
export interface Scrape {
  /** Sample value by `name{labels}` (labels sorted by name; `name` alone when it has none). */
  samples: Map<string, number>;
  /** Metric family names (from `# TYPE` lines). */
  families: Set<string>;
  /** The value of `name` with exactly `labels`, or undefined when there is no such sample. */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** The value, or 0 when absent (a counter or histogram not touched yet). */
  value(name: string, labels?: Record<string, string>): number;
}

export function sampleKey(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseScrape(text: string): Scrape {
  const samples = new Map<string, number>();
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      families.add(line.split(' ')[2]);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = JSON.parse(`"${l[2]}"`) as string;
    const key = sampleKey(m[1], labels);
    if (samples.has(key)) throw new Error(`sample ${key} appears twice`);
    samples.set(key, m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]));
  }
  const get = (name: string, labels?: Record<string, string>): number | undefined => samples.get(sampleKey(name, labels));
  return { samples, families, get, value: (name, labels) => get(name, labels) ?? 0 };
}

/** GETs `url` (with a bearer token when given) and parses the answer; throws on a status other than 200. */
export async function scrape(url: string, token?: string): Promise<Scrape> {
  const r = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`GET ${url} answered ${r.status}: ${text.slice(0, 300)}`);
  if (!/^text\/plain; version=0\.0\.4/.test(r.headers.get('content-type') ?? '')) throw new Error(`GET ${url}: content type ${r.headers.get('content-type')}`);
  return parseScrape(text);
}
