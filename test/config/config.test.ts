import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig } from '../../src/config/config';

describe('loadConfig', function () {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });
  it('gives defaults that work on a fresh host', function () {
    const c = loadConfig();
    expect(c.dataDir).to.equal('/var/lib/ferry');
    expect(c.pluginSocket).to.equal('/run/docker/plugins/ferry.sock');
    expect(c.defaults.backend).to.equal('btrfs');
    expect(c.btrfs.poolFile).to.equal('/var/lib/ferry/btrfs/pool.img');
    expect(Object.isFrozen(c) && Object.isFrozen(c.btrfs)).to.equal(true);
  });
  it('derives paths from a data dir given by flag', function () {
    const c = loadConfig({ overrides: { dataDir: '/srv/ferry' } });
    expect(c.mountRoot).to.equal('/srv/ferry/mounts');
    expect(c.loop.dir).to.equal('/srv/ferry/loop');
  });
  it('merges file then flags', function () {
    const f = join(dir, 'a.json');
    writeFileSync(f, JSON.stringify({ nodeName: 'h1', btrfs: { poolSize: '8G' }, profiles: { db: { size: '1G' } } }));
    const c = loadConfig({ file: f, overrides: { nodeName: 'h2' } });
    expect(c.nodeName).to.equal('h2');
    expect(c.btrfs.poolSize).to.equal('8G');
    expect(c.btrfs.poolMount).to.equal('/var/lib/ferry/btrfs/pool');
    expect(c.profiles.db.size).to.equal('1G');
  });
  const bad: [string, string, RegExp][] = [
    ['malformed JSON', '{nope', /not valid JSON/],
    ['a non-object', '[1]', /top level must be a JSON object/],
    ['an unknown key', '{"dataDri": "/x"}', /dataDri/],
    ['a bad backend', '{"defaults": {"backend": "nosuch"}}', /defaults\.backend/],
    ['a relative path', '{"dataDir": "var/lib"}', /dataDir/],
  ];
  for (const [label, text, msg] of bad) {
    it(`refuses ${label} with a message naming the setting`, function () {
      const f = join(dir, `${label.replace(/\W/g, '')}.json`);
      writeFileSync(f, text);
      expect(() => loadConfig({ file: f })).to.throw(msg);
    });
  }
  it('refuses the old moves.keepReplica, saying that control decides now and where to set it', function () {
    const f = join(dir, 'old-keep.json');
    writeFileSync(f, JSON.stringify({ moves: { keepReplica: false } }));
    expect(() => loadConfig({ file: f })).to.throw(/moves\.keepReplica in .*old-keep\.json is no longer read.*"control": \{"keepReplica": false\} in the config of ferry control.*-o replica=drop/);
    expect(() => loadConfig({ overrides: { moves: { keepReplica: true } } as never })).to.throw(/moves\.keepReplica in the flags/);
  });
  it("keeps replicas by default, as control's cluster setting", function () {
    expect(loadConfig().control.keepReplica).to.equal(true);
  });
  it('says when the file cannot be read', function () {
    expect(() => loadConfig({ file: join(dir, 'missing.json') })).to.throw(/cannot read config file/);
  });
});
