import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demuxDockerLogs } from '../../src/agent/docker-host';
import { ScheduleBook } from '../../src/agent/schedule-book';
import { silentLogger } from '../../src/log';
import { cleanupDir, makeTempDir } from '../support/host';

/* bank-policy: the schedule book's backup runs, drills and scratch names on a real file; dockerd's log frames. */

describe('schedule book: backups, drills, scratch volumes (bank-policy)', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir('backup-book')));
  afterEach(() => cleanupDir(dir));

  it("reads a book an older ferry wrote (no backup fields) and keeps its snapshot runs", () => {
    const file = join(dir, 'schedules.json');
    writeFileSync(file, JSON.stringify({ version: 1, heardAt: null, policies: {}, volumes: [], lastRuns: { db: { policy: 'p', at: '2026-12-01T00:00:00.000Z' } }, pending: [] }));
    const book = new ScheduleBook(file, silentLogger());
    expect(book.lastRun('db', 'p')?.toISOString()).to.equal('2026-12-01T00:00:00.000Z');
    expect(book.lastBackup('db', 'p')).to.equal(undefined);
    expect(book.scratchVolumes()).to.deep.equal([]);
  });

  it('keeps backup runs, drills and scratch names across a restart, by policy; forgets volumes no longer here', () => {
    const file = join(dir, 'schedules.json');
    const at = new Date('2026-12-02T10:00:00Z');
    const book = new ScheduleBook(file, silentLogger());
    book.backedUp('db', 'safe', at);
    book.drilled('db', 'safe', at);
    book.addScratch('ferry-drill-0000000a');
    book.addScratch('ferry-drill-0000000b');
    book.dropScratch('ferry-drill-0000000a');
    const again = new ScheduleBook(file, silentLogger());
    expect(again.lastBackup('db', 'safe')?.getTime()).to.equal(at.getTime());
    expect(again.lastDrill('db', 'safe')?.getTime()).to.equal(at.getTime());
    // A run under another policy does not count for this one.
    expect(again.lastBackup('db', 'other')).to.equal(undefined);
    expect(again.scratchVolumes()).to.deep.equal(['ferry-drill-0000000b']);
    again.heard([], [{ volume: 'web', backend: 'btrfs', policy: 'safe' }], at);
    expect(again.lastBackup('db', 'safe')).to.equal(undefined);
    expect(again.lastDrill('db', 'safe')).to.equal(undefined);
    // Scratch names stay until their volume is known removed, whatever control says.
    expect((JSON.parse(readFileSync(file, 'utf8')) as { scratch: string[] }).scratch).to.deep.equal(['ferry-drill-0000000b']);
  });
});

describe("dockerd's log frames (pure)", () => {
  const frame = (stream: number, text: string): Buffer => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  it('joins stdout and stderr frames in order', () => {
    expect(demuxDockerLogs(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more')]))).to.equal('out\nerr\nmore');
  });
  it('keeps a cut last frame, and an empty log is empty', () => {
    expect(demuxDockerLogs(Buffer.concat([frame(1, 'a'), frame(2, 'bcdef').subarray(0, 10)]))).to.equal('abc');
    expect(demuxDockerLogs(Buffer.alloc(0))).to.equal('');
    expect(demuxDockerLogs(Buffer.from('plain tty output'))).to.equal('plain tty output');
  });
});
