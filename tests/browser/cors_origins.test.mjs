// --cors-origins in a real browser: a cogsync that allows only SITE's origin serves the
// page of docs/web.md from SITE, and Chromium refuses its answers to a page from
// OTHER_SITE (another port: another origin), which the default cogsync serves.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ENDPOINT, OTHER_SITE, RESTRICTED_ENDPOINT, RESTRICTED_POOL_ID, SITE, device, launch, openPage,
} from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** What `fetch(url, init)` from the page gives: the status, or the error's name. */
function fetchFrom(page, url, init = {}) {
  return page.evaluate(([u, i]) => fetch(u, i).then((r) => r.status, (e) => e.name), [url, init]);
}

const DELETE_INIT = { method: 'DELETE', headers: { 'x-amz-date': '20250101T000000Z' } };

test('a page from an allowed origin syncs with a server that lists only that origin', async () => {
  const phone = await device(browser, {
    endpoint: RESTRICTED_ENDPOINT, pool: RESTRICTED_POOL_ID, site: SITE,
  });
  await phone.evaluate(() => window.app.put('settings', 'theme', 'dark'));
  await phone.evaluate(() => window.app.sync('settings'));
  assert.equal(await phone.evaluate(() => window.app.get('settings', 'theme')), 'dark');
  assert.equal(await fetchFrom(phone, `${RESTRICTED_ENDPOINT}/_cogsync/health`), 200);
  // A preflighted request gets through too (an unsigned DELETE: refused by cogsync, read
  // by the page).
  assert.equal(await fetchFrom(phone, `${RESTRICTED_ENDPOINT}/identitypools/x/identities/y/datasets/z`,
    DELETE_INIT), 403);
});

test('a page from an origin the server does not list is refused by the browser', async () => {
  const query = new URLSearchParams({ endpoint: RESTRICTED_ENDPOINT, pool: RESTRICTED_POOL_ID });
  const page = await openPage(browser, `${OTHER_SITE}/index.html?${query}`);
  const signIn = await page.evaluate(() => window.app.ready.then(() => 'signed in', (e) => e.code));
  assert.equal(signIn, 'NetworkingError', 'GetId must be blocked by the browser');
  assert.equal(await fetchFrom(page, `${RESTRICTED_ENDPOINT}/_cogsync/health`), 'TypeError');
  assert.equal(await fetchFrom(page, `${RESTRICTED_ENDPOINT}/identitypools/x/identities/y/datasets/z`,
    DELETE_INIT), 'TypeError');
  // The same page may call a server with the default settings: the refusal is the setting.
  assert.equal(await fetchFrom(page, `${ENDPOINT}/_cogsync/health`), 200);
});
