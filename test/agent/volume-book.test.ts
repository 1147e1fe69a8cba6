import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log';
import { addPending, VolumeBook, type PendingLeaseOp } from '../../src/agent/volume-book';
import type { VolumeView } from '../../src/wire/records';

const acq = (mountId: string, volume = 'db'): PendingLeaseOp => ({ op: 'acquire', volume, mountId, mountpoint: `/m/${volume}`, generation: 2, at: 't' });
const rel = (mountId: string, volume = 'db'): PendingLeaseOp => ({ op: 'release', volume, mountId, at: 't' });

describe('volume book', function () {
  describe('addPending (pure)', function () {
    const table: [string, PendingLeaseOp[], PendingLeaseOp, PendingLeaseOp[]][] = [
      ['an acquire is queued', [], acq('a'), [acq('a')]],
      ['a release of a Mount ID control knows is queued', [], rel('a'), [rel('a')]],
      ['a release cancels the acquire still waiting: control never hears of either', [acq('a'), acq('b')], rel('a'), [acq('b')]],
      ['a release cancels only its own volume', [acq('a', 'web')], rel('a'), [acq('a', 'web'), rel('a')]],
      ['the same op twice is queued once (Docker re-sends)', [acq('a')], acq('a'), [acq('a')]],
      ['a new acquire after a release of the same ID keeps the order', [rel('a')], acq('a'), [rel('a'), acq('a')]],
    ];
    for (const [why, list, op, want] of table) {
      it(why, function () {
        expect(addPending(list, op)).to.deep.equal(want);
      });
    }
  });

  describe('on disk', function () {
    let dir: string;
    const log = silentLogger();
    const view = (name: string): VolumeView => ({
      name, backend: 'directory', sizeBytes: null, fs: null, options: {}, primaryNode: 'h1', generation: 1, state: 'ready',
      createdAt: '2026-12-02T07:00:00Z', usedBytes: null, usedAt: null, mounts: 0, replicas: [], dropping: [],
    });
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-book-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('keeps volumes, Mount IDs and pending ops across a restart, written by rename', function () {
      const file = join(dir, 'volume-book.json');
      const a = new VolumeBook(file, log);
      a.rememberAll([view('db'), view('web')]);
      a.remember({ ...view('db'), generation: 4, controlAway: { since: null, recordedAt: 'x' } });
      a.granted('db', 'm1');
      a.queue(acq('m1'));
      expect(readdirSync(dir), 'no temporary file left beside the book').to.deep.equal(['volume-book.json']);
      const b = new VolumeBook(file, log);
      expect(b.all().map((v) => `${v.name}@${v.generation}`).sort()).to.deep.equal(['db@4', 'web@1']);
      expect(b.known('db')).to.not.have.property('controlAway');
      expect(b.mountIdsOf('db')).to.deep.equal(['m1']);
      expect(b.pending()).to.deep.equal([acq('m1')]);
      expect(b.released('db', 'm1')).to.equal(0);
      b.forget('web');
      expect(new VolumeBook(file, log).all().map((v) => v.name)).to.deep.equal(['db']);
    });

    it('a List replaces the whole set: a volume removed elsewhere is forgotten', function () {
      const book = new VolumeBook(join(dir, 'b.json'), log);
      book.rememberAll([view('db'), view('old')]);
      book.rememberAll([view('db')]);
      expect(book.known('old')).to.equal(undefined);
    });

    it('a book that cannot be read starts empty (it is rebuilt from control)', function () {
      const file = join(dir, 'bad.json');
      writeFileSync(file, '{not json');
      const book = new VolumeBook(file, log);
      expect(book.all()).to.deep.equal([]);
      book.remember(view('db'));
      expect(JSON.parse(readFileSync(file, 'utf8')).volumes).to.have.length(1);
    });
  });
});
