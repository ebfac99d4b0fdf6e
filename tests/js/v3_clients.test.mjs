// AWS SDK for JavaScript v3: every operation of @aws-sdk/client-cognito-sync and of
// @aws-sdk/client-cognito-identity, once each, against cogsync. The tests run in order
// and share one identity pool that the first one creates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import * as Identity from '@aws-sdk/client-cognito-identity';
import * as Sync from '@aws-sdk/client-cognito-sync';

import {
  ACCOUNT_ID, DEVELOPER_KEY, DEVELOPER_PROVIDER, ENDPOINT, GCM_APP_ARN, REGION, unique,
} from './helpers.mjs';

const base = { region: REGION, endpoint: ENDPOINT, maxAttempts: 1 };
const identity = new Identity.CognitoIdentityClient({ ...base, credentials: DEVELOPER_KEY });
const sync = new Sync.CognitoSyncClient({ ...base, credentials: DEVELOPER_KEY });
// What an app has before it has credentials: GetId, GetCredentialsForIdentity and
// GetOpenIdToken are unsigned, so this client must never ask for any.
const publicIdentity = new Identity.CognitoIdentityClient({
  ...base,
  credentials: async () => { throw new Error('an unsigned operation asked for credentials'); },
});

/** The sync client of an identity, from the temporary credentials Cognito Identity gave it. */
function syncAs(credentials) {
  return new Sync.CognitoSyncClient({
    ...base,
    credentials: {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretKey,
      sessionToken: credentials.SessionToken,
      expiration: credentials.Expiration,
    },
  });
}

/** Asserts that `promise` fails with this error name and HTTP status. */
async function fails(promise, name, status) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, name, `${err.name}: ${err.message}`);
    assert.equal(err.$metadata.httpStatusCode, status);
    return true;
  });
}

function jwtClaims(token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'an OpenID token is a JWT');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

const state = {};

test('CreateIdentityPool, DescribeIdentityPool, UpdateIdentityPool, ListIdentityPools, DeleteIdentityPool', async () => {
  const name = unique('v3-app');
  const created = await identity.send(new Identity.CreateIdentityPoolCommand({
    IdentityPoolName: name,
    AllowUnauthenticatedIdentities: true,
    DeveloperProviderName: DEVELOPER_PROVIDER,
    IdentityPoolTags: { suite: 'js' },
  }));
  assert.match(created.IdentityPoolId, /^us-east-1:[0-9a-f-]{36}$/);
  assert.equal(created.IdentityPoolName, name);
  assert.equal(created.AllowUnauthenticatedIdentities, true);
  assert.equal(created.DeveloperProviderName, DEVELOPER_PROVIDER);
  state.pool = created.IdentityPoolId;

  const described = await identity.send(
    new Identity.DescribeIdentityPoolCommand({ IdentityPoolId: state.pool }));
  assert.deepEqual(described.IdentityPoolTags, { suite: 'js' });

  const updated = await identity.send(new Identity.UpdateIdentityPoolCommand({
    IdentityPoolId: state.pool,
    IdentityPoolName: `${name}-renamed`,
    AllowUnauthenticatedIdentities: true,
    DeveloperProviderName: DEVELOPER_PROVIDER,
  }));
  assert.equal(updated.IdentityPoolName, `${name}-renamed`);

  const doomed = await identity.send(new Identity.CreateIdentityPoolCommand({
    IdentityPoolName: unique('v3-doomed'), AllowUnauthenticatedIdentities: false,
  }));
  const listed = await identity.send(new Identity.ListIdentityPoolsCommand({ MaxResults: 60 }));
  const ids = listed.IdentityPools.map((p) => p.IdentityPoolId);
  assert.ok(ids.includes(state.pool) && ids.includes(doomed.IdentityPoolId));
  assert.ok(listed.IdentityPools.some((p) => p.IdentityPoolName === `${name}-renamed`));

  await identity.send(
    new Identity.DeleteIdentityPoolCommand({ IdentityPoolId: doomed.IdentityPoolId }));
  await fails(
    identity.send(new Identity.DescribeIdentityPoolCommand({ IdentityPoolId: doomed.IdentityPoolId })),
    'ResourceNotFoundException', 400,
  );
});

