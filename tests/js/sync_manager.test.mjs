// The official Cognito Sync Manager for JavaScript (amazon-cognito-js) on aws-sdk v2,
// unmodified, against cogsync. Only the endpoints are changed, through aws-sdk's
// per-service configuration (the Sync Manager builds its own `new AWS.CognitoSync()`).
//
// The library is written for browsers: its default DataStore reads `window.localStorage`.
// It accepts a `DataStore` constructor option, so each "device" here gets the library's
// own localStorage adapter over an in-memory Storage of its own; nothing global is faked.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import AWS from 'aws-sdk';
import 'amazon-cognito-js';

import {
  DEVELOPER_KEY, DEVELOPER_PROVIDER, ENDPOINT, POOL_ID, REGION, call, unique,
} from './helpers.mjs';

const COGNITO_LOGIN = 'cognito-identity.amazonaws.com';

AWS.config.update({
  region: REGION,
  maxRetries: 0,
  cognitoidentity: { endpoint: ENDPOINT },
  cognitosync: { endpoint: ENDPOINT },
  sts: { endpoint: ENDPOINT }, // the classic flow's AssumeRoleWithWebIdentity
});

const developerCredentials = new AWS.Credentials(DEVELOPER_KEY);
const developerIdentity = new AWS.CognitoIdentity({ credentials: developerCredentials });
const developerSync = new AWS.CognitoSync({ credentials: developerCredentials });

/**
 * The part of the browser's Storage that the library's StoreLocalStorage uses: string
 * items by key, which are also own enumerable properties (its wipe() walks them).
 */
class MemoryStorage {
  getItem(key) { return Object.hasOwn(this, key) ? this[key] : null; }
  setItem(key, value) { this[key] = String(value); }
  removeItem(key) { delete this[key]; }
}

/** A DataStore constructor: the library's localStorage adapter over one device's Storage. */
function localStoreOver(storage) {
  function DeviceLocalStorage() { this.store = storage; }
  DeviceLocalStorage.prototype = Object.create(AWS.CognitoSyncManager.StoreLocalStorage.prototype);
  return DeviceLocalStorage;
}

/** One device: its own credentials provider, Sync Manager and local storage. */
class Device {
  static async start(params = {}) {
    const credentials = new AWS.CognitoIdentityCredentials({ IdentityPoolId: POOL_ID, ...params });
    await call((cb) => credentials.get(cb));
    // The Sync Manager (and the CognitoSync client inside it) take AWS.config.credentials
    // when they are built; each device sets its own just before.
    AWS.config.credentials = credentials;
    const storage = new MemoryStorage();
    const manager = new AWS.CognitoSyncManager({ DataStore: localStoreOver(storage) });
    return new Device(credentials, manager, storage);
  }

  constructor(credentials, manager, storage) {
    this.credentials = credentials;
    this.manager = manager;
    this.storage = storage;
  }

  get identityId() { return this.manager.getIdentityId(); }

  open(name) { return call((cb) => this.manager.openOrCreateDataset(name, cb)); }
}

const put = (dataset, key, value) => call((cb) => dataset.put(key, value, cb));
const get = (dataset, key) => call((cb) => dataset.get(key, cb));
const remove = (dataset, key) => call((cb) => dataset.remove(key, cb));
const getAll = (dataset) => call((cb) => dataset.getAll(cb));

/**
 * dataset.synchronize as a promise: resolves on onSuccess, rejects on onFailure. The
 * other callbacks are the library defaults unless given.
 */
function synchronize(dataset, handlers = {}) {
  return new Promise((resolve, reject) => {
    dataset.synchronize({
      ...handlers,
      onSuccess: (ds, updates) => resolve(updates),
      onFailure: (err) => reject(err),
    });
  });
}

/** The records the server holds for a dataset, read with the developer key. */
async function serverRecords(identityId, name) {
  const page = await developerSync.listRecords({
    IdentityPoolId: POOL_ID, IdentityId: identityId, DatasetName: name,
  }).promise();
  return Object.fromEntries(page.Records.map((r) => [r.Key, r]));
}

