import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (scripts/install-deps.sh installs it); playwright-core never downloads a browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** Where tests keep what a person may want to look at after a run (CI keeps the work dir). */
export const ARTIFACTS = resolve(__dirname, '../../../test-artifacts');

/** Viewports the dashboard must be readable at. */
export const LAPTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** A headless Chromium with its own fresh profile, gone when closed. */
export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Launches Debian's chromium headless, with nothing that reaches the network on its own. Skips the
 * calling suite, saying so, where this machine lacks chromium (CI installs it).
 */
export async function launchChromium(ctx: Mocha.Context): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    console.log(`    SKIPPED ${ctx.currentTest?.parent?.title ?? 'browser tests'}: this machine lacks chromium (${CHROMIUM}; scripts/install-deps.sh installs it)`);
    ctx.skip();
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright passes --headless itself, and a fresh --user-data-dir of its own (a temp profile it
    // removes on close; it refuses one in args: that is launchPersistentContext's).
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return { browser, close: () => browser.close().catch(() => undefined) };
}

/** Saves a full-page screenshot under test-artifacts/ and returns its path. */
export async function keepScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Logs in on the dashboard's form; resolves once the board shows and its stream is live. */
export async function logIn(page: Page, token: string): Promise<void> {
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#board', { state: 'visible', timeout: 15_000 });
  await page.waitForSelector('#status.live', { timeout: 15_000 });
}
