// The page of docs/web.md, as published there, in headless Chromium from another origin
// than cogsync's: the official browser builds of aws-sdk v2 and amazon-cognito-js,
// unmodified, with the Sync Manager's default localStorage store. Two browser contexts
// are two devices of one unauthenticated identity; each page listens on the live
// channel (EventSource, presigned URL) and synchronizes when it hears a change.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  CognitoSyncClient, DescribeDatasetCommand, ListRecordsCommand,
} from '@aws-sdk/client-cognito-sync';

import {
  DEVELOPER_KEY, ENDPOINT, POOL_ID, REGION, device, eventually, launch,
} from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const developerSync = new CognitoSyncClient({
  region: REGION, endpoint: ENDPOINT, credentials: DEVELOPER_KEY, maxAttempts: 1,
});

/** The records the server holds, read with the developer key (from Node, not the page). */
async function serverRecords(identityId, name) {
  const page = await developerSync.send(new ListRecordsCommand({
    IdentityPoolId: POOL_ID, IdentityId: identityId, DatasetName: name,
  }));
  return Object.fromEntries(page.Records.map((r) => [r.Key, r]));
}

/** Calls `window.app[method](...args)` in the page and returns its result. */
function app(page, method, ...args) {
  return page.evaluate(([m, a]) => window.app[m](...a), [method, args]);
}

/** What the page's Sync Manager keeps in window.localStorage for a dataset. */
function stored(page, identityId, name) {
  return page.evaluate((key) => JSON.parse(localStorage.getItem(key)), `${identityId}.${name}`);
}

/** Two devices (browser contexts) of one new identity. */
async function twoDevices() {
  const phone = await device(browser);
  const identityId = await phone.evaluate(() => window.app.identityId);
  assert.match(identityId, /^us-east-1:[0-9a-f-]{36}$/);
  const laptop = await device(browser, { identity: identityId });
  assert.equal(await laptop.evaluate(() => window.app.identityId), identityId);
  return [phone, laptop, identityId];
}

/** Waits until the page has heard the change that brought `name` to `syncCount`. */
function heard(page, name, syncCount) {
  return eventually(page, ([n, c]) => window.app.events.some(
    (e) => e.datasetName === n && e.syncCount === c), [name, syncCount]);
}

test('two devices put, synchronize and read each other\'s values', async () => {
  const [phone, laptop, id] = await twoDevices();
  await app(phone, 'put', 'settings', 'theme', 'dark');
  await app(phone, 'put', 'settings', 'lang', 'en');
  await app(phone, 'sync', 'settings');

  const remote = await serverRecords(id, 'settings');
  assert.equal(remote.theme.Value, 'dark');
  assert.equal(remote.lang.Value, 'en');
  assert.equal(remote.theme.SyncCount, 1);

  await app(laptop, 'sync', 'settings');
  assert.deepEqual(await app(laptop, 'getAll', 'settings'), { theme: 'dark', lang: 'en' });
  // The Sync Manager's default store is the browser's localStorage, per device.
  assert.equal((await stored(laptop, id, 'settings')).theme.Value, 'dark');

  await app(laptop, 'put', 'settings', 'lang', 'fr');
  await app(laptop, 'sync', 'settings');
  await app(phone, 'sync', 'settings');
  assert.equal(await app(phone, 'get', 'settings', 'lang'), 'fr');
  assert.equal((await serverRecords(id, 'settings')).lang.SyncCount, 2);
  // The page shows its dataset's records.
  assert.deepEqual(JSON.parse(await phone.textContent('#records')), { theme: 'dark', lang: 'fr' });
});

test('a change reaches the other device through the live channel, which synchronizes', async () => {
  const [phone, laptop, id] = await twoDevices();
  await app(phone, 'put', 'live', 'color', 'blue');
  await app(phone, 'sync', 'live');

  await heard(laptop, 'live', 1);
  const event = await laptop.evaluate(() => window.app.events.find((e) => e.datasetName === 'live'));
  assert.equal(event.identityId, id);
  assert.equal(event.identityPoolId, POOL_ID);
  assert.equal(event.source, 'cognito-sync');
  // No synchronize was asked of the laptop: the event made the page sync by itself.
  await eventually(laptop, (key) => JSON.parse(localStorage.getItem(key))?.color?.Value === 'blue',
    `${id}.live`);
  assert.equal(await app(laptop, 'get', 'live', 'color'), 'blue');
});

