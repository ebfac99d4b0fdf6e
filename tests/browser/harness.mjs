// Shared set-up of the browser tests: where the servers and the site are, headless
// Chromium (Debian's, never a downloaded one), and pages opened as devices.
import { launchChromium } from './chromium.mjs';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through tests/test_browser.py`);
  }
  return value;
}

export const REGION = 'us-east-1';
export const ENDPOINT = required('COGSYNC_ENDPOINT');
export const POOL_ID = required('COGSYNC_POOL_ID');
export const DEVELOPER_KEY = {
  accessKeyId: required('COGSYNC_ACCESS_KEY_ID'),
  secretAccessKey: required('COGSYNC_SECRET_ACCESS_KEY'),
};
export const SITE = required('COGSYNC_SITE');  // the page's origin, another port than cogsync's
export const OTHER_SITE = required('COGSYNC_OTHER_SITE');
export const RESTRICTED_ENDPOINT = required('COGSYNC_RESTRICTED_ENDPOINT');  // allows SITE only
export const RESTRICTED_POOL_ID = required('COGSYNC_RESTRICTED_POOL_ID');

/** Chromium with a fresh profile. */
export function launch() {
  return launchChromium(required('COGSYNC_CHROMIUM'));
}

/**
 * A page in a browser context of its own (its own localStorage: one device), on `url`.
 * What the page logs and throws is kept for failure messages.
 */
export async function openPage(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
  });
  await page.goto(url);
  return page;
}

/** The page of docs/web.md as one device, signed in and listening on the live channel. */
export async function device(browser, { identity, endpoint = ENDPOINT, pool = POOL_ID,
  site = SITE } = {}) {
  const query = new URLSearchParams({ endpoint, pool, ...(identity ? { identity } : {}) });
  const page = await openPage(browser, `${site}/index.html?${query}`);
  await page.evaluate(() => window.app.ready);
  await eventually(page, () => window.app.liveConnected);
  return page;
}

/** Polls `fn` in the page until it returns something truthy (15 s at most: a busy machine). */
export async function eventually(page, fn, arg) {
  const handle = await page.waitForFunction(fn, arg, { timeout: 15_000, polling: 50 })
    .catch(async (err) => {
      const state = await page.evaluate(() => window.app && JSON.stringify({
        events: window.app.events, conflicts: window.app.conflicts, deleted: window.app.deleted,
        log: document.getElementById('log').textContent,
      })).catch(() => '');
      throw new Error(`${err.message}\npage state: ${state}\n${page.problems.join('\n')}`);
    });
  return handle.jsonValue();
}
