import { expect } from 'chai';
import { isFerryError, FerryError } from '../../src/errors';
import {
  hookTimeoutMs,
  parseDurationMs,
  parseHook,
  planQuiesce,
  postHookTargets,
  quiesceOutcome,
  type HostContainer,
  type StepFailure,
} from '../../src/agent/quiesce-plan';

const c = (name: string, volumes: string[], labels: Record<string, string> = {}, state = 'running'): HostContainer => ({ id: `id-${name}`, name, state, labels, volumes });

describe('quiesce plan: hook labels', function () {
  const cases: [string | undefined, string[] | null][] = [
    [undefined, null],
    ['', null],
    ['   ', null],
    ['sync', ['sh', '-c', 'sync']],
    ['  psql -c "CHECKPOINT" ', ['sh', '-c', 'psql -c "CHECKPOINT"']],
    ['["redis-cli", "BGSAVE"]', ['redis-cli', 'BGSAVE']],
    ['["/bin/true"]', ['/bin/true']],
  ];
  for (const [text, argv] of cases) {
    it(`${JSON.stringify(text)} -> ${JSON.stringify(argv)}`, function () {
      expect(parseHook(text, 'db', 'ferry.pre-snapshot')).to.deep.equal(argv);
    });
  }
  for (const bad of ['[', '[]', '[1, 2]', '["ok", 3]', '[""]', '[{"a": 1}]']) {
    it(`refuses ${bad}, naming the container and label`, function () {
      expect(() => parseHook(bad, 'db', 'ferry.pre-snapshot'))
        .to.throw(/container db: label ferry.pre-snapshot is not a JSON array of strings/)
        .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
    });
  }
});

