import { expect } from 'chai';
import { chooseStandbys, type StandbyCandidate } from '../../src/control/standby-chooser';

/* replicate: which hosts keep a volume's standbys (pure), table-driven. */

const host = (name: string, o: Partial<StandbyCandidate> = {}): StandbyCandidate => ({ name, up: true, copies: 0, holdsCopy: false, ...o });

describe('control: choosing standby hosts', function () {
  const cases: {
    why: string;
    settings: { replicateTo: string[]; replicas: number | null };
    standbys?: string[];
    hosts: StandbyCandidate[];
    want: string[];
  }[] = [
    { why: 'named hosts as named, sorted', settings: { replicateTo: ['h3', 'h2'], replicas: null }, hosts: [host('h1'), host('h2'), host('h3')], want: ['h2', 'h3'] },
    { why: 'named: never the primary', settings: { replicateTo: ['h1', 'h2'], replicas: null }, hosts: [host('h1'), host('h2')], want: ['h2'] },
    { why: 'named: a host the cluster does not know is left out', settings: { replicateTo: ['h2', 'h9'], replicas: null }, hosts: [host('h1'), host('h2')], want: ['h2'] },
    { why: 'named: a host that is down stays a standby (it is late, not replaced)', settings: { replicateTo: ['h2'], replicas: null }, hosts: [host('h1'), host('h2', { up: false })], want: ['h2'] },
    { why: 'N: fewest copies first', settings: { replicateTo: [], replicas: 1 }, hosts: [host('h1'), host('h2', { copies: 5 }), host('h3', { copies: 1 })], want: ['h3'] },
    { why: 'N: by name among equals', settings: { replicateTo: [], replicas: 2 }, hosts: [host('h1'), host('h4'), host('h3'), host('h2')], want: ['h2', 'h3'] },
    { why: 'N: only up hosts', settings: { replicateTo: [], replicas: 2 }, hosts: [host('h1'), host('h2', { up: false }), host('h3')], want: ['h3'] },
    { why: 'N: only hosts with the backend', settings: { replicateTo: [], replicas: 1 }, hosts: [host('h1'), host('h2', { backends: ['directory'] }), host('h3', { backends: ['btrfs'], copies: 9 })], want: ['h3'] },
    { why: 'N: a host that never reported is assumed able', settings: { replicateTo: [], replicas: 1 }, hosts: [host('h1'), host('h2')], want: ['h2'] },
    { why: 'N: current standbys stay (a change costs a full send)', settings: { replicateTo: [], replicas: 1 }, standbys: ['h3'], hosts: [host('h1'), host('h2'), host('h3', { copies: 7 })], want: ['h3'] },
    { why: 'N: a current standby that went down is replaced', settings: { replicateTo: [], replicas: 1 }, standbys: ['h3'], hosts: [host('h1'), host('h2'), host('h3', { up: false })], want: ['h2'] },
    { why: 'N: a host holding a copy comes before emptier ones', settings: { replicateTo: [], replicas: 1 }, hosts: [host('h1'), host('h2'), host('h3', { holdsCopy: true, copies: 4 })], want: ['h3'] },
    { why: 'N: fewer able hosts than asked: all of them', settings: { replicateTo: [], replicas: 3 }, hosts: [host('h1'), host('h2')], want: ['h2'] },
    { why: 'N: a smaller N drops the most crowded', settings: { replicateTo: [], replicas: 1 }, standbys: ['h2', 'h3'], hosts: [host('h1'), host('h2', { copies: 3 }), host('h3', { copies: 1 })], want: ['h3'] },
  ];
  for (const c of cases) {
    it(c.why, function () {
      expect(chooseStandbys(c.settings, { primary: 'h1', backend: 'btrfs', standbys: c.standbys ?? [] }, c.hosts)).to.deep.equal(c.want);
    });
  }
});