test('SetIdentityPoolConfiguration and GetIdentityPoolConfiguration', async () => {
  const set = await sync.send(new Sync.SetIdentityPoolConfigurationCommand({
    IdentityPoolId: state.pool, PushSync: { ApplicationArns: [GCM_APP_ARN] },
  }));
  assert.equal(set.IdentityPoolId, state.pool);
  assert.deepEqual(set.PushSync.ApplicationArns, [GCM_APP_ARN]);
  const got = await sync.send(
    new Sync.GetIdentityPoolConfigurationCommand({ IdentityPoolId: state.pool }));
  assert.deepEqual(got.PushSync.ApplicationArns, [GCM_APP_ARN]);
  assert.equal(got.CognitoStreams, undefined);
});

test('GetId, GetCredentialsForIdentity and GetOpenIdToken, unsigned', async () => {
  const { IdentityId } = await publicIdentity.send(
    new Identity.GetIdCommand({ IdentityPoolId: state.pool }));
  assert.match(IdentityId, /^us-east-1:[0-9a-f-]{36}$/);
  state.identityId = IdentityId;

  const got = await publicIdentity.send(
    new Identity.GetCredentialsForIdentityCommand({ IdentityId }));
  assert.equal(got.IdentityId, IdentityId);
  const { AccessKeyId, SecretKey, SessionToken, Expiration } = got.Credentials;
  assert.ok(AccessKeyId && SecretKey && SessionToken);
  assert.ok(Expiration instanceof Date && Expiration > new Date(), 'expires in the future');
  state.credentials = got.Credentials;

  const token = await publicIdentity.send(new Identity.GetOpenIdTokenCommand({ IdentityId }));
  assert.equal(token.IdentityId, IdentityId);
  const claims = jwtClaims(token.Token);
  assert.equal(claims.sub, IdentityId);
  assert.equal(claims.aud, state.pool);
  assert.ok(claims.exp > Date.now() / 1000);
});

test('records with identity credentials: ListRecords, UpdateRecords, DescribeDataset, ListDatasets, DescribeIdentityUsage', async () => {
  const me = syncAs(state.credentials);
  const where = { IdentityPoolId: state.pool, IdentityId: state.identityId, DatasetName: 'prefs' };

  const empty = await me.send(new Sync.ListRecordsCommand(where));
  assert.deepEqual(empty.Records, []);
  assert.equal(empty.DatasetExists, false);
  assert.equal(empty.DatasetSyncCount, 0);
  assert.ok(empty.SyncSessionToken);

  const written = await me.send(new Sync.UpdateRecordsCommand({
    ...where,
    DeviceId: 'js-v3',
    SyncSessionToken: empty.SyncSessionToken,
    RecordPatches: [
      { Op: 'replace', Key: 'color', Value: 'blue', SyncCount: 0,
        DeviceLastModifiedDate: new Date('2024-01-02T03:04:05Z') },
      { Op: 'replace', Key: 'size', Value: 'XL', SyncCount: 0 },
    ],
  }));
  assert.deepEqual(written.Records.map((r) => [r.Key, r.Value, r.SyncCount]),
    [['color', 'blue', 1], ['size', 'XL', 1]]);
  const color = written.Records.find((r) => r.Key === 'color');
  assert.equal(color.LastModifiedBy, 'js-v3');
  assert.equal(color.DeviceLastModifiedDate.toISOString(), '2024-01-02T03:04:05.000Z');

  const listed = await me.send(new Sync.ListRecordsCommand({ ...where, LastSyncCount: 0 }));
  assert.equal(listed.DatasetExists, true);
  assert.equal(listed.DatasetSyncCount, 1);
  assert.equal(listed.Count, 2);

  // A patch made from a stale SyncCount conflicts, and nothing is written.
  await fails(me.send(new Sync.UpdateRecordsCommand({
    ...where,
    SyncSessionToken: listed.SyncSessionToken,
    RecordPatches: [{ Op: 'replace', Key: 'color', Value: 'red', SyncCount: 0 }],
  })), 'ResourceConflictException', 409);
  const removed = await me.send(new Sync.UpdateRecordsCommand({
    ...where,
    SyncSessionToken: listed.SyncSessionToken,
    RecordPatches: [{ Op: 'remove', Key: 'size', SyncCount: 1 }],
  }));
  assert.deepEqual(removed.Records.map((r) => [r.Key, r.Value, r.SyncCount]),
    [['size', undefined, 2]]);

  const { Dataset } = await me.send(new Sync.DescribeDatasetCommand(where));
  assert.equal(Dataset.DatasetName, 'prefs');
  assert.equal(Dataset.NumRecords, 1);
  assert.equal(Dataset.DataStorage, 'color'.length + 'blue'.length);
  // The last write named no DeviceId: the caller is recorded instead.
  assert.equal(Dataset.LastModifiedBy, state.identityId);

  const datasets = await me.send(new Sync.ListDatasetsCommand({
    IdentityPoolId: state.pool, IdentityId: state.identityId,
  }));
  assert.deepEqual(datasets.Datasets.map((d) => d.DatasetName), ['prefs']);
  assert.equal(datasets.Count, 1);

  const usage = await me.send(new Sync.DescribeIdentityUsageCommand({
    IdentityPoolId: state.pool, IdentityId: state.identityId,
  }));
  assert.equal(usage.IdentityUsage.IdentityId, state.identityId);
  assert.equal(usage.IdentityUsage.DatasetCount, 1);
  assert.equal(usage.IdentityUsage.DataStorage, 9);

  // Identity credentials reach only their own identity.
  const { IdentityId: other } = await publicIdentity.send(
    new Identity.GetIdCommand({ IdentityPoolId: state.pool }));
  await fails(me.send(new Sync.ListRecordsCommand({ ...where, IdentityId: other })),
    'NotAuthorizedException', 403);
});

