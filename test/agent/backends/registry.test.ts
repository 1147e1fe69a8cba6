import { expect } from 'chai';
import { z } from 'zod';
import { abilitiesOf, ABILITIES } from '../../../src/agent/backends/backend';
import { BACKENDS, BACKEND_KINDS, backendOptions, descriptorOf } from '../../../src/agent/backends/registry';
import { loadConfig } from '../../../src/config/config';
import { silentLogger } from '../../../src/log';
import { CREATE_OPTIONS, resolveCreateOptions } from '../../../src/volume/options';
import { FakeRunner } from '../../support/fake-runner';

describe('backend registry', function () {
  it('lists each kind once, the default first', function () {
    expect(new Set(BACKEND_KINDS).size).to.equal(BACKENDS.length);
    expect(BACKEND_KINDS[0]).to.equal('btrfs');
    expect(descriptorOf('nope')).to.equal(undefined);
  });

  for (const d of BACKENDS) {
    describe(d.kind, function () {
      it('names only known abilities', function () {
        for (const a of d.abilities) expect(ABILITIES).to.include(a);
      });

      it('gives its config section defaults that its own schema accepts, and the config holds them', function () {
        expect(d.configSchema(z).safeParse(d.configDefaults('/var/lib/ferry')).success).to.equal(true);
        const config = loadConfig({ overrides: { dataDir: '/tmp/ferry-registry' } }) as unknown as Record<string, unknown>;
        expect(config[d.kind]).to.deep.equal(d.configDefaults('/tmp/ferry-registry'));
      });

      it('makes, through its factory, a backend of its kind with exactly the abilities it lists (no disk touched)', async function () {
        const config = loadConfig({ overrides: { dataDir: '/tmp/ferry-registry' } }) as unknown as Record<string, never>;
        const runner = new FakeRunner();
        const b = await d.create(config[d.kind], runner, silentLogger());
        expect(b.kind).to.equal(d.kind);
        expect(abilitiesOf(b)).to.deep.equal([...d.abilities]);
        expect(b.sizeRules).to.equal(d.sizeRules);
        runner.verify();
      });

      for (const [key, opt] of Object.entries(d.options)) {
        it(`takes -o ${key} with its values, and defaults it`, function () {
          const config = loadConfig({ overrides: { dataDir: '/tmp/ferry-registry' } });
          expect(CREATE_OPTIONS).to.include(key);
          const size = d.sizeRules.requiresSize ? { size: '1G' } : {};
          for (const v of opt.values) expect(resolveCreateOptions({ backend: d.kind, [key]: v, ...size }, config)).to.have.property(key, v);
          expect(resolveCreateOptions({ backend: d.kind, ...size }, config)).to.have.property(key, opt.defaultValue);
        });
      }
    });
  }

  it('refuses a backend option for a backend that does not take it, naming those that do', function () {
    const config = loadConfig({ overrides: { dataDir: '/tmp/ferry-registry' } });
    const fs = backendOptions().get('fs')!;
    const other = BACKENDS.find((d) => !d.options.fs)!;
    expect(() => resolveCreateOptions({ backend: other.kind, fs: fs.values[0] }, config)).to.throw(new RegExp(`applies to backend ${fs.kinds.join(', ')} only`));
  });

  it('validates the default backend and profiles against the registered kinds', function () {
    expect(() => loadConfig({ overrides: { defaults: { backend: 'nosuch' as never } } })).to.throw(/defaults\.backend/);
    for (const kind of BACKEND_KINDS) expect(loadConfig({ overrides: { defaults: { backend: kind } } }).defaults.backend).to.equal(kind);
  });
});
