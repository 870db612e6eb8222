import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';

/** Debian's chromium, headless, driven by playwright-core. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.EXAMLAB_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
}

/** Where the test run saves its screenshots. */
export const SCREENSHOTS = join(PACKAGE_ROOT, 'build', 'screenshots');

export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: options.fullPage });
  return path;
}

/** Fails the test on any script error or CSP violation the page reports. */
export function watchPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
  return errors;
}