test('RegisterDevice, SubscribeToDataset, UnsubscribeFromDataset with identity credentials', async () => {
  const me = syncAs(state.credentials);
  const who = { IdentityPoolId: state.pool, IdentityId: state.identityId };
  const registered = await me.send(new Sync.RegisterDeviceCommand({
    ...who, Platform: 'GCM', Token: 'gcm-registration-token-1',
  }));
  assert.match(registered.DeviceId, /^[0-9a-f-]{36}$/);
  const again = await me.send(new Sync.RegisterDeviceCommand({
    ...who, Platform: 'GCM', Token: 'gcm-registration-token-1',
  }));
  assert.equal(again.DeviceId, registered.DeviceId, 'the same token is the same device');
  await fails(me.send(new Sync.RegisterDeviceCommand({ ...who, Platform: 'APNS', Token: 't' })),
    'InvalidConfigurationException', 400);

  const subscription = { ...who, DatasetName: 'prefs', DeviceId: registered.DeviceId };
  const subscribed = await me.send(new Sync.SubscribeToDatasetCommand(subscription));
  assert.equal(subscribed.$metadata.httpStatusCode, 200);
  const unsubscribed = await me.send(new Sync.UnsubscribeFromDatasetCommand(subscription));
  assert.equal(unsubscribed.$metadata.httpStatusCode, 200);
  await fails(me.send(new Sync.SubscribeToDatasetCommand({ ...subscription, DatasetName: 'none' })),
    'ResourceNotFoundException', 404);
  // Push devices belong to identities: the developer key may not register one.
  await fails(sync.send(new Sync.RegisterDeviceCommand({ ...who, Platform: 'GCM', Token: 'x' })),
    'NotAuthorizedException', 403);
});

test('DescribeIdentityPoolUsage and ListIdentityPoolUsage', async () => {
  const { IdentityPoolUsage } = await sync.send(
    new Sync.DescribeIdentityPoolUsageCommand({ IdentityPoolId: state.pool }));
  assert.equal(IdentityPoolUsage.IdentityPoolId, state.pool);
  assert.equal(IdentityPoolUsage.DataStorage, 9);
  assert.ok(IdentityPoolUsage.SyncSessionsCount >= 1);
  assert.ok(IdentityPoolUsage.LastModifiedDate instanceof Date);

  const listed = await sync.send(new Sync.ListIdentityPoolUsageCommand({ MaxResults: 60 }));
  const mine = listed.IdentityPoolUsages.find((u) => u.IdentityPoolId === state.pool);
  assert.equal(mine.DataStorage, 9);
  assert.equal(listed.Count, listed.IdentityPoolUsages.length);
});