test('a conflict goes to onConflict and its resolution reaches both devices', async () => {
  const [phone, laptop, id] = await twoDevices();
  await app(phone, 'put', 'game', 'level', '1');
  await app(phone, 'sync', 'game');
  await heard(laptop, 'game', 1);
  await app(laptop, 'sync', 'game'); // queued after the live channel's: both done here
  assert.equal(await app(laptop, 'get', 'game', 'level'), '1');

  await app(laptop, 'put', 'game', 'level', '5'); // not synced: the laptop is behind
  await app(phone, 'put', 'game', 'level', '7');
  await app(phone, 'sync', 'game');
  // The laptop hears of 7 and synchronizes: the conflict goes to the page's onConflict,
  // which keeps the local value; the phone then hears of that and takes it.
  const conflicts = await eventually(laptop, () => window.app.conflicts.length > 0
    && window.app.conflicts);
  assert.deepEqual(conflicts, [{ dataset: 'game', key: 'level', remote: '7', local: '5' }]);
  await eventually(phone, (key) => JSON.parse(localStorage.getItem(key))?.level?.Value === '5',
    `${id}.game`);
  const level = (await serverRecords(id, 'game')).level;
  assert.equal(level.Value, '5');
  assert.equal(level.SyncCount, 3);
  assert.equal(await app(phone, 'get', 'game', 'level'), '5');
  assert.deepEqual(await phone.evaluate(() => window.app.conflicts), []);
});

test('a removed record reaches the other device, and reads back as \'\'', async () => {
  const [phone, laptop, id] = await twoDevices();
  await app(phone, 'put', 'notes', 'keep', 'this');
  await app(phone, 'put', 'notes', 'drop', 'that');
  await app(phone, 'sync', 'notes');
  await app(laptop, 'sync', 'notes');
  assert.equal(await app(laptop, 'get', 'notes', 'drop'), 'that');

  await app(phone, 'remove', 'notes', 'drop');
  await app(phone, 'sync', 'notes');
  const remote = await serverRecords(id, 'notes');
  assert.equal(remote.keep.Value, 'this');
  assert.equal(remote.drop.Value, undefined, 'a removed record is a tombstone without Value');
  assert.equal(remote.drop.SyncCount, 2);
  const described = await developerSync.send(new DescribeDatasetCommand({
    IdentityPoolId: POOL_ID, IdentityId: id, DatasetName: 'notes',
  }));
  assert.equal(described.Dataset.NumRecords, 1);

  await app(laptop, 'sync', 'notes');
  assert.equal(await app(laptop, 'get', 'notes', 'drop'), '');
  assert.equal(await app(laptop, 'get', 'notes', 'keep'), 'this');
  const local = await stored(laptop, id, 'notes');
  assert.equal(local.drop.SyncCount, 2);
  assert.equal(local.drop.Modified, false);
});

test('a dataset deleted on one device reaches the other through onDatasetDeleted', async () => {
  const [phone, laptop, id] = await twoDevices();
  await app(phone, 'put', 'scratch', 'x', '1');
  await app(phone, 'sync', 'scratch');
  await app(laptop, 'sync', 'scratch');
  assert.equal(await app(laptop, 'get', 'scratch', 'x'), '1');

  await app(phone, 'deleteDataset', 'scratch'); // DeleteDataset: a DELETE, preflighted
  await assert.rejects(developerSync.send(new DescribeDatasetCommand({
    IdentityPoolId: POOL_ID, IdentityId: id, DatasetName: 'scratch',
  })), { name: 'ResourceNotFoundException' });

  await app(laptop, 'sync', 'scratch');
  assert.deepEqual(await laptop.evaluate(() => window.app.deleted), ['scratch']);
  assert.deepEqual(await app(laptop, 'getAll', 'scratch'), {});

  // The name can be used again, and the other device gets the new dataset.
  await app(laptop, 'put', 'scratch', 'y', '2');
  await app(laptop, 'sync', 'scratch');
  await app(phone, 'sync', 'scratch');
  assert.deepEqual(await app(phone, 'getAll', 'scratch'), { y: '2' });
  assert.deepEqual(Object.keys(await serverRecords(id, 'scratch')), ['y']);
});

test('the SDK reads the request id and error code of answers from another origin', async () => {
  const phone = await device(browser);
  const seen = await phone.evaluate(async () => {
    const sync = new AWS.CognitoSync();
    const where = { IdentityPoolId: POOL_ID, IdentityId: window.app.identityId };
    const ok = await sync.listDatasets(where).promise();
    const err = await sync.describeDataset({ ...where, DatasetName: 'never-made' }).promise()
      .catch((e) => e);
    return { ok: ok.$response.requestId, code: err.code, status: err.statusCode, id: err.requestId };
  });
  // x-amzn-RequestId is readable only because cogsync exposes it to pages.
  assert.match(seen.ok, /^[0-9a-f-]{36}$/);
  assert.equal(seen.code, 'ResourceNotFoundException');
  assert.equal(seen.status, 404);
  assert.match(seen.id, /^[0-9a-f-]{36}$/);
});
