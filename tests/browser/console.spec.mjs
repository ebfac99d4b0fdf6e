// The web console in headless Chromium, as an operator uses it: sign in (a wrong secret
// refused), find an identity, edit a record, retry a dead letter, and a POST without
// the CSRF token refused. tests/test_console_browser.py sets up the server (a push
// target that fails each first delivery, so dead letters exist) and checks afterwards
// that the edit reached a boto3 client's next sync. With COGSYNC_SCREENSHOTS set to a
// folder, each page is saved there as console-<page>.png (docs/operations.md shows them).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { launchChromium } from './chromium.mjs';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through tests/test_console_browser.py`);
  return value;
}

const CONSOLE = required('COGSYNC_CONSOLE_URL');
const KEY_ID = required('COGSYNC_ACCESS_KEY_ID');
const SECRET = required('COGSYNC_SECRET_ACCESS_KEY');
const POOL_ID = required('COGSYNC_POOL_ID');
const IDENTITY_ID = required('COGSYNC_IDENTITY_ID');
const DATASET = required('COGSYNC_DATASET');
const KEY = required('COGSYNC_RECORD_KEY');
const NEW_VALUE = required('COGSYNC_NEW_VALUE');
const BULK_POOL_ID = required('COGSYNC_BULK_POOL_ID');  // streams on, no dead letters
const SHOTS = process.env.COGSYNC_SCREENSHOTS;

let browser;
let page;
const problems = [];

async function shot(name) {
  if (!SHOTS) return;
  await page.screenshot({ path: path.join(SHOTS, `console-${name}.png`), fullPage: true, caret: 'initial' });
}

before(async () => {
  browser = await launchChromium(required('COGSYNC_CHROMIUM'));
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  page = await context.newPage();
  page.on('response', (answer) => {
    if (answer.status() === 404) problems.push(`404: ${answer.url()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // The refused sign-in and the refused CSRF post log their 401/403 as resources.
    if (msg.type() === 'error' && !/status of (401|403)/.test(msg.text())) {
      problems.push(`console: ${msg.text()}`);
    }
  });
});

after(async () => { await browser?.close(); });

test('a wrong secret is refused and sets no session', async () => {
  await page.goto(`${CONSOLE}/pools`);
  assert.match(page.url(), /\/login$/);
  await page.fill('input[name=access_key_id]', KEY_ID);
  await shot('login');
  await page.fill('input[name=secret]', 'not-the-secret');
  await page.click('button[type=submit]');
  await page.waitForSelector('.problem');
  assert.match(await page.textContent('.problem'), /Wrong access key id or secret/);
  const cookies = await page.context().cookies();
  assert.equal(cookies.find((c) => c.name === 'cogsync_console'), undefined);
});

test('signing in sets an HttpOnly, SameSite=Strict session cookie', async () => {
  await page.fill('input[name=access_key_id]', KEY_ID);
  await page.fill('input[name=secret]', SECRET);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/pools$/);
  const session = (await page.context().cookies()).find((c) => c.name === 'cogsync_console');
  assert.ok(session, 'no session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie.includes('cogsync_console')), false);
  assert.ok(await page.isVisible(`text=${POOL_ID}`));
  await shot('pools');
});

test('find an identity by part of its id', async () => {
  await page.click(`a[href$="/pools/${encodeURIComponent(POOL_ID)}"]`);
  await page.waitForSelector('#identity-search');
  const part = IDENTITY_ID.split(':')[1].slice(0, 8);
  await page.fill('#identity-search', part);
  // htmx asks as one types and swaps in the matching rows only.
  await page.waitForFunction(
    (id) => {
      const links = [...document.querySelectorAll('#identities a')];
      return links.length === 1 && links[0].textContent === id;
    },
    IDENTITY_ID, { timeout: 15_000 },
  );
  await shot('pool');
  await page.click(`#identities a:text("${IDENTITY_ID}")`);
  await page.waitForSelector(`h1:has-text("${IDENTITY_ID}")`);
  await shot('identity');
});

test('edit a record: a new value at the next sync count', async () => {
  await page.click(`a:text-is("${DATASET}")`);
  await page.waitForSelector(`tr[data-key="${KEY}"]`);
  const before = Number(await page.textContent('#dataset-sync-count'));
  await shot('dataset');
  const row = page.locator(`tr[data-key="${KEY}"]`);
  await row.locator('input[name=value]').fill(NEW_VALUE);
  await row.locator('button[value=save]').click();
  await page.waitForSelector('.notice');
  assert.match(await page.textContent('.notice'), new RegExp(`saved ${KEY} at SyncCount ${before + 1}`));
  assert.equal(await page.inputValue(`tr[data-key="${KEY}"] input[name=value]`), NEW_VALUE);
  assert.equal(Number(await page.textContent('#dataset-sync-count')), before + 1);
});

test('a POST without the CSRF token is refused', async () => {
  const action = await page.getAttribute(`tr[data-key="${KEY}"] form`, 'action');
  const status = await page.evaluate(async (url) => {
    const body = new URLSearchParams({ key: 'intruder', value: 'x', action: 'save' });
    const answer = await fetch(url, { method: 'POST', body, credentials: 'same-origin' });
    return answer.status;
  }, action);
  assert.equal(status, 403);
  await page.reload();
  assert.equal(await page.locator('tr[data-key="intruder"]').count(), 0);
});

test('retry a dead letter: it is delivered', async () => {
  await page.click('nav a:text("Outbox")');
  await page.waitForSelector('#dead tr[data-id]');
  await shot('outbox');
  const id = await page.getAttribute('#dead tr[data-id]', 'data-id');
  await page.click(`#dead tr[data-id="${id}"] button`);
  await page.waitForSelector('.notice');
  assert.match(await page.textContent('.notice'), /requeued 1/);
  // The target takes it this time: the entry leaves the outbox for good.
  for (let i = 0; i < 100; i += 1) {
    await page.reload();
    const left = await page.locator(`[data-id="${id}"], [data-pending-id="${id}"]`).count();
    if (left === 0) return;
    await page.waitForTimeout(100);
  }
  assert.fail(`dead letter ${id} was not delivered after its retry`);
});

test('the other pages: accounts and keys, bulk publish, request rates', async () => {
  await page.click('nav a:text("Accounts & keys")');
  await page.waitForSelector(`text=${KEY_ID}`);
  await shot('accounts');
  await page.click('nav a:text("Bulk publish")');
  await page.waitForSelector('h1:text("Bulk publish jobs")');
  const row = `tr:has(a[href$="/pools/${encodeURIComponent(BULK_POOL_ID)}"])`;
  await page.click(`${row} button:text("Start")`);
  await page.waitForSelector('.notice');
  let status = '';
  for (let i = 0; i < 75 && status !== 'SUCCEEDED'; i += 1) {
    await page.waitForTimeout(200);
    await page.reload();
    status = await page.textContent(`${row} td:nth-child(3)`);
  }
  assert.equal(status, 'SUCCEEDED');
  await shot('bulk');
  await page.click('nav a:text("Request rates")');
  await page.waitForSelector('#rates td:text("Cognito Sync")');
  // htmx refreshes the table every 2 s: the console's own requests count too.
  const first = await page.textContent('#rates');
  await page.waitForFunction((was) => document.querySelector('#rates').textContent !== was,
    first, { timeout: 10_000 });
  await shot('rates');
  assert.deepEqual(problems, []);
});
