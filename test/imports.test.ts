import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { checkImports, partOf, specifiersOf } from './support/import-directions';

/** src/ of the repository (tests run from dist/test/). */
const SRC = join(__dirname, '..', '..', 'src');

function sources(dir: string, into = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, into);
    else if (e.name.endsWith('.ts')) into.set(relative(SRC, p), readFileSync(p, 'utf8'));
  }
  return into;
}

describe('imports point one way', function () {
  it('every file under src/ keeps to the table of directions', function () {
    const files = sources(SRC);
    expect(files.size, 'src/ was found and read').to.be.greaterThan(50);
    const violations = checkImports(files).map((v) => `${v.file} -> ${v.imports}: ${v.why}`);
    expect(violations).to.deep.equal([]);
  });

  describe('the checker', function () {
    const table: [string, Record<string, string>, string[]][] = [
      ['control importing agent code', { 'control/api.ts': "import type { Agent } from '../agent/agent';", 'agent/agent.ts': '' }, ['control/api.ts -> agent/agent.ts: control must not import agent']],
      [
        'the agent loading a control server file',
        { 'agent/http-control.ts': "import { AGENT_CALLS } from '../control/cluster-api';", 'control/cluster-api.ts': '' },
        ['agent/http-control.ts -> control/cluster-api.ts: agent must not import control'],
      ],
      ['a dynamic import', { 'wire/x.ts': "export const f = () => import('../control/db');", 'control/db.ts': '' }, ['wire/x.ts -> control/db.ts: wire must not import control']],
      ['a re-export', { 'plugin/p.ts': "export { x } from '../control/c';", 'control/c.ts': '' }, ['plugin/p.ts -> control/c.ts: plugin must not import control']],
      ['the registry loading a backend implementation', { 'agent/backends/registry.ts': "import { BtrfsBackend } from './btrfs/index';", 'agent/backends/btrfs/index.ts': '' }, ['agent/backends/registry.ts -> agent/backends/btrfs/index.ts: registry must not import backends']],
      ['a descriptor importing its implementation statically', { 'agent/backends/zfs/descriptor.ts': "import { ZfsBackend } from './index';", 'agent/backends/zfs/index.ts': '' }, ['agent/backends/zfs/descriptor.ts -> agent/backends/zfs/index.ts: registry must not import backends']],
      ['a backend importing its agent', { 'agent/backends/index.ts': "import type { S } from '../backend-slots';", 'agent/backend-slots.ts': '' }, ['agent/backends/index.ts -> agent/backend-slots.ts: backends must not import agent']],
      ['wire loading a server package', { 'wire/s.ts': "import express from 'express';\nimport { z } from 'zod';\nimport { request } from 'node:http';" }, ['wire/s.ts -> express: wire may load only zod']],
      ['cli starting control through its one allowed file', { 'cli/main.ts': "const s = import('../control/service');\nimport { x } from '../control/db';", 'control/service.ts': '', 'control/db.ts': '' }, ['cli/main.ts -> control/db.ts: cli must not import control']],
      [
        'allowed directions and a part importing itself',
        { 'agent/a.ts': "import { b } from './b';\nimport type { R } from '../wire/records';", 'agent/b.ts': '', 'wire/records.ts': "import { E } from '../errors';", 'errors.ts': '' },
        [],
      ],
      ['a descriptor loading its own implementation lazily', { 'agent/backends/zfs/descriptor.ts': "const load = () => import('./index');", 'agent/backends/zfs/index.ts': '' }, []],
      ['a descriptor loading another backend lazily', { 'agent/backends/zfs/descriptor.ts': "const load = () => import('../loop/index');", 'agent/backends/loop/index.ts': '' }, ['agent/backends/zfs/descriptor.ts -> agent/backends/loop/index.ts: registry must not import backends']],
      ['serve importing anything', { 'serve.ts': "import { a } from './agent/a';\nimport { c } from './control/c';", 'agent/a.ts': '', 'control/c.ts': '' }, []],
      ['an import that resolves to nothing', { 'agent/a.ts': "import { gone } from './gone';" }, ['agent/a.ts -> ./gone: does not resolve to a file under src/']],
    ];
    for (const [what, files, expected] of table) {
      it(`${expected.length ? 'catches' : 'accepts'} ${what}`, function () {
        const got = checkImports(new Map(Object.entries(files))).map((v) => `${v.file} -> ${v.imports}: ${v.why}`);
        expect(got).to.deep.equal(expected);
      });
    }

    it('reads static, type-only, side-effect and dynamic imports, not words in comments', function () {
      const text = "import a from 'a';\nimport type { B } from './b';\nimport './c';\nconst d = await import('./d');\n// import x from './not-me';\nexport * from './e';";
      expect(specifiersOf(text)).to.deep.equal(['a', './b', './c', './d', './e']);
    });

    it('names parts by folder, backends apart from the agent, and the top files by name', function () {
      expect(['agent/mounts.ts', 'agent/backends/btrfs/index.ts', 'serve.ts', 'errors.ts', 'wire/records.ts'].map(partOf)).to.deep.equal(['agent', 'backends', 'serve', 'errors', 'wire']);
      expect(['agent/backends/registry.ts', 'agent/backends/backend.ts', 'agent/backends/descriptor.ts', 'agent/backends/loop/descriptor.ts', 'agent/backends/loop/images.ts'].map(partOf)).to.deep.equal(['registry', 'registry', 'registry', 'registry', 'backends']);
    });
  });
});
