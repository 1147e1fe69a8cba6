import { expect } from 'chai';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createClusterApi } from '../../src/control/cluster-api';
import { LocalControl } from '../../src/control/control';
import { openDb, type Db } from '../../src/control/db';
import { silentLogger } from '../../src/log';
import { createDashboard, type Dashboard } from '../../src/web/dashboard';
import type { DashboardPatch } from '../../src/web/dashboard-view';
import { startWebListener, type WebListener } from '../../src/web/web-listener';

const log = silentLogger();
const TOKEN = 'dashboard-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

/** Reads server-sent events from a fetch body until `until` holds or the deadline passes. */
async function readEvents(res: Response, until: (events: { type: string; data: unknown }[]) => boolean, ms = 10_000): Promise<{ type: string; data: unknown }[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { type: string; data: unknown }[] = [];
  const deadline = setTimeout(() => void reader.cancel('deadline'), ms);
  let buf = '';
  try {
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before the awaited events; got ${JSON.stringify(events)}`);
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const type = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (type && data) events.push({ type, data: JSON.parse(data) });
      }
    }
    return events;
  } finally {
    clearTimeout(deadline);
    await reader.cancel().catch(() => undefined);
  }
}

describe('dashboard: page, API and event stream', () => {
  let db: Db;
  let control: LocalControl;
  let reads = 0;
  let dashboard: Dashboard;
  let web: WebListener | undefined;

  beforeEach(async () => {
    db = openDb(':memory:');
    control = new LocalControl(db);
    reads = 0;
    const counted = Object.create(control) as LocalControl;
    counted.listVolumes = async () => {
      reads++;
      return control.listVolumes();
    };
    dashboard = createDashboard({ control: counted }, { token: TOKEN, where: 'the test' }, log, 50);
    // On loopback with no listener token: the dashboard's API asks for its own all the same.
    web = await startWebListener('127.0.0.1:0', undefined, dashboard.routes, log);
  });
  afterEach(async () => {
    dashboard.stop();
    await web?.stop();
    db.close();
  });

  it('serves the page without a token, under a strict content security policy; /ui redirects to /ui/', async () => {
    const page = await fetch(`${web!.url}/ui/`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.match(/text\/html/);
    expect(page.headers.get('content-security-policy')).to.match(/default-src 'none'; script-src 'self'/);
    expect(await page.text()).to.match(/<script src="app.js"/);
    expect((await fetch(`${web!.url}/ui/app.js`)).headers.get('content-type')).to.match(/javascript/);
    expect((await fetch(`${web!.url}/ui/style.css`)).status).to.equal(200);
    const bare = await fetch(`${web!.url}/ui`, { redirect: 'manual' });
    expect(bare.status).to.equal(301);
    expect(bare.headers.get('location')).to.equal('/ui/');
  });

  it('refuses the API without the token or with a wrong one, even on loopback', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }] as Record<string, string>[]) {
      const r = await fetch(`${web!.url}/ui/api/view`, { headers });
      expect(r.status).to.equal(401);
      expect(((await r.json()) as { error: { message: string } }).error.message).to.match(/missing or wrong token.*the test/);
    }
    expect((await fetch(`${web!.url}/ui/api/events`)).status).to.equal(401);
  });

  it('answers the whole view with the token', async () => {
    await control.reserveVolume({ name: 'v1', backend: 'btrfs', sizeBytes: 2 ** 30, options: {}, primaryNode: 'h1' });
    await control.confirmVolume('v1', 'h1');
    const r = await fetch(`${web!.url}/ui/api/view`, { headers: auth });
    expect(r.status).to.equal(200);
    const view = (await r.json()) as { volumes: Record<string, { size: string }>; events: Record<string, { kind: string }> };
    expect(view.volumes.v1.size).to.equal('1.0 GiB');
    expect(Object.values(view.events).map((e) => e.kind)).to.include('created');
  });

  it('shows the pools hosts reported to control, and the serving host\'s own read fresh', async () => {
    const GiB = 2 ** 30;
    await control.reportHost({ node: 'h2', backends: [{ kind: 'btrfs', ok: true, totalBytes: 10 * GiB, freeBytes: GiB / 2 }], orphans: [{ backend: 'btrfs', name: 'stray', reason: 'no record' }], missing: [] });
    // An older report of the serving host itself loses to its fresh one.
    await control.reportHost({ node: 'h1', backends: [{ kind: 'btrfs', ok: true, totalBytes: GiB, freeBytes: GiB }], orphans: [], missing: [] });
    const own = createDashboard(
      { control, hostReport: async () => ({ node: 'h1', backends: [{ kind: 'btrfs', ok: true, totalBytes: 4 * GiB, freeBytes: 3 * GiB }], orphans: [], missing: [] }) },
      { token: TOKEN, where: 'the test' },
      log,
    );
    const ownWeb = await startWebListener('127.0.0.1:0', undefined, own.routes, log);
    try {
      type View = { hosts: Record<string, { pools: { free?: string; total?: string }[] | null; reportedAt: string | null }>; attention: Record<string, unknown> };
      const view = (await (await fetch(`${ownWeb.url}/ui/api/view`, { headers: auth })).json()) as View;
      expect(view.hosts.h1.pools).to.deep.equal([{ kind: 'btrfs', ok: true, free: '3.0 GiB', total: '4.0 GiB', freePercent: 75 }]);
      expect(view.hosts.h2.pools?.[0]).to.include({ free: '512.0 MiB', total: '10.0 GiB' });
      expect(view.hosts.h2.reportedAt).to.be.a('string');
      expect(view.attention).to.have.keys('orphan:h2:btrfs:stray', 'pool-low:h2:btrfs');
    } finally {
      own.stop();
      await ownWeb.stop();
    }
  });

  it('streams a snapshot, then only what changed; reads nothing while nobody watches', async () => {
    const idle = reads;
    // Five intervals with no watcher: no reads (waited for by a stream that then opens and closes).
    await new Promise((r) => setTimeout(r, 250));
    expect(reads).to.equal(idle);
    const ctl = new AbortController();
    const res = await fetch(`${web!.url}/ui/api/events`, { headers: auth, signal: ctl.signal });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/text\/event-stream/);
    const made = (async () => {
      await control.reserveVolume({ name: 'fresh', backend: 'btrfs', sizeBytes: 2 ** 26, options: {}, primaryNode: 'h1' });
      await control.confirmVolume('fresh', 'h1');
    })();
    const events = await readEvents(res, (ev) => ev.some((e) => e.type === 'patch' && (e.data as DashboardPatch).set.volumes?.fresh !== undefined));
    await made;
    expect(events[0].type).to.equal('snapshot');
    const patch = events.find((e) => e.type === 'patch' && (e.data as DashboardPatch).set.volumes?.fresh)!.data as DashboardPatch;
    // Only what changed: the new volume and its event, not the hosts or the moves.
    expect(Object.keys(patch.set).sort()).to.deep.equal(['events', 'volumes']);
    ctl.abort();
    // Once the last watcher has gone, reading stops: the count settles.
    let settled = -1;
    const deadline = Date.now() + 5000;
    while (settled !== reads && Date.now() < deadline) {
      settled = reads;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(settled).to.equal(reads);
  });

  it('one read serves every page: two streams see the same reads, none skipped', async () => {
    // Each read makes one new event, numbered by the read: with one reader for both pages, each page
    // sees every number in a row; with a reader per page, each would see gaps (the other's reads).
    let tick = 0;
    const ticking = Object.create(control) as LocalControl;
    ticking.recentEvents = async () => [{ id: ++tick, at: new Date().toISOString(), volume: null, node: null, kind: 'tick', detail: null }];
    const own = createDashboard({ control: ticking }, { token: TOKEN, where: 'the test' }, log, 20);
    const ownWeb = await startWebListener('127.0.0.1:0', undefined, own.routes, log);
    try {
      const ids = (events: { type: string; data: unknown }[]): number[] =>
        events.flatMap((e) => Object.keys((e.data as DashboardPatch).set?.events ?? {}).map(Number));
      const open = () => fetch(`${ownWeb.url}/ui/api/events`, { headers: auth });
      const [ra, rb] = await Promise.all([open(), open()]);
      const [ea, eb] = await Promise.all([ra, rb].map((r) => readEvents(r, (ev) => ids(ev).length >= 8)));
      for (const seen of [ids(ea), ids(eb)]) {
        const first = seen[0];
        expect(seen.slice(0, 8)).to.deep.equal([...Array(8).keys()].map((i) => first + i));
      }
      // And both pages saw the same reads, once the later one joined.
      const common = ids(ea).filter((id) => ids(eb).includes(id));
      expect(common.length).to.be.at.least(4);
    } finally {
      own.stop();
      await ownWeb.stop();
    }
  });

  it('on control, serves the page before the cluster token and the API after it', async () => {
    const app = createClusterApi(control, TOKEN, log, dashboard.routes);
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      expect((await fetch(`${url}/ui/`)).status).to.equal(200);
      expect((await fetch(`${url}/ui/api/view`)).status).to.equal(401);
      expect((await fetch(`${url}/ui/api/view`, { headers: auth })).status).to.equal(200);
      expect((await fetch(`${url}/v1/volumes`)).status).to.equal(401);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  });
});