test('DeleteDataset', async () => {
  const me = syncAs(state.credentials);
  const where = { IdentityPoolId: state.pool, IdentityId: state.identityId, DatasetName: 'prefs' };
  const { Dataset } = await me.send(new Sync.DeleteDatasetCommand(where));
  assert.equal(Dataset.DatasetName, 'prefs');
  assert.equal(Dataset.NumRecords, 1);
  await fails(me.send(new Sync.DescribeDatasetCommand(where)), 'ResourceNotFoundException', 404);
  const after = await me.send(new Sync.ListRecordsCommand({ ...where, LastSyncCount: 1 }));
  assert.equal(after.DatasetDeletedAfterRequestedSyncCount, true);
});

test('SetCognitoEvents and GetCognitoEvents', async () => {
  const trigger = 'arn:aws:lambda:us-east-1:123456789012:function:sync-trigger';
  const before = await sync.send(new Sync.GetCognitoEventsCommand({ IdentityPoolId: state.pool }));
  assert.deepEqual(before.Events ?? {}, {});
  await sync.send(new Sync.SetCognitoEventsCommand({
    IdentityPoolId: state.pool, Events: { SyncTrigger: trigger },
  }));
  const after = await sync.send(new Sync.GetCognitoEventsCommand({ IdentityPoolId: state.pool }));
  assert.deepEqual(after.Events, { SyncTrigger: trigger });
  await fails(sync.send(new Sync.SetCognitoEventsCommand({
    IdentityPoolId: state.pool, Events: { SyncTrigger: 'not-an-arn' },
  })), 'InvalidParameterException', 400);
  // Remove it again: identity writes would otherwise go through a Lambda function.
  await sync.send(new Sync.SetCognitoEventsCommand({
    IdentityPoolId: state.pool, Events: { SyncTrigger: '' },
  }));
  const cleared = await sync.send(new Sync.GetCognitoEventsCommand({ IdentityPoolId: state.pool }));
  assert.deepEqual(cleared.Events ?? {}, {});
});

test('BulkPublish and GetBulkPublishDetails', async () => {
  const pool = { IdentityPoolId: state.pool };
  const never = await sync.send(new Sync.GetBulkPublishDetailsCommand(pool));
  assert.equal(never.BulkPublishStatus, 'NOT_STARTED');
  // Nothing to publish to until Cognito Streams is on.
  await fails(sync.send(new Sync.BulkPublishCommand(pool)), 'InvalidParameterException', 400);

  const streams = await sync.send(new Sync.SetIdentityPoolConfigurationCommand({
    ...pool,
    CognitoStreams: {
      StreamName: unique('js-bulk'),
      RoleArn: 'arn:aws:iam::123456789012:role/cognito-streams',
      StreamingStatus: 'ENABLED',
    },
  }));
  assert.equal(streams.CognitoStreams.StreamingStatus, 'ENABLED');
  assert.deepEqual(streams.PushSync.ApplicationArns, [GCM_APP_ARN], 'PushSync is kept');

  const started = await sync.send(new Sync.BulkPublishCommand(pool));
  assert.equal(started.IdentityPoolId, state.pool);
  let details;
  for (let i = 0; i < 100; i += 1) {
    details = await sync.send(new Sync.GetBulkPublishDetailsCommand(pool));
    if (details.BulkPublishStatus !== 'IN_PROGRESS') break;
    await sleep(100);
  }
  assert.equal(details.BulkPublishStatus, 'SUCCEEDED', details.FailureMessage);
  assert.ok(details.BulkPublishStartTime instanceof Date);
  assert.ok(details.BulkPublishCompleteTime >= details.BulkPublishStartTime);
  await fails(sync.send(new Sync.BulkPublishCommand(pool)), 'AlreadyStreamedException', 400);
});