/** Two devices of one fresh unauthenticated identity, both with `name` synced. */
async function twoDevices(name) {
  const phone = await Device.start();
  assert.match(phone.identityId, /^us-east-1:[0-9a-f-]{36}$/);
  const laptop = await Device.start({ IdentityId: phone.identityId });
  assert.equal(laptop.identityId, phone.identityId);
  assert.ok(laptop.credentials.sessionToken, 'each device holds credentials of its own');
  return [phone, laptop, await phone.open(name), await laptop.open(name)];
}

test('two devices put, synchronize and see each other\'s values', async () => {
  const [phone, , a, b] = await twoDevices('settings');
  await put(a, 'theme', 'dark');
  await put(a, 'lang', 'en');
  await synchronize(a);

  const stored = await serverRecords(phone.identityId, 'settings');
  assert.equal(stored.theme.Value, 'dark');
  assert.equal(stored.lang.Value, 'en');
  assert.equal(stored.theme.SyncCount, 1);

  await synchronize(b);
  assert.deepEqual(await getAll(b), { theme: 'dark', lang: 'en' });

  await put(b, 'lang', 'fr');
  await synchronize(b);
  await synchronize(a);
  assert.equal(await get(a, 'lang'), 'fr');
  assert.equal((await serverRecords(phone.identityId, 'settings')).lang.SyncCount, 2);

  const metadata = await call((cb) => a.getDatasetMetadata(cb));
  assert.equal(metadata.getLastSyncCount(), 2);
});

test('a conflict goes to onConflict and its resolution reaches both devices', async () => {
  const [phone, , a, b] = await twoDevices('game');
  await put(a, 'level', '1');
  await synchronize(a);
  await synchronize(b);

  await put(a, 'level', '7');
  await synchronize(a);
  await put(b, 'level', '5'); // b has not seen 7 yet

  const seen = [];
  await synchronize(b, {
    onConflict(dataset, conflicts, resume) {
      seen.push(...conflicts.map((c) => [
        c.getKey(), c.getRemoteRecord().getValue(), c.getLocalRecord().getValue()]));
      const resolved = conflicts.map((c) => c.resolveWithValue(String(Math.max(
        Number(c.getRemoteRecord().getValue()), Number(c.getLocalRecord().getValue())))));
      dataset.resolve(resolved, () => resume(true));
    },
  });
  assert.deepEqual(seen, [['level', '7', '5']]);
  assert.equal(await get(b, 'level'), '7');

  await put(b, 'level', '9');
  await put(a, 'level', '8');
  await synchronize(b);
  // The library's default onConflict cancels: the sync fails and nothing is written.
  await assert.rejects(synchronize(a), /Conflict callback returned false/);
  assert.equal((await serverRecords(phone.identityId, 'game')).level.Value, '9');

  await synchronize(a, {
    onConflict(dataset, conflicts, resume) {
      dataset.resolve(conflicts.map((c) => c.resolveWithLocalRecord()), () => resume(true));
    },
  });
  const level = (await serverRecords(phone.identityId, 'game')).level;
  assert.equal(level.Value, '8');
  await synchronize(b);
  assert.equal(await get(b, 'level'), '8');
  assert.equal(await get(a, 'level'), '8');
});

test('removed records reach the other device', async () => {
  const [phone, laptop, a, b] = await twoDevices('notes');
  await put(a, 'keep', 'this');
  await put(a, 'drop', 'that');
  await synchronize(a);
  await synchronize(b);
  assert.equal(await get(b, 'drop'), 'that');

  await remove(a, 'drop');
  await synchronize(a);

  const stored = await serverRecords(phone.identityId, 'notes');
  assert.equal(stored.keep.Value, 'this');
  assert.equal(stored.drop.Value, undefined, 'a removed record is a tombstone without Value');
  assert.equal(stored.drop.SyncCount, 2);
  const described = await developerSync.describeDataset({
    IdentityPoolId: POOL_ID, IdentityId: phone.identityId, DatasetName: 'notes',
  }).promise();
  assert.equal(described.Dataset.NumRecords, 1);

  await synchronize(b);
  // The library turns a record without Value into '' (its Record defaults Value to '').
  assert.equal(await get(b, 'drop'), '');
  assert.equal(await get(b, 'keep'), 'this');
  const local = JSON.parse(laptop.storage.getItem(`${phone.identityId}.notes`));
  assert.equal(local.drop.SyncCount, 2);
  assert.equal(local.drop.Modified, false);
});

