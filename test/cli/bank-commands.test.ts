import { expect } from 'chai';
import { bankAddBody, checkText, sampleOf } from '../../src/cli/bank-commands';
import { parseRestoreOpt, restoreMode } from '../../src/cli/backup-commands';

describe('ferry bank / ferry backup (pure parts)', function () {
  const files: Record<string, Buffer> = { '/k': Buffer.alloc(32, 7), '/a': Buffer.from(' AKIA1 \n'), '/s': Buffer.from('secret\n'), '/empty': Buffer.alloc(0) };
  const read = (p: string): Buffer => {
    const f = files[p];
    if (!f) throw new Error('ENOENT: no such file');
    return f;
  };
  const codeOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return (err as { code: string }).code;
    }
    return 'ok';
  };

  it('bank add sends file contents (key as base64, credentials trimmed), never paths', () => {
    const body = bankAddBody('main', 's3://b/p', { keyFile: '/k', accessKeyFile: '/a', secretKeyFile: '/s', endpoint: 'http://127.0.0.1:8080', readOnly: true }, read);
    expect(body).to.deep.equal({
      name: 'main',
      url: 's3://b/p',
      key: Buffer.alloc(32, 7).toString('base64'),
      endpoint: 'http://127.0.0.1:8080',
      accessKey: 'AKIA1',
      secretKey: 'secret',
      readOnly: true,
    });
    expect(JSON.stringify(body)).not.to.match(/"\/[aks]"/);
  });
  for (const [what, flags, code] of [
    ['one credential file alone', { keyFile: '/k', accessKeyFile: '/a' }, 'INVALID_REQUEST'],
    ['--read-only with --create', { keyFile: '/k', readOnly: true, create: true }, 'INVALID_REQUEST'],
    ['a key file that cannot be read', { keyFile: '/nope' }, 'INVALID_REQUEST'],
    ['an empty credential file', { keyFile: '/k', accessKeyFile: '/empty', secretKeyFile: '/s' }, 'INVALID_REQUEST'],
  ] as const) {
    it(`bank add refuses ${what}`, () => expect(codeOf(() => bankAddBody('main', 'file:///x', flags, read))).to.equal(code));
  }
  it('bank add refuses a bad name before reading anything', () => expect(codeOf(() => bankAddBody('Bad Name', 'file:///x', { keyFile: '/k' }, read))).to.equal('INVALID_NAME'));

  it('restore -o takes backend, size and fs only', () => {
    expect(parseRestoreOpt('size=10G', parseRestoreOpt('backend=loop', {}))).to.deep.equal({ backend: 'loop', size: '10G' });
    for (const bad of ['policy=x', 'size', '=1']) expect(codeOf(() => parseRestoreOpt(bad, {})), bad).to.equal('INVALID_OPTION');
  });
  for (const [what, o, want] of [
    ['--as', { as: 'new', opt: {} }, { as: 'new' }],
    ['--path --into', { path: 'etc', into: '/tmp/x', opt: {} }, { path: 'etc', into: '/tmp/x' }],
    ['both', { as: 'new', path: 'etc', into: '/tmp/x', opt: {} }, 'INVALID_REQUEST'],
    ['neither', { opt: {} }, 'INVALID_REQUEST'],
    ['--path without --into', { path: 'etc', opt: {} }, 'INVALID_REQUEST'],
    ['-o with --path', { path: 'etc', into: '/tmp/x', opt: { size: '1G' } }, 'INVALID_REQUEST'],
    ['a relative --into', { path: 'etc', into: 'x', opt: {} }, 'INVALID_REQUEST'],
  ] as const) {
    it(`restore mode: ${what}`, () => {
      if (typeof want === 'string') expect(codeOf(() => restoreMode(o))).to.equal(want);
      else expect(restoreMode(o)).to.deep.equal(want);
    });
  }

  it('check names each problem and the checkpoints it breaks', () => {
    const text = checkText('main', { checkpoints: 3, chunks: 10, read: 1, problems: [{ chunk: 'ab12', problem: 'missing', checkpoints: ['c1', 'c2'] }] });
    expect(text).to.equal('bank main: 3 checkpoints, 10 chunks referenced, 1 read and verified: 1 problems\n  chunk ab12 is missing; it breaks c1, c2');
    expect(checkText('main', { checkpoints: 1, chunks: 2, read: 0, problems: [] })).to.match(/no problems$/);
  });
  it('progress samples: no total is an unknown total', () => {
    expect(sampleOf({ phase: 'upload', doneBytes: 5, totalBytes: 10 })).to.deep.equal({ done: 5, total: 10, step: 'upload' });
    expect(sampleOf({ phase: 'snapshot', doneBytes: 0, totalBytes: 0 })).to.deep.equal({ done: 0, total: null, step: 'snapshot' });
  });
});
