// The AWS SDK for JavaScript v3 in the browser: the module of docs/web.md, bundled with
// esbuild (@aws-sdk/client-cognito-identity, @aws-sdk/client-cognito-sync and
// @smithy/signature-v4 for the live channel), run in headless Chromium from a page on
// another origin than cogsync's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ENDPOINT, POOL_ID, REGION, SITE, eventually, launch, openPage,
} from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A page that has imported the bundle and signed in a new identity (window.session). */
async function signedIn() {
  const page = await openPage(browser, `${SITE}/blank.html`);
  const identityId = await page.evaluate(async (config) => {
    window.v3 = await import('/sync-v3.js');
    window.session = await window.v3.signIn(config);
    return window.session.identityId;
  }, { endpoint: ENDPOINT, region: REGION, identityPoolId: POOL_ID });
  assert.match(identityId, /^us-east-1:[0-9a-f-]{36}$/);
  return [page, identityId];
}

test('v3: GetId, GetCredentialsForIdentity, records written and removed, datasets listed and deleted', async () => {
  const [page] = await signedIn();
  const first = await page.evaluate(() => window.v3.write(window.session, 'prefs', { a: '1', b: '2' }));
  assert.deepEqual(first.map((r) => [r.Key, r.Value, r.SyncCount]), [['a', '1', 1], ['b', '2', 1]]);

  const second = await page.evaluate(() => window.v3.write(window.session, 'prefs', { a: null }));
  assert.deepEqual(second.map((r) => [r.Key, r.Value, r.SyncCount]), [['a', undefined, 2]]);
  assert.deepEqual(await page.evaluate(() => window.v3.datasets(window.session)), ['prefs']);

  const deleted = await page.evaluate(async () => {
    const out = await window.v3.deleteDataset(window.session, 'prefs');
    return [out.Dataset.DatasetName, out.Dataset.NumRecords, out.$metadata.httpStatusCode];
  });
  assert.deepEqual(deleted, ['prefs', 1, 200]);
  assert.deepEqual(await page.evaluate(() => window.v3.datasets(window.session)), []);
});

test('v3: errors keep their name, status and request id across origins', async () => {
  const [page] = await signedIn();
  const err = await page.evaluate(() => window.v3.deleteDataset(window.session, 'never-made')
    .then(() => null, (e) => ({ name: e.name, status: e.$metadata.httpStatusCode,
      requestId: e.$metadata.requestId })));
  assert.equal(err.name, 'ResourceNotFoundException');
  assert.equal(err.status, 404);
  // Read from x-amzn-RequestId, which a page sees only because cogsync exposes it.
  assert.match(err.requestId, /^[0-9a-f-]{36}$/);
});

test('v3: the live channel through EventSource with a URL presigned by SignatureV4', async () => {
  const [page, identityId] = await signedIn();
  await page.evaluate(async () => {
    window.changes = [];
    window.events = await window.v3.watch(window.session, (c) => window.changes.push(c));
  });
  await page.evaluate(() => window.v3.write(window.session, 'watched', { k: 'v' }));
  await page.evaluate(() => window.v3.deleteDataset(window.session, 'watched'));
  const changes = await eventually(page, () => window.changes.length >= 2 && window.changes);
  assert.deepEqual(changes.map((c) => [c.datasetName, c.syncCount, c.identityId]),
    [['watched', 1, identityId], ['watched', 1, identityId]]);
  await page.evaluate(() => window.events.close());
});