test('a dataset deleted on one device reaches the other through onDatasetDeleted', async () => {
  const [phone, laptop, a, b] = await twoDevices('scratch');
  await put(a, 'x', '1');
  await synchronize(a);
  await synchronize(b);

  // The library's way to delete a dataset: mark it deleted locally (sync count -1); the
  // next synchronize deletes it on the server and purges the local copy.
  await call((cb) => phone.manager.local.deleteDataset(phone.identityId, 'scratch', cb));
  await synchronize(a);
  await assert.rejects(
    developerSync.describeDataset({
      IdentityPoolId: POOL_ID, IdentityId: phone.identityId, DatasetName: 'scratch',
    }).promise(),
    { code: 'ResourceNotFoundException' },
  );
  assert.deepEqual(await call((cb) => phone.manager.listDatasets(cb)), []);

  const deleted = [];
  // Answering true here makes amazon-cognito-js 1.1.0 call a method it does not have
  // (_synchronizeInternal), so the app takes the README's other branch: it answers
  // false and drops its local copy itself.
  await assert.rejects(
    synchronize(b, {
      onDatasetDeleted(dataset, name, resume) {
        deleted.push(name);
        resume(false);
      },
    }),
    /Cancelled due to .onDatasetDeleted result/,
  );
  assert.deepEqual(deleted, ['scratch']);
  await call((cb) => laptop.manager.local.purgeDataset(laptop.identityId, 'scratch', cb));

  // The name can be used again, from either device.
  const again = await laptop.open('scratch');
  assert.deepEqual(await getAll(again), {});
  await put(again, 'y', '2');
  await synchronize(again);
  const aAgain = await phone.open('scratch');
  await synchronize(aAgain);
  assert.deepEqual(await getAll(aAgain), { y: '2' });
  const stored = await serverRecords(phone.identityId, 'scratch');
  assert.deepEqual(Object.keys(stored), ['y']);
  assert.ok(stored.y.SyncCount > 1, 'the re-created dataset continues its sync count');
});

/** A developer-authenticated identity for `user`, and the token its devices log in with. */
async function developerLogin(user) {
  const result = await developerIdentity.getOpenIdTokenForDeveloperIdentity({
    IdentityPoolId: POOL_ID, Logins: { [DEVELOPER_PROVIDER]: user },
  }).promise();
  assert.match(result.IdentityId, /^us-east-1:/);
  assert.equal(result.Token.split('.').length, 3, 'an OpenID token is a JWT');
  return { user, ...result };
}