describe('quiesce plan: hook timeouts', function () {
  const durations: [string, number | null][] = [
    ['30s', 30_000],
    ['45', 45_000],
    ['2m', 120_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['', null],
    ['10h', null],
    ['-1s', null],
    ['soon', null],
  ];
  for (const [text, ms] of durations) {
    it(`${JSON.stringify(text)} -> ${ms}`, function () {
      expect(parseDurationMs(text)).to.equal(ms);
    });
  }
  it('takes the label, else the default', function () {
    expect(hookTimeoutMs({}, 'db', 30_000)).to.equal(30_000);
    expect(hookTimeoutMs({ 'ferry.hook-timeout': '5s' }, 'db', 30_000)).to.equal(5000);
  });
  for (const bad of ['0', '11m', 'later']) {
    it(`refuses a timeout of ${bad}`, function () {
      expect(() => hookTimeoutMs({ 'ferry.hook-timeout': bad }, 'db', 30_000))
        .to.throw(/container db: label ferry.hook-timeout=.* is not a duration between 1ms and 10m/)
        .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
    });
  }
});

describe('quiesce plan: which containers', function () {
  const hooked = { 'ferry.pre-snapshot': 'sync', 'ferry.post-snapshot': '["true"]' };
  const host = [
    c('web', ['static']),
    c('db', ['data', 'other'], hooked),
    c('cache', ['data']),
    c('stopped', ['data'], hooked, 'exited'),
    c('frozen', ['data'], hooked, 'paused'),
    c('unrelated', ['elsewhere'], hooked),
    // dockerd's volume filter also matches a mount destination: only a named volume counts.
    c('bind', []),
  ];
  const rows: { title: string; volumes: string[]; mode: 'none' | 'pause'; want: [string, { pause: boolean; volumes: string[] }][] }[] = [
    {
      title: 'pause: every running user of the volume, paused; one paused by someone else is left out (frozen already; exec is refused there)',
      volumes: ['data'],
      mode: 'pause',
      want: [
        ['cache', { pause: true, volumes: ['data'] }],
        ['db', { pause: true, volumes: ['data'] }],
      ],
    },
    {
      title: 'none: only containers with hooks; no pause',
      volumes: ['data'],
      mode: 'none',
      want: [['db', { pause: false, volumes: ['data'] }]],
    },
    {
      title: 'a group: each container once, with the volumes of the group it uses, in name order',
      volumes: ['other', 'data', 'static'],
      mode: 'pause',
      want: [
        ['cache', { pause: true, volumes: ['data'] }],
        ['db', { pause: true, volumes: ['data', 'other'] }],
        ['web', { pause: true, volumes: ['static'] }],
      ],
    },
    { title: 'a volume nobody uses: nothing', volumes: ['lonely'], mode: 'pause', want: [] },
  ];
  for (const row of rows) {
    it(row.title, function () {
      const plan = planQuiesce(host, row.volumes, row.mode, 30_000);
      expect(plan.map((t) => [t.name, { pause: t.pause, volumes: t.volumes }])).to.deep.equal(row.want);
    });
  }
  it('reads the hooks and the timeout of each container', function () {
    const [db] = planQuiesce([c('db', ['data'], { ...hooked, 'ferry.hook-timeout': '2s' })], ['data'], 'none', 30_000);
    expect(db).to.deep.include({ pre: ['sh', '-c', 'sync'], post: ['true'], timeoutMs: 2000 });
  });
  it('refuses a malformed label before anything runs', function () {
    expect(() => planQuiesce([c('db', ['data'], { 'ferry.post-snapshot': '[oops' })], ['data'], 'pause', 30_000)).to.throw(/container db: label ferry.post-snapshot/);
  });
});

describe('quiesce plan: post hooks after each outcome', function () {
  const plan = planQuiesce(
    [
      c('a', ['v'], { 'ferry.pre-snapshot': 'x', 'ferry.post-snapshot': 'y' }),
      c('b', ['v'], { 'ferry.post-snapshot': 'y' }),
      c('c', ['v'], { 'ferry.pre-snapshot': 'x', 'ferry.post-snapshot': 'y' }),
      c('d', ['v'], { 'ferry.pre-snapshot': 'x' }),
      c('e', ['v'], { 'ferry.pre-snapshot': 'x', 'ferry.post-snapshot': 'y' }, 'paused'),
    ],
    ['v'],
    'pause',
    30_000,
  );
  const rows: [string, number, string[]][] = [
    ['every pre hook passed: every post hook, newest first (one paused by someone else left out)', 4, ['c', 'b', 'a']],
    ['the first pre hook failed: its own post hook undoes a half-taken lock', 1, ['a']],
    ['c failed: a, b (no pre hook but reached) and c itself; d never began', 3, ['c', 'b', 'a']],
    ['nothing reached', 0, []],
  ];
  for (const [title, reached, want] of rows) {
    it(title, function () {
      expect(postHookTargets(plan, reached).map((t) => t.name)).to.deep.equal(want);
    });
  }
});

describe('quiesce plan: what the caller is told', function () {
  const f = (step: StepFailure['step'], container = 'db', message = 'exited 1 after 3 ms'): StepFailure => ({ container, step, message });
  const rows: { title: string; failures: StepFailure[]; actionError?: unknown; error: RegExp | null; warnings: number }[] = [
    { title: 'all well', failures: [], error: null, warnings: 0 },
    { title: 'a failed pre hook fails the snapshot, naming the container and the way out', failures: [f('pre'), f('post')], error: /snapshot of volume data not taken: the pre-snapshot hook of container db failed: exited 1 after 3 ms; fix the hook \(label ferry.pre-snapshot\) or snapshot with --quiesce none/, warnings: 1 },
    { title: 'a failed pause fails it', failures: [f('pause', 'web', 'container is restarting')], error: /not taken: cannot pause container web: container is restarting/, warnings: 0 },
    { title: 'the action’s own error stands', failures: [], actionError: new FerryError('POOL_FULL', 'the pool is full'), error: /^the pool is full$/, warnings: 0 },
    { title: 'a failed post hook is a warning: the snapshot is good', failures: [f('post')], error: null, warnings: 1 },
    { title: 'a container left paused fails it, saying what to run', failures: [f('unpause', 'db', 'dockerd gone')], error: /containers db are still paused after the snapshot of volume data \(dockerd gone\): run docker unpause db/, warnings: 0 },
    { title: 'both: why it failed and what is stuck', failures: [f('pause', 'web', 'no'), f('unpause', 'db', 'gone')], error: /cannot pause container web: no; and containers db are still paused/, warnings: 0 },
  ];
  for (const row of rows) {
    it(row.title, function () {
      const o = quiesceOutcome({ volumes: ['data'], failures: row.failures, actionError: row.actionError });
      if (row.error === null) expect(o.error).to.equal(null);
      else expect(o.error?.message).to.match(row.error);
      if (row.error && !row.actionError) expect(o.error?.code).to.equal('QUIESCE_FAILED');
      expect(o.warnings).to.have.length(row.warnings);
    });
  }
  it('keeps the code of the action’s error and wraps a plain one', function () {
    expect(quiesceOutcome({ volumes: ['a', 'b'], failures: [], actionError: new FerryError('POOL_FULL', 'x') }).error?.code).to.equal('POOL_FULL');
    expect(quiesceOutcome({ volumes: ['a', 'b'], failures: [], actionError: new Error('boom') }).error?.code).to.equal('INTERNAL');
  });
});
