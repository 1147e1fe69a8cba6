import { expect } from 'chai';
import { freezerDirOf, type CgroupLayout } from '../../src/agent/cgroup-freezer';

/* group (issue 7 item 2): which freezer a container's /proc/<pid>/cgroup points at (pure). */
describe('agent: cgroup freezer path (pure)', () => {
  const v2: CgroupLayout = { v2: true, v1Freezer: null, root: '/sys/fs/cgroup' };
  const v1: CgroupLayout = { v2: false, v1Freezer: '/sys/fs/cgroup/freezer', root: '/sys/fs/cgroup' };
  const hybrid = '9:name=systemd:/docker/abc\n6:freezer:/docker/abc\n4:memory:/docker/abc\n0::/docker/abc\n';
  const cases: [string, string, CgroupLayout, ReturnType<typeof freezerDirOf>][] = [
    ['unified: the 0:: cgroup', '0::/system.slice/docker-abc.scope\n', v2, { kind: 'v2', dir: '/sys/fs/cgroup/system.slice/docker-abc.scope' }],
    ['v1/hybrid: the freezer line, not 0::', hybrid, v1, { kind: 'v1', dir: '/sys/fs/cgroup/freezer/docker/abc' }],
    ['v1: a freezer mounted with other controllers', '3:cpu,freezer:/docker/abc\n', v1, { kind: 'v1', dir: '/sys/fs/cgroup/freezer/docker/abc' }],
    ['v1 host without a freezer line', '4:memory:/docker/abc\n0::/docker/abc\n', v1, null],
    ['unified, the root cgroup: never (it would stop the host)', '0::/\n', v2, null],
    ['v1, the root cgroup: never', '6:freezer:/\n', v1, null],
    ['a path climbing out: refused', '0::/../../x\n', v2, null],
    ['empty', '', v2, null],
  ];
  for (const [name, text, layout, want] of cases) it(name, () => expect(freezerDirOf(text, layout)).to.deep.equal(want));
});
