import { expect } from 'chai';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { LocalControl } from '../../src/control/control';
import { openDb } from '../../src/control/db';
import { isFerryError } from '../../src/errors';
import { cleanupDir, makeTempDir } from '../support/host';

describe('control: banks (records, secrets for agents only, events)', function () {
  let dir: string;
  before(() => (dir = makeTempDir('banks')));
  after(() => cleanupDir(dir));

  it('records, lists, hands secrets only through bankSecrets, forgets; its database is 0600', async () => {
    const path = join(dir, 'control.db');
    const db = openDb(path);
    const c = new LocalControl(db);
    const secrets = { keyBase64: Buffer.alloc(32, 1).toString('base64'), accessKey: 'AK', secretKey: 'SK-very-secret' };
    const b = await c.addBank({ name: 'main', url: 's3://b/p', endpoint: 'http://127.0.0.1:8080', region: null, readOnly: false, bankId: 'id-1' }, secrets, 'h1');
    expect(b).to.include({ name: 'main', url: 's3://b/p', readOnly: false, bankId: 'id-1' });
    await c.addBank({ name: 'archive', url: 'file:///srv/bank', endpoint: null, region: null, readOnly: true, bankId: 'id-2' }, { keyBase64: secrets.keyBase64 }, 'h1');
    const err = await c.addBank({ name: 'main', url: 'file:///x', endpoint: null, region: null, readOnly: false, bankId: 'id-3' }, secrets, 'h1').catch((e: unknown) => e);
    expect(isFerryError(err, 'BANK_EXISTS')).to.equal(true);

    expect((await c.listBanks()).map((x) => x.name)).to.deep.equal(['archive', 'main']);
    expect((await c.getBank('archive'))?.readOnly).to.equal(true);
    expect(await c.bankSecrets('main')).to.deep.equal(secrets);
    const shown = JSON.stringify([await c.listBanks(), await c.getBank('main'), await c.recentEvents(100)]);
    expect(shown).not.to.include('SK-very-secret');
    expect(shown).not.to.include(secrets.keyBase64);

    await c.removeBank('main', 'h1');
    expect(await c.getBank('main')).to.equal(undefined);
    expect(isFerryError(await c.bankSecrets('main').catch((e: unknown) => e), 'BANK_NOT_FOUND')).to.equal(true);
    expect(isFerryError(await c.removeBank('main', 'h1').catch((e: unknown) => e), 'BANK_NOT_FOUND')).to.equal(true);
    expect((await c.recentEvents(100)).map((e) => e.kind)).to.deep.equal(['bank-added', 'bank-added', 'bank-removed']);
    db.close();
    expect(statSync(path).mode & 0o777).to.equal(0o600);
  });
});
