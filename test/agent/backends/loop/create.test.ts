import { expect } from 'chai';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LoopBackend } from '../../../../src/agent/backends/loop';
import { isFerryError } from '../../../../src/errors';
import { silentLogger } from '../../../../src/log';
import { FakeRunner } from '../../../support/fake-runner';
import { cleanupDir, makeTempDir } from '../../../support/host';

const MiB = 1024 * 1024;
// The temp image create formats before it publishes it under the volume's name.
const TEMP_IMAGE = (dir: string): RegExp => new RegExp(`^${dir}/images/\\.ferry-tmp-create-db-[0-9a-f]{8}\\.img$`);

/** The loop backend's Create, with the commands scripted: which mkfs runs, with which flags, on what. No root, no loop device. */
describe('loop create (scripted commands)', function () {
  let dir: string;
  let runner: FakeRunner;
  let b: LoopBackend;
  beforeEach(function () {
    dir = makeTempDir('loop-create');
    runner = new FakeRunner();
    b = new LoopBackend({ dir }, runner, silentLogger());
  });
  afterEach(function () {
    cleanupDir(dir);
    runner.verify();
  });

  it('formats a sparse image of the size with mkfs.ext4: 4 KiB blocks, nothing reserved, lazy init', async function () {
    runner.expect(['mkfs.ext4', '-q', '-F', '-b', '4096', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', TEMP_IMAGE(dir)]);
    await b.create('db', { fs: 'ext4', sizeBytes: 64 * MiB + 123 });
    const image = join(dir, 'images', 'db.img');
    expect(statSync(image).size, 'rounded down to 4 KiB').to.equal(64 * MiB);
    expect(readdirSync(join(dir, 'images'))).to.deep.equal(['db.img']);
  });

  it('formats xfs with mkfs.xfs -q -f, and a second create runs nothing', async function () {
    runner.expect(['mkfs.xfs', '-q', '-f', TEMP_IMAGE(dir)]);
    await b.create('db', { fs: 'xfs', sizeBytes: 300 * MiB });
    await b.create('db', { fs: 'xfs', sizeBytes: 300 * MiB });
    expect(runner.calls).to.have.length(1);
  });

  it('leaves nothing behind when mkfs fails', async function () {
    runner.expect(['mkfs.xfs', '-q', '-f', TEMP_IMAGE(dir)], { exitCode: 1, stderr: 'mkfs.xfs: cannot open: Input/output error' });
    const err = await b.create('db', { fs: 'xfs', sizeBytes: 300 * MiB }).catch((e: unknown) => e);
    expect(isFerryError(err, 'COMMAND_FAILED'), String(err)).to.equal(true);
    expect(existsSync(join(dir, 'images', 'db.img'))).to.equal(false);
    expect(readdirSync(join(dir, 'images'))).to.deep.equal([]);
  });
});