test('developer identities: GetOpenIdTokenForDeveloperIdentity, LookupDeveloperIdentity, MergeDeveloperIdentities, UnlinkDeveloperIdentity', async () => {
  const [alice, bob] = [unique('alice'), unique('bob')];
  const login = async (user) => identity.send(new Identity.GetOpenIdTokenForDeveloperIdentityCommand({
    IdentityPoolId: state.pool, Logins: { [DEVELOPER_PROVIDER]: user }, TokenDuration: 900,
  }));
  const a = await login(alice);
  const b = await login(bob);
  assert.notEqual(a.IdentityId, b.IdentityId);
  assert.equal(jwtClaims(a.Token).sub, a.IdentityId);
  assert.equal((await login(alice)).IdentityId, a.IdentityId, 'the same user, the same identity');

  // The token logs the identity in: credentials for a developer-authenticated identity.
  const creds = await publicIdentity.send(new Identity.GetCredentialsForIdentityCommand({
    IdentityId: a.IdentityId, Logins: { 'cognito-identity.amazonaws.com': a.Token },
  }));
  assert.ok(creds.Credentials.SessionToken);

  const byUser = await identity.send(new Identity.LookupDeveloperIdentityCommand({
    IdentityPoolId: state.pool, DeveloperUserIdentifier: bob, MaxResults: 10,
  }));
  assert.equal(byUser.IdentityId, b.IdentityId);
  assert.deepEqual(byUser.DeveloperUserIdentifierList, [bob]);

  const merged = await identity.send(new Identity.MergeDeveloperIdentitiesCommand({
    IdentityPoolId: state.pool, DeveloperProviderName: DEVELOPER_PROVIDER,
    SourceUserIdentifier: bob, DestinationUserIdentifier: alice,
  }));
  assert.equal(merged.IdentityId, a.IdentityId);
  const byId = await identity.send(new Identity.LookupDeveloperIdentityCommand({
    IdentityPoolId: state.pool, IdentityId: a.IdentityId, MaxResults: 10,
  }));
  assert.deepEqual([...byId.DeveloperUserIdentifierList].sort(), [alice, bob].sort());

  await identity.send(new Identity.UnlinkDeveloperIdentityCommand({
    IdentityPoolId: state.pool, IdentityId: a.IdentityId,
    DeveloperProviderName: DEVELOPER_PROVIDER, DeveloperUserIdentifier: bob,
  }));
  const left = await identity.send(new Identity.LookupDeveloperIdentityCommand({
    IdentityPoolId: state.pool, IdentityId: a.IdentityId, MaxResults: 10,
  }));
  assert.deepEqual(left.DeveloperUserIdentifierList, [alice]);
  await fails(identity.send(new Identity.LookupDeveloperIdentityCommand({
    IdentityPoolId: state.pool, DeveloperUserIdentifier: bob, MaxResults: 10,
  })), 'ResourceNotFoundException', 400);
  state.developerIdentityId = a.IdentityId;
});

test('ListIdentities, DescribeIdentity, DeleteIdentities', async () => {
  const listed = await identity.send(new Identity.ListIdentitiesCommand({
    IdentityPoolId: state.pool, MaxResults: 60,
  }));
  assert.equal(listed.IdentityPoolId, state.pool);
  const ids = listed.Identities.map((i) => i.IdentityId);
  assert.ok(ids.includes(state.identityId) && ids.includes(state.developerIdentityId));

  const described = await identity.send(
    new Identity.DescribeIdentityCommand({ IdentityId: state.developerIdentityId }));
  assert.equal(described.IdentityId, state.developerIdentityId);
  assert.deepEqual(described.Logins, [DEVELOPER_PROVIDER]);
  assert.ok(described.CreationDate instanceof Date);

  const deleted = await identity.send(new Identity.DeleteIdentitiesCommand({
    IdentityIdsToDelete: [state.identityId],
  }));
  assert.deepEqual(deleted.UnprocessedIdentityIds, []);
  await fails(identity.send(new Identity.DescribeIdentityCommand({ IdentityId: state.identityId })),
    'ResourceNotFoundException', 400);
  // The deleted identity's credentials are no longer honoured for new ones.
  await fails(publicIdentity.send(
    new Identity.GetCredentialsForIdentityCommand({ IdentityId: state.identityId })),
  'ResourceNotFoundException', 400);
});