test('after MergeDeveloperIdentities the destination devices get onDatasetsMerged', async () => {
  const source = await developerLogin(unique('source-user'));
  const destination = await developerLogin(unique('destination-user'));
  assert.notEqual(source.IdentityId, destination.IdentityId);
  const login = (who) => ({ IdentityId: who.IdentityId, Logins: { [COGNITO_LOGIN]: who.Token } });

  const old = await Device.start(login(source));
  assert.equal(old.identityId, source.IdentityId);
  const oldProfile = await old.open('profile');
  await put(oldProfile, 'color', 'red');
  await synchronize(oldProfile);
  const oldFavorites = await old.open('favorites');
  await put(oldFavorites, 'song', 'la');
  await synchronize(oldFavorites);

  const phone = await Device.start(login(destination));
  const tablet = await Device.start(login(destination));
  const profile = await phone.open('profile');
  await put(profile, 'size', 'L');
  await synchronize(profile);
  const tabletProfile = await tablet.open('profile');
  await synchronize(tabletProfile);
  assert.deepEqual(await getAll(tabletProfile), { size: 'L' });

  const merged = await developerIdentity.mergeDeveloperIdentities({
    IdentityPoolId: POOL_ID,
    DeveloperProviderName: DEVELOPER_PROVIDER,
    SourceUserIdentifier: source.user,
    DestinationUserIdentifier: destination.user,
  }).promise();
  assert.equal(merged.IdentityId, destination.IdentityId);

  // The same name on both sides: the source's copy comes over as profile.<source id>.
  const mergedName = `profile.${source.IdentityId}`;
  const names = [];
  await assert.rejects(
    synchronize(profile, {
      onDatasetsMerged(dataset, datasetNames, resume) {
        names.push(...datasetNames);
        resume(false); // the README's choice: handle the merge outside the sync
      },
    }),
    /Cancelled due to .onDatasetsMerged result/,
  );
  assert.deepEqual(names, [mergedName]);

  // Handle it as an app does: read the merged copy, fold it in, delete the copy.
  const copy = await phone.open(mergedName);
  await synchronize(copy);
  const copied = await getAll(copy);
  assert.deepEqual(copied, { color: 'red' });
  for (const [key, value] of Object.entries(copied)) await put(profile, key, value);
  await call((cb) => phone.manager.local.deleteDataset(phone.identityId, mergedName, cb));
  await synchronize(copy);
  await synchronize(profile); // no merged datasets any more: a plain sync
  assert.deepEqual(await getAll(profile), { size: 'L', color: 'red' });

  // The other destination device sees the folded result and no merge left to handle.
  let mergedAgain = false;
  await synchronize(tabletProfile, {
    onDatasetsMerged(dataset, datasetNames, resume) { mergedAgain = true; resume(false); },
  });
  assert.equal(mergedAgain, false);
  assert.deepEqual(await getAll(tabletProfile), { size: 'L', color: 'red' });

  // A dataset only the source had moves over under its own name.
  const favorites = await tablet.open('favorites');
  await synchronize(favorites);
  assert.deepEqual(await getAll(favorites), { song: 'la' });
  const remote = await call((cb) => tablet.manager.refreshDatasetMetadata(cb));
  assert.deepEqual(remote.map((m) => m.getDatasetName()).sort(), ['favorites', 'profile']);
});

const ROLE_ACCOUNT = '123456789012';
const CLASSIC_ROLES = {
  unauthenticated: `arn:aws:iam::${ROLE_ACCOUNT}:role/Classic_Unauth`,
  authenticated: `arn:aws:iam::${ROLE_ACCOUNT}:role/Classic_Auth`,
};

/** The calls a Sync Manager's own CognitoSync client makes while `fn` runs. */
async function callsOf(device, fn) {
  const seen = [];
  const listener = (request) => {
    if (request.service === device.manager.remote.client) {
      seen.push({ operation: request.operation, params: { ...request.params } });
    }
  };
  AWS.events.on('build', listener);
  try {
    await fn();
  } finally {
    AWS.events.removeListener('build', listener);
  }
  return seen;
}

