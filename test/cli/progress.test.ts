import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Progress, figuresOf, formatDuration, plainLine, worthPrinting } from '../../src/cli/progress';
import { cleanupDir, makeTempDir } from '../support/host';

const MiB = 1024 * 1024;

/** A Progress writing plain lines (not a terminal) under a clock the test moves. */
function plain(title: string): { p: Progress; lines: () => string[]; tick: (ms: number) => void } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (b: Buffer) => (text += b.toString('utf8')));
  let now = 1_000_000;
  const p = new Progress(title, { stream: out, tty: false }, () => now);
  return { p, lines: () => text.split('\n').filter(Boolean), tick: (ms) => (now += ms) };
}

describe('CLI progress', function () {
  it('not on a terminal: a plain line per step and per tenth of the way, with rate and time left', function () {
    const { p, lines, tick } = plain('db: h1 -> h2');
    p.update({ done: 0, total: 100 * MiB, step: 'precopy' });
    for (let i = 1; i <= 40; i++) {
      tick(250);
      p.update({ done: i * 2 * MiB, total: 100 * MiB, step: 'precopy' });
    }
    tick(250);
    p.update({ done: 100 * MiB, total: 100 * MiB, step: 'releasing' });
    p.stop('db is now on h2');
    expect(lines()).to.deep.equal([
      'db: h1 -> h2: precopy 0%, 0 B of 100.0 MiB',
      'db: h1 -> h2: precopy 10%, 10.0 MiB of 100.0 MiB, 8.0 MiB/s, 11 s left',
      'db: h1 -> h2: precopy 20%, 20.0 MiB of 100.0 MiB, 8.0 MiB/s, 10 s left',
      'db: h1 -> h2: precopy 30%, 30.0 MiB of 100.0 MiB, 8.0 MiB/s, 9 s left',
      'db: h1 -> h2: precopy 40%, 40.0 MiB of 100.0 MiB, 8.0 MiB/s, 8 s left',
      'db: h1 -> h2: precopy 50%, 50.0 MiB of 100.0 MiB, 8.0 MiB/s, 6 s left',
      'db: h1 -> h2: precopy 60%, 60.0 MiB of 100.0 MiB, 8.0 MiB/s, 5 s left',
      'db: h1 -> h2: precopy 70%, 70.0 MiB of 100.0 MiB, 8.0 MiB/s, 4 s left',
      'db: h1 -> h2: precopy 80%, 80.0 MiB of 100.0 MiB, 8.0 MiB/s, 3 s left',
      'db: h1 -> h2: releasing 100%, 100.0 MiB of 100.0 MiB, 9.8 MiB/s, 0 s left',
      'db is now on h2',
    ]);
  });

  it('without a total: bytes and rate, a line when the step changes or every 10 s while bytes move', function () {
    const { p, lines, tick } = plain('v');
    p.update({ done: 0, total: null, step: 'precopy' });
    for (let i = 1; i <= 30; i++) {
      tick(1000);
      p.update({ done: i * MiB, total: null, step: 'precopy' });
    }
    expect(lines()).to.deep.equal(['v: precopy, 0 B', 'v: precopy, 10.0 MiB, 1.0 MiB/s', 'v: precopy, 20.0 MiB, 1.0 MiB/s', 'v: precopy, 30.0 MiB, 1.0 MiB/s']);
  });

  it('the pure parts: rate over the window, durations, when a line is worth it', function () {
    expect(figuresOf([{ at: 0, done: 0 }], { done: 0, total: 10, step: 's' })).to.deep.equal({ rate: null, etaSeconds: null });
    expect(figuresOf([{ at: 0, done: 0 }, { at: 2000, done: 4 * MiB }], { done: 4 * MiB, total: 12 * MiB, step: 's' })).to.deep.equal({ rate: 2 * MiB, etaSeconds: 4 });
    expect(formatDuration(5)).to.equal('5 s');
    expect(formatDuration(185)).to.equal('3 min 05 s');
    expect(formatDuration(3720)).to.equal('1 h 02 min');
    const s = { done: 5, total: 100, step: 'precopy' };
    expect(worthPrinting(undefined, s, 0)).to.equal(true);
    expect(worthPrinting({ sample: s, at: 0 }, { ...s, done: 9 }, 1)).to.equal(false);
    expect(worthPrinting({ sample: s, at: 0 }, { ...s, done: 10 }, 1)).to.equal(true);
    expect(worthPrinting({ sample: s, at: 0 }, { ...s, step: 'final' }, 1)).to.equal(true);
    expect(plainLine('x', { done: 0, total: 0, step: 'final' }, { rate: null, etaSeconds: null })).to.equal('x: final, 0 B');
  });

  it('on a terminal (a pseudo-terminal from script): a redrawn bar with rate and time left', function () {
    if (spawnSync('script', ['--version']).status !== 0) throw new Error('this test needs script (util-linux; Debian package bsdutils)');
    const dir = makeTempDir('progress-tty');
    try {
      // A real process on a real pty: Progress decides from process.stderr.isTTY, as the CLI does.
      const js = join(dir, 'bar.js');
      const mod = join(__dirname, '../../src/cli/progress.js');
      writeFileSync(
        js,
        `const { Progress } = require(${JSON.stringify(mod)});
         let now = 0;
         const p = new Progress('db: h1 -> h2', undefined, () => now);
         const MiB = 1024 * 1024;
         for (let i = 0; i <= 10; i++) { p.update({ done: i * 10 * MiB, total: 100 * MiB, step: 'precopy' }); now += 1000; }
         p.stop('db is now on h2');
         process.stdout.write('tty=' + process.stderr.isTTY + '\\n');`,
      );
      const r = spawnSync('script', ['-qec', `${process.execPath} ${js}`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).to.equal(0);
      const out = r.stdout;
      expect(out).to.include('tty=true');
      // Redrawn in place (cursor to column 0 and clear), not one line per update.
      expect(out).to.match(/\r|\x1b\[/);
      expect(out).to.include('db: h1 -> h2 [');
      expect(out).to.match(/\[=+-*\] \d+% precopy \| [\d.]+ MiB of 100\.0 MiB, 10\.0 MiB\/s, \d+ s left/);
      expect(out).to.include('100% precopy | 100.0 MiB of 100.0 MiB');
      expect(out).to.include('db is now on h2');
      expect(out.split('\n').filter((l) => l.includes('% precopy')).length, 'one line, redrawn').to.be.lessThan(3);
    } finally {
      cleanupDir(dir);
    }
  });
});
