import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { FERRY } from './ferry-cluster';
import { useFerryCluster } from './use-ferry-cluster';
import { TEST_IMAGE } from '../support/docker';
import { keepScreenshot, launchChromium, logIn, LAPTOP, type TestBrowser } from '../support/browser';

/** The ferry CLI, without blocking this process (the browser's connection lives in it). */
function cliAsync(apiSocket: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(FERRY, ['--api-socket', apiSocket, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe('cluster: the dashboard of ferry control shows a move as it runs', function () {
  let chrome: TestBrowser;

  // Registered before useFerryCluster's hooks, so they run first: chromium starts before the hosts
  // and closes before ferry stops.
  before(async function () {
    chrome = await launchChromium(this);
  });
  after(async function () {
    await chrome?.close();
  });
  // A pause after each step of a move, so that the page sees it step by step (moves.stepDelayMs is for tests).
  const env = useFerryCluster({ hosts: 2, settings: { moves: { stepDelayMs: 1500 } } });

  it('lists both hosts up, then shows the move of a volume progress from step to step until done', async function () {
    const [h1, h2] = env.cluster.hosts;
    await h1.dockerOk(['volume', 'create', '-d', 'ferry', '-o', 'size=256M', 'shown']);
    const w = await h1.docker(['run', '--rm', '-v', 'shown:/data', TEST_IMAGE, 'sh', '-c', 'dd if=/dev/urandom of=/data/blob bs=1M count=24 2>/dev/null && sync']);
    expect(w.code, w.stderr).to.equal(0);

    const page: Page = await chrome.browser.newPage({ viewport: LAPTOP });
    await page.goto(`${env.ferry.controlUrl}/ui/`);
    await logIn(page, readFileSync(env.ferry.tokenFile, 'utf8').trim());
    await page.waitForSelector('[data-host="h1"] .badge.up');
    await page.waitForSelector('[data-host="h2"] .badge.up');
    // Each agent reports its pools to control after its first upkeep pass.
    await page.waitForSelector('[data-host="h1"] .pool:has-text("btrfs")');
    await page.waitForSelector('[data-host="h2"] .pool:has-text("btrfs")');
    await page.waitForSelector('[data-volume="shown"]');
    // Every text the move's row shows, recorded in the page as it changes (no reloads, no polling here).
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { moveTexts: string[] }).moveTexts = seen;
      const note = () => {
        const row = document.querySelector('#moves tr');
        const text = row ? `${row.querySelector('.badge')?.textContent} | ${row.querySelector('.progress-text')?.textContent}` : '';
        if (text && seen[seen.length - 1] !== text) seen.push(text);
      };
      new MutationObserver(note).observe(document.getElementById('moves')!, { childList: true, subtree: true, characterData: true });
    });

    const moved = cliAsync(env.ferry.apiSocket(h2), ['volume', 'move', 'shown', '--to', 'h2']);
    await page.waitForSelector('#moves tr .badge.precopy, #moves tr .badge.releasing', { timeout: 60_000 });
    await page.waitForSelector('[data-volume="shown"] .badge:has-text("moving")');
    await keepScreenshot(page, 'dashboard-cluster-move.png');
    const m = await moved;
    expect(m.code, m.stderr).to.equal(0);
    await page.waitForSelector('#moves tr .badge.done', { timeout: 30_000 });
    await page.waitForSelector('[data-volume="shown"] td[data-label="Primary"]:has-text("h2")');
    const texts = await page.evaluate(() => (window as unknown as { moveTexts: string[] }).moveTexts);
    const active = texts.filter((t) => !t.startsWith('done'));
    // Seen while it ran: at least three different steps or progress figures before it was done.
    expect(active.length, texts.join('\n')).to.be.at.least(3);
    expect(new Set(active.map((t) => t.split(' | ')[0])).size, texts.join('\n')).to.be.at.least(2);
    expect(texts[texts.length - 1]).to.match(/^done \| done, \d/);
    expect(await page.textContent('#events')).to.match(/move-switched/);
    await keepScreenshot(page, 'dashboard-cluster-done.png');
    await page.close();
  });
});
