import { expect } from 'chai';
import express from 'express';
import { isLoopback, startWebListener, type WebListener } from '../../src/web/web-listener';
import { silentLogger } from '../../src/log';

const log = silentLogger();

function routes(): { path: string; router: express.Router; open?: boolean }[] {
  const data = express.Router().get('/', (_req, res) => void res.json({ secret: 42 }));
  const page = express.Router().get('/', (_req, res) => void res.type('text/html').send('<html></html>'));
  return [
    { path: '/data', router: data },
    { path: '/page', router: page, open: true },
  ];
}

describe('web listener', () => {
  let web: WebListener | undefined;
  afterEach(async () => {
    await web?.stop();
    web = undefined;
  });

  for (const [host, loop] of [['127.0.0.1', true], ['127.9.9.9', true], ['localhost', true], ['::1', true], ['0.0.0.0', false], ['10.0.0.1', false], ['::', false]] as const) {
    it(`${host} is ${loop ? '' : 'not '}loopback`, () => expect(isLoopback(host)).to.equal(loop));
  }

  it('on loopback without a token, serves every route', async () => {
    web = await startWebListener('127.0.0.1:0', undefined, routes(), log);
    const r = await fetch(`${web.url}/data`);
    expect(r.status).to.equal(200);
    expect(await r.json()).to.deep.equal({ secret: 42 });
  });

  it('with a token, closed routes need it and open ones do not', async () => {
    web = await startWebListener('127.0.0.1:0', 'a-long-test-token-123', routes(), log);
    const none = await fetch(`${web.url}/data`);
    expect(none.status).to.equal(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).to.equal('UNAUTHORIZED');
    const wrong = await fetch(`${web.url}/data`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).to.equal(401);
    const right = await fetch(`${web.url}/data`, { headers: { authorization: 'Bearer a-long-test-token-123' } });
    expect(right.status).to.equal(200);
    expect((await fetch(`${web.url}/page`)).status).to.equal(200);
  });

  it('refuses to listen beyond loopback without a token, saying what to set', async () => {
    let err: (Error & { code?: string }) | undefined;
    await startWebListener('0.0.0.0:0', undefined, routes(), log).catch((e: Error) => (err = e));
    expect(err?.code).to.equal('INVALID_CONFIG');
    expect(err?.message).to.match(/web\.tokenFile/);
  });

  it('names the address in use and what to do', async () => {
    web = await startWebListener('127.0.0.1:0', undefined, routes(), log);
    const port = new URL(web.url).port;
    let err: (Error & { code?: string }) | undefined;
    await startWebListener(`127.0.0.1:${port}`, undefined, routes(), log).catch((e: Error) => (err = e));
    expect(err?.code).to.equal('INVALID_CONFIG');
    expect(err?.message).to.match(/in use.*--web-listen/);
  });

  it('answers an unknown path with a clear error', async () => {
    web = await startWebListener('127.0.0.1:0', undefined, routes(), log);
    const r = await fetch(`${web.url}/nope`);
    expect(r.status).to.be.within(400, 404);
    expect(((await r.json()) as { error: { message: string } }).error.message).to.match(/no such endpoint/);
  });
});
