import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { AgentMetrics } from '../../src/metrics/agent-metrics';
import { ControlMetrics } from '../../src/metrics/control-metrics';

const REPO = join(__dirname, '../../..');

/** Every series name a scrape can show, with the labels of each (histograms as _bucket, _sum, _count). */
function exported(...registries: Registry[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const r of registries) {
    for (const m of r.getMetricsAsArray()) {
      const labels = new Set([...((m as unknown as { labelNames?: string[] }).labelNames ?? []), 'instance', 'job']);
      const names = m.constructor.name === 'Histogram' ? ['_bucket', '_sum', '_count'].map((s) => m.name + s) : [m.name];
      for (const n of names) out.set(n, n.endsWith('_bucket') ? new Set([...labels, 'le']) : labels);
    }
  }
  return out;
}

const none = async (): Promise<never[]> => [];
const agent = new AgentMetrics({ node: 'h1', volumes: none, pools: none, movesInFlight: () => 0 });
const control = new ControlMetrics({ volumes: none, nodes: none, movesByState: () => [], activeMoves: () => [], eventsByKind: () => [] }, { processMetrics: false });
const series = exported(agent.registry, control.registry);
const ferrySeries = [...series.keys()].filter((n) => n.startsWith('ferry_'));

interface Panel {
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(REPO, 'docs/grafana/ferry.json'), 'utf8')) as { panels: Panel[]; templating: { list: { query?: unknown }[] } };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const exprs = [
  ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
  ...dashboard.templating.list.filter((v) => v.query && typeof v.query === 'object').map((v) => ({ where: 'a variable', expr: (v.query as { query: string }).query })),
];
const METRIC = /\b((?:ferry|process|nodejs)_[a-zA-Z0-9_]+)\b/g;

describe('metrics: the Grafana dashboard and the README name only exported series', function () {
  it('has panels, each with a query', function () {
    expect(exprs.length).to.be.above(20);
    for (const p of panels.filter((x) => (x as { type?: string }).type !== 'row')) expect(p.targets?.length, p.title).to.be.above(0);
  });

  it('every expression names at least one series, and only exported ones', function () {
    for (const { where, expr } of exprs) {
      const names = [...expr.matchAll(METRIC)].map((m) => m[1]);
      expect(names, `${where}: ${expr}`).to.not.be.empty;
      for (const n of names) expect(series.has(n), `${where}: ${n} is not a series ferry exports`).to.equal(true);
    }
  });

  it('every label an expression groups by or selects on belongs to a series it names', function () {
    for (const { where, expr } of exprs) {
      const labels = new Set([...expr.matchAll(METRIC)].flatMap((m) => [...series.get(m[1])!]));
      const used = [
        ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((s) => s.trim())),
        ...[...expr.matchAll(/[{,]\s*([a-zA-Z_]+)\s*(?:=~|!=|=)/g)].map((m) => m[1]),
        ...[...expr.matchAll(/label_values\([^,]+,\s*([a-zA-Z_]+)\)/g)].map((m) => m[1]),
      ];
      for (const l of used) expect(labels.has(l), `${where}: label ${l} in ${expr}`).to.equal(true);
    }
  });

  it('shows every ferry series somewhere', function () {
    const shown = new Set(exprs.flatMap(({ expr }) => [...expr.matchAll(METRIC)].map((m) => m[1].replace(/_(bucket|sum|count)$/, ''))));
    const families = new Set(ferrySeries.map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect([...families].filter((f) => !shown.has(f) && !shown.has(`${f}`))).to.deep.equal([]);
  });

  it('the README documents every ferry series, and no other', function () {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const documented = new Set([...readme.matchAll(/^\| `(ferry_[a-z0-9_]+)`/gm)].map((m) => m[1]));
    const families = [...new Set(ferrySeries.map((n) => n.replace(/_(bucket|sum|count)$/, '')))].filter((f) => series.has(f) || series.has(`${f}_bucket`));
    expect([...families].filter((f) => !documented.has(f)), 'series missing from the README table').to.deep.equal([]);
    expect([...documented].filter((d) => !families.includes(d)), 'README rows naming no series').to.deep.equal([]);
  });
});
