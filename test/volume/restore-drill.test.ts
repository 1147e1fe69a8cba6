import { expect } from 'chai';
import { isFerryError } from '../../src/errors';
import { drillDue, drillVolumeName, drillWaitMs, isDrillVolumeName, outputTail, parseVerifyWith } from '../../src/volume/restore-drill';

/* The restore drill's pure half (fixed clock): when it is due, on which checkpoint; --verify-with; names. */

const NOW = new Date('2026-12-02T10:00:00Z');
const DAY = 86400;
const CPS = [
  { id: '20261201T020000Z-0000000a', time: '2026-12-01T02:00:00Z' },
  { id: '20261202T020000Z-0000000b', time: '2026-12-02T02:00:00Z' },
  { id: '20261130T020000Z-0000000c', time: '2026-11-30T02:00:00Z' },
];

describe('restore drill: when it is due (pure)', () => {
  const cases: { what: string; every: number | null; last: string | null; cps?: typeof CPS; running?: boolean; due: boolean; checkpoint?: string; reason: RegExp }[] = [
    { what: 'no drill asked', every: null, last: null, due: false, reason: /asks for no drill/ },
    { what: 'never drilled: due now, on the newest checkpoint', every: 7 * DAY, last: null, due: true, checkpoint: CPS[1].id, reason: /no drill yet: restore 20261202T020000Z-0000000b/ },
    { what: 'drilled 6 days ago, every 7d: not yet', every: 7 * DAY, last: '2026-11-26T10:00:00Z', due: false, reason: /next is due in 86400 s/ },
    { what: 'drilled exactly 7 days ago: due', every: 7 * DAY, last: '2026-11-25T10:00:00Z', due: true, checkpoint: CPS[1].id, reason: /604800 s passed since the last drill/ },
    { what: 'drilled a month ago (host was down): one drill, due', every: 7 * DAY, last: '2026-11-01T00:00:00Z', due: true, checkpoint: CPS[1].id, reason: /passed since the last drill/ },
    { what: 'a last drill dated after now (clock stepped back): due', every: 7 * DAY, last: '2027-01-01T00:00:00Z', due: true, reason: /after now \(the clock was stepped back\)/ },
    { what: 'no checkpoint yet: nothing to restore', every: 60, last: null, cps: [], due: false, reason: /no checkpoint of the volume yet/ },
    { what: 'unreadable times are never chosen', every: 60, last: null, cps: [{ id: 'x', time: 'garbage' }], due: false, reason: /no checkpoint/ },
    { what: 'a drill under way: not again', every: 60, last: null, running: true, due: false, reason: /under way/ },
    {
      what: 'equal times: the larger id (ids sort by time)',
      every: 60,
      last: null,
      cps: [
        { id: '20261202T020000Z-00000001', time: '2026-12-02T02:00:00Z' },
        { id: '20261202T020000Z-00000002', time: '2026-12-02T02:00:00Z' },
      ],
      due: true,
      checkpoint: '20261202T020000Z-00000002',
      reason: /restore 20261202T020000Z-00000002/,
    },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const d = drillDue({ everySeconds: c.every, lastDrill: c.last === null ? null : new Date(c.last), checkpoints: c.cps ?? CPS, now: NOW, running: c.running });
      expect(d.due, d.reason).to.equal(c.due);
      expect(d.reason).to.match(c.reason);
      if (c.checkpoint) expect(d.checkpoint).to.equal(c.checkpoint);
      if (!c.due) expect(d.checkpoint).to.equal(undefined);
    });
  }

  it('waits the rest of the interval, never less than 0', () => {
    expect(drillWaitMs(null, 60, NOW)).to.equal(0);
    expect(drillWaitMs(new Date(NOW.getTime() - 20_000), 60, NOW)).to.equal(40_000);
    expect(drillWaitMs(new Date(NOW.getTime() - 90_000), 60, NOW)).to.equal(0);
    expect(drillWaitMs(new Date(NOW.getTime() + 90_000), 60, NOW)).to.equal(0);
  });
});

describe('restore drill: --verify-with, scratch names, output (pure)', () => {
  const good: [string, { image: string; command: string }][] = [
    ['busybox true', { image: 'busybox', command: 'true' }],
    ['  postgres:16  pg_isready -d x && echo ok ', { image: 'postgres:16', command: 'pg_isready -d x && echo ok' }],
    ['ferry-test/busybox:latest test -s /data/f', { image: 'ferry-test/busybox:latest', command: 'test -s /data/f' }],
    ['reg.local:5000/a/b@sha256:' + 'a'.repeat(64) + ' sh -c "exit 3"', { image: 'reg.local:5000/a/b@sha256:' + 'a'.repeat(64), command: 'sh -c "exit 3"' }],
  ];
  for (const [text, want] of good) {
    it(`reads ${JSON.stringify(text)}`, () => expect(parseVerifyWith(text)).to.deep.equal(want));
  }
  for (const text of ['', 'busybox', '   ', 'UPPER true', '-rf /', 42]) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(() => parseVerifyWith(text))
        .to.throw(/invalid verify-with/)
        .that.satisfies((e: unknown) => isFerryError(e, 'INVALID_OPTION'));
    });
  }

  it('scratch volumes are ferry-drill-<8 hex>, a valid Docker name, and recognized', () => {
    const n = drillVolumeName(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x99]));
    expect(n).to.equal('ferry-drill-deadbeef');
    expect(isDrillVolumeName(n)).to.equal(true);
    for (const other of ['ferry-drill-', 'ferry-drill-deadbeef0', 'x-ferry-drill-deadbeef', 'ferry-drill-DEADBEEF']) expect(isDrillVolumeName(other), other).to.equal(false);
  });

  it('keeps the tail of long output', () => {
    expect(outputTail('short')).to.equal('short');
    expect(outputTail('a'.repeat(500) + 'END', 10)).to.equal('…aaaaaaaEND');
  });
});