test('the classic flow: CognitoIdentityCredentials with a RoleArn (GetId, GetOpenIdToken, STS AssumeRoleWithWebIdentity), then the Sync Manager', async () => {
  const { IdentityPoolId: pool } = await developerIdentity.createIdentityPool({
    IdentityPoolName: unique('classic'),
    AllowUnauthenticatedIdentities: true,
    AllowClassicFlow: true,
    DeveloperProviderName: DEVELOPER_PROVIDER,
  }).promise();
  await developerIdentity.setIdentityPoolRoles({ IdentityPoolId: pool, Roles: CLASSIC_ROLES })
    .promise();

  const phone = await Device.start({ IdentityPoolId: pool, RoleArn: CLASSIC_ROLES.unauthenticated });
  // The credentials are STS's answer (the enhanced flow's carry no AssumedRoleUser).
  assert.equal(phone.credentials.data.AssumedRoleUser.Arn,
    `arn:aws:sts::${ROLE_ACCOUNT}:assumed-role/Classic_Unauth/web-identity`);
  assert.equal(phone.credentials.data.SubjectFromWebIdentityToken, phone.identityId);
  assert.ok(phone.credentials.expireTime > new Date());
  const laptop = await Device.start({
    IdentityPoolId: pool, RoleArn: CLASSIC_ROLES.unauthenticated, IdentityId: phone.identityId,
  });
  const a = await phone.open('settings');
  const b = await laptop.open('settings');
  await put(a, 'theme', 'dark');
  await synchronize(a);
  await synchronize(b);
  assert.deepEqual(await getAll(b), { theme: 'dark' });
  const stored = await developerSync.listRecords({
    IdentityPoolId: pool, IdentityId: phone.identityId, DatasetName: 'settings',
  }).promise();
  assert.deepEqual(stored.Records.map((r) => [r.Key, r.Value]), [['theme', 'dark']]);

  // Signed in (a developer-authenticated identity): the authenticated role.
  const login = await developerIdentity.getOpenIdTokenForDeveloperIdentity({
    IdentityPoolId: pool, Logins: { [DEVELOPER_PROVIDER]: unique('classic-user') },
  }).promise();
  const member = await Device.start({
    IdentityPoolId: pool,
    RoleArn: CLASSIC_ROLES.authenticated,
    IdentityId: login.IdentityId,
    Logins: { [COGNITO_LOGIN]: login.Token },
  });
  assert.equal(member.identityId, login.IdentityId);
  assert.match(member.credentials.data.AssumedRoleUser.Arn, /assumed-role\/Classic_Auth\//);
  const profile = await member.open('profile');
  await put(profile, 'name', 'Ada');
  await synchronize(profile);

  // A guest asking for the authenticated role is refused by STS.
  await assert.rejects(
    Device.start({ IdentityPoolId: pool, RoleArn: CLASSIC_ROLES.authenticated }),
    { code: 'AccessDenied', statusCode: 403 },
  );
});

test('the Sync Manager follows NextToken: ListRecords pages of 1024 records, ListDatasets of 64', async () => {
  const device = await Device.start();
  const where = { IdentityPoolId: POOL_ID, IdentityId: device.identityId };
  const listing = await developerSync.listRecords({ ...where, DatasetName: 'big' }).promise();
  const patches = Array.from({ length: 1100 }, (_, i) => ({
    Op: 'replace', Key: `k${String(i).padStart(4, '0')}`, Value: String(i), SyncCount: 0,
  }));
  await developerSync.updateRecords({
    ...where, DatasetName: 'big', SyncSessionToken: listing.SyncSessionToken,
    RecordPatches: patches,
  }).promise();

  const big = await device.open('big');
  const pulls = await callsOf(device, () => synchronize(big));
  // Two pages from sync count 0, then (having applied them) the library starts over
  // from the count it stored: one more, empty, page.
  const lists = pulls.filter((c) => c.operation === 'listRecords').map((c) => c.params);
  assert.deepEqual(lists.map((p) => [p.MaxResults, p.LastSyncCount, Boolean(p.NextToken)]),
    [[1024, 0, false], [1024, 0, true], [1024, 1, false]]);
  const values = await getAll(big);
  assert.equal(Object.keys(values).length, 1100);
  assert.equal(values.k1099, '1099');
  const metadata = await call((cb) => big.getDatasetMetadata(cb));
  assert.equal(metadata.getLastSyncCount(), 1);

  for (let i = 0; i < 69; i += 1) {
    const name = `set${String(i).padStart(2, '0')}`;
    const token = (await developerSync.listRecords({ ...where, DatasetName: name }).promise())
      .SyncSessionToken;
    await developerSync.updateRecords({
      ...where, DatasetName: name, SyncSessionToken: token,
      RecordPatches: [{ Op: 'replace', Key: 'k', Value: 'v', SyncCount: 0 }],
    }).promise();
  }
  let datasets;
  const refreshes = await callsOf(device, async () => {
    datasets = await call((cb) => device.manager.refreshDatasetMetadata(cb));
  });
  assert.deepEqual(refreshes.map((c) => [c.operation, c.params.MaxResults]),
    [['listDatasets', 64], ['listDatasets', 64]]);
  assert.equal(datasets.length, 70);
});
