import { expect } from 'chai';
import { readFileSync, statSync } from 'node:fs';
import type { Config } from '../../src/config/config';
import type { Ferry } from '../../src/serve';
import { webTokenPath } from '../../src/web/web-token';
import { keepScreenshot, launchChromium, logIn, LAPTOP, PHONE, type TestBrowser } from '../support/browser';
import { startTestFerry, testConfig } from '../support/ferry';
import { cleanupDir, makeTempDir, requireRootAndTools } from '../support/host';

describe('dashboard in headless Chromium against a live ferry serve', function () {
  let dir: string;
  let config: Config;
  let ferry: Ferry;
  let chrome: TestBrowser;
  let token: string;

  before(async function () {
    chrome = await launchChromium(this);
    requireRootAndTools('btrfs', 'mkfs.btrfs');
    dir = makeTempDir('dashboard');
    config = testConfig(dir);
    ferry = await startTestFerry(config);
    token = readFileSync(webTokenPath(config.dataDir), 'utf8').trim();
  });
  after(async function () {
    await chrome?.close();
    await ferry?.stop();
    if (dir) cleanupDir(dir);
  });

  it('made its own token at first start, readable by root only', function () {
    expect(statSync(webTokenPath(config.dataDir)).mode & 0o777).to.equal(0o600);
    expect(token).to.have.length.greaterThan(30);
  });

  it('loads, refuses a wrong token, logs in, and shows a volume made a moment later without a reload', async function () {
    const page = await chrome.browser.newPage({ viewport: LAPTOP });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${ferry.webUrl}/ui/`);
    expect(await page.isVisible('#login')).to.equal(true);
    expect(await page.isVisible('#board')).to.equal(false);

    await page.fill('#token', 'not-the-token-of-this-ferry');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#login-error', { state: 'visible' });
    expect(await page.textContent('#login-error')).to.match(/Wrong token/);
    expect(await page.isVisible('#board')).to.equal(false);

    await logIn(page, token);
    expect(await page.textContent('#hosts')).to.match(/h1/);
    expect(await page.isVisible('#attention-none')).to.equal(true);
    // A mark on this document: gone if the page reloads.
    await page.evaluate(() => ((window as unknown as { mark: number }).mark = 42));

    await ferry.agent.volumes.create('fresh', { size: '64M' });
    await page.waitForSelector('[data-volume="fresh"]', { timeout: 15_000 });
    const row = await page.textContent('[data-volume="fresh"]');
    expect(row).to.match(/fresh/).and.match(/64\.0 MiB/).and.match(/h1/);
    await page.waitForSelector('#events [data-event]:has-text("created")', { timeout: 15_000 });
    expect(await page.evaluate(() => (window as unknown as { mark?: number }).mark)).to.equal(42);
    // The token never travels in a URL, and nothing loads from elsewhere.
    expect(requests.filter((u) => u.includes(token))).to.deep.equal([]);
    expect(requests.filter((u) => !u.startsWith(ferry.webUrl!))).to.deep.equal([]);
    await keepScreenshot(page, 'dashboard.png');
    await page.close();
  });

  it('is readable on a phone: rows become cards, nothing scrolls sideways', async function () {
    const page = await chrome.browser.newPage({ viewport: PHONE, isMobile: true, hasTouch: true });
    await page.goto(`${ferry.webUrl}/ui/`);
    await logIn(page, token);
    await page.waitForSelector('[data-volume="fresh"]');
    const layout = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      thead: getComputedStyle(document.querySelector('#volumes')!.closest('table')!.querySelector('thead')!).display,
      cell: getComputedStyle(document.querySelector('[data-volume="fresh"] td')!).display,
      label: getComputedStyle(document.querySelector('[data-volume="fresh"] td')!, '::before').content,
    }));
    expect(layout.overflow).to.be.at.most(0);
    expect(layout.thead).to.equal('none');
    expect(layout.cell).to.equal('flex');
    expect(layout.label).to.equal('"Volume"');
    await keepScreenshot(page, 'dashboard-phone.png');
    // The laptop keeps its table.
    await page.setViewportSize(LAPTOP);
    expect(await page.evaluate(() => getComputedStyle(document.querySelector('#volumes')!.closest('table')!.querySelector('thead')!).display)).to.equal('table-header-group');
    await page.close();
  });

  it('logs out: the token is forgotten and the board hidden', async function () {
    const page = await chrome.browser.newPage({ viewport: LAPTOP });
    await page.goto(`${ferry.webUrl}/ui/`);
    await logIn(page, token);
    await page.click('#logout');
    await page.waitForSelector('#login', { state: 'visible' });
    expect(await page.evaluate(() => sessionStorage.getItem('ferry-token'))).to.equal(null);
    await page.reload();
    expect(await page.isVisible('#login')).to.equal(true);
    await page.close();
  });
});
