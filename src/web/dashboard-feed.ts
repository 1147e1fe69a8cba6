import { toFerryError } from '../errors';
import type { Logger } from '../log';
import { diffDashboard, type DashboardPatch, type DashboardView } from './dashboard-view';

/** What a watcher of the feed gets: the first snapshot, then only the changes, or a problem. */
export interface FeedMessage {
  type: 'snapshot' | 'patch' | 'problem';
  /** snapshot: the whole view as a patch from nothing; patch: what changed. */
  patch?: DashboardPatch;
  /** problem: why the view could not be read (control unreachable); cleared by the next read that works. */
  message?: string;
}

/**
 * One reader of the dashboard's data for every open page: while anyone watches, it reads once per
 * `intervalMs` (never two reads at a time) and sends each watcher only what changed. Nobody
 * watching, nothing is read: a page left open costs one read a second, a hundred pages the same.
 */
export class DashboardFeed {
  private readonly watchers = new Set<(m: FeedMessage) => void>();
  private last?: DashboardView;
  private problem?: string;
  private timer?: NodeJS.Timeout;
  private reading?: Promise<void>;

  constructor(
    private readonly read: () => Promise<DashboardView>,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {}

  /** The view as it is now (one read when the feed is idle). */
  async current(): Promise<DashboardView> {
    if (this.last && this.timer) return this.last;
    return this.read();
  }

  /** Adds a watcher: it gets a snapshot first, then patches. Returns the function that removes it. */
  async watch(send: (m: FeedMessage) => void): Promise<() => void> {
    if (!this.last || !this.timer) await this.tick();
    this.watchers.add(send);
    if (this.last) send({ type: 'snapshot', patch: diffDashboard(undefined, this.last) ?? { set: {}, del: {} } });
    if (this.problem) send({ type: 'problem', message: this.problem });
    this.schedule();
    return () => {
      this.watchers.delete(send);
      if (this.watchers.size === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
        // What it last read goes stale while nobody watches: the next watcher reads afresh.
        this.last = undefined;
      }
    };
  }

  /** Stops reading (the listener is closing). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.watchers.clear();
  }

  private schedule(): void {
    if (this.timer || this.watchers.size === 0) return;
    const t = setTimeout(() => {
      void this.tick().finally(() => {
        // Not this timer's business any more when the last watcher left meanwhile (and maybe a new one came).
        if (this.timer !== t) return;
        this.timer = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    t.unref();
    this.timer = t;
  }

  /** One read, its differences sent to every watcher; a read already under way is joined. */
  private tick(): Promise<void> {
    this.reading ??= (async () => {
      try {
        const next = await this.read();
        const patch = diffDashboard(this.last, next);
        this.last = next;
        if (this.problem) {
          this.problem = undefined;
          this.broadcast({ type: 'problem', message: '' });
        }
        if (patch) this.broadcast({ type: 'patch', patch });
      } catch (err) {
        const message = toFerryError(err).message;
        if (message !== this.problem) this.log.warn({ err }, 'dashboard read failed');
        this.problem = message;
        this.broadcast({ type: 'problem', message });
      }
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private broadcast(m: FeedMessage): void {
    for (const w of this.watchers) w(m);
  }
}