test('GetIdentityPoolRoles, SetIdentityPoolRoles, tags, principal tag maps, UnlinkIdentity', async () => {
  const pool = { IdentityPoolId: state.pool };
  const provider = 'idp.example.test';
  await identity.send(new Identity.UpdateIdentityPoolCommand({
    ...pool, IdentityPoolName: unique('v3-roles'), AllowUnauthenticatedIdentities: true,
    DeveloperProviderName: DEVELOPER_PROVIDER,
    OpenIdConnectProviderARNs: [`arn:aws:iam::123456789012:oidc-provider/${provider}`],
  }));
  const roles = {
    authenticated: 'arn:aws:iam::123456789012:role/V3_Auth',
    unauthenticated: 'arn:aws:iam::123456789012:role/V3_Unauth',
  };
  const mappings = {
    [provider]: {
      Type: 'Rules', AmbiguousRoleResolution: 'AuthenticatedRole',
      RulesConfiguration: { Rules: [{
        Claim: 'group', MatchType: 'Equals', Value: 'admins',
        RoleARN: 'arn:aws:iam::123456789012:role/V3_Admin',
      }] },
    },
  };
  await identity.send(new Identity.SetIdentityPoolRolesCommand({
    ...pool, Roles: roles, RoleMappings: mappings }));
  const stored = await identity.send(new Identity.GetIdentityPoolRolesCommand(pool));
  assert.deepEqual([stored.Roles, stored.RoleMappings], [roles, mappings]);
  await fails(identity.send(new Identity.SetIdentityPoolRolesCommand({
    ...pool, Roles: { authenticated: 'arn:aws:s3:::not-a-role-arn' } })),
  'InvalidParameterException', 400);

  const arn = `arn:aws:cognito-identity:us-east-1:${ACCOUNT_ID}:identitypool/${state.pool}`;
  await identity.send(new Identity.TagResourceCommand({ ResourceArn: arn, Tags: { a: 'b', c: 'd' } }));
  await identity.send(new Identity.UntagResourceCommand({ ResourceArn: arn, TagKeys: ['c'] }));
  const tags = await identity.send(new Identity.ListTagsForResourceCommand({ ResourceArn: arn }));
  assert.deepEqual(tags.Tags, { a: 'b' });

  const where = { ...pool, IdentityProviderName: provider };
  await identity.send(new Identity.SetPrincipalTagAttributeMapCommand({
    ...where, UseDefaults: false, PrincipalTags: { department: 'dept' } }));
  const map = await identity.send(new Identity.GetPrincipalTagAttributeMapCommand(where));
  assert.deepEqual([map.UseDefaults, map.PrincipalTags], [false, { department: 'dept' }]);
  await fails(identity.send(new Identity.GetPrincipalTagAttributeMapCommand({
    ...pool, IdentityProviderName: 'not-a-provider.example' })), 'ResourceNotFoundException', 400);

  const user = unique('v3-unlink');
  const signedIn = await identity.send(new Identity.GetOpenIdTokenForDeveloperIdentityCommand({
    ...pool, Logins: { [DEVELOPER_PROVIDER]: user } }));
  await publicIdentity.send(new Identity.UnlinkIdentityCommand({
    IdentityId: signedIn.IdentityId,
    Logins: { 'cognito-identity.amazonaws.com': signedIn.Token },
    LoginsToRemove: [DEVELOPER_PROVIDER],
  }));
  const described = await identity.send(
    new Identity.DescribeIdentityCommand({ IdentityId: signedIn.IdentityId }));
  assert.deepEqual(described.Logins, []);
  // Its last login gone, the identity is closed: its id alone opens nothing.
  await fails(publicIdentity.send(
    new Identity.GetCredentialsForIdentityCommand({ IdentityId: signedIn.IdentityId })),
  'NotAuthorizedException', 400);
});
