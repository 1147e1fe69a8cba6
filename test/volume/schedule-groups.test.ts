import { expect } from 'chai';
import { scheduleGroups, type TickContainer } from '../../src/volume/schedule-groups';

/* group (issue 7 item 2): which volumes of one cron tick are snapshotted together (pure). */
describe('volume: schedule groups (a tick\'s Compose projects)', () => {
  const c = (project: string | null, ...volumes: string[]): TickContainer => ({ project, volumes });
  const cases: { name: string; volumes: string[]; containers: TickContainer[]; groups: [string, string[]][]; singles: string[]; ambiguous?: string[] }[] = [
    { name: 'no containers: all alone', volumes: ['b', 'a'], containers: [], groups: [], singles: ['a', 'b'] },
    { name: 'two volumes of one project, two containers: one group', volumes: ['db', 'files'], containers: [c('shop', 'db'), c('shop', 'files')], groups: [['shop', ['db', 'files']]], singles: [] },
    { name: 'one container mounting both', volumes: ['db', 'files'], containers: [c('shop', 'files', 'db')], groups: [['shop', ['db', 'files']]], singles: [] },
    { name: 'a project with one of the tick\'s volumes: alone', volumes: ['db', 'logs'], containers: [c('shop', 'db'), c('shop', 'other')], groups: [], singles: ['db', 'logs'] },
    { name: 'no project label: alone', volumes: ['db', 'files', 'x'], containers: [c('shop', 'db'), c('shop', 'files'), c(null, 'x')], groups: [['shop', ['db', 'files']]], singles: ['x'] },
    { name: 'an unlabelled container next to a project one keeps the project', volumes: ['db', 'files'], containers: [c('shop', 'db'), c(null, 'db'), c('shop', 'files')], groups: [['shop', ['db', 'files']]], singles: [] },
    { name: 'two projects on one volume: that volume alone', volumes: ['db', 'files', 'shared'], containers: [c('shop', 'db', 'shared'), c('blog', 'shared'), c('shop', 'files')], groups: [['shop', ['db', 'files']]], singles: ['shared'], ambiguous: ['shared'] },
    { name: 'two projects: two groups, sorted', volumes: ['w1', 'w2', 'b1', 'b2'], containers: [c('web', 'w2', 'w1'), c('blog', 'b1'), c('blog', 'b2')], groups: [['blog', ['b1', 'b2']], ['web', ['w1', 'w2']]], singles: [] },
    { name: 'volumes outside the tick are ignored', volumes: ['db'], containers: [c('shop', 'db', 'files')], groups: [], singles: ['db'] },
    { name: 'an empty project label is no project', volumes: ['a', 'b'], containers: [c('', 'a', 'b')], groups: [], singles: ['a', 'b'] },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const plan = scheduleGroups(t.volumes, t.containers);
      expect(plan.groups.map((g) => [g.project, g.volumes])).to.deep.equal(t.groups);
      expect(plan.singles).to.deep.equal(t.singles);
      expect(plan.ambiguous.map((a) => a.volume)).to.deep.equal(t.ambiguous ?? []);
    });
  }
});
