// The classic (basic) credentials flow from a web page on another origin, as old apps
// still do it: aws-sdk v2's CognitoIdentityCredentials with a RoleArn (GetId,
// GetOpenIdToken, then STS AssumeRoleWithWebIdentity, an unsigned form POST answered in
// XML), then the Sync Manager with the credentials STS gave. The official browser builds,
// unmodified, in headless Chromium.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  CognitoIdentityClient, CreateIdentityPoolCommand, SetIdentityPoolRolesCommand,
} from '@aws-sdk/client-cognito-identity';
import { CognitoSyncClient, ListRecordsCommand } from '@aws-sdk/client-cognito-sync';

import { DEVELOPER_KEY, ENDPOINT, REGION, SITE, launch, openPage } from './harness.mjs';

const ROLE = 'arn:aws:iam::123456789012:role/Classic_Unauth';
const developer = { region: REGION, endpoint: ENDPOINT, credentials: DEVELOPER_KEY, maxAttempts: 1 };

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A pool that allows the classic flow, with ROLE as its unauthenticated role. */
async function classicPool() {
  const identity = new CognitoIdentityClient(developer);
  const { IdentityPoolId } = await identity.send(new CreateIdentityPoolCommand({
    IdentityPoolName: `classic-${Date.now()}`,
    AllowUnauthenticatedIdentities: true,
    AllowClassicFlow: true,
  }));
  await identity.send(new SetIdentityPoolRolesCommand({
    IdentityPoolId, Roles: { unauthenticated: ROLE },
  }));
  return IdentityPoolId;
}

/** A page of SITE with the official builds of aws-sdk v2 and amazon-cognito-js. */
async function pageWithSdk() {
  const page = await openPage(browser, `${SITE}/blank.html`);
  await page.addScriptTag({ url: 'aws-sdk.min.js' });
  await page.addScriptTag({ url: 'amazon-cognito.min.js' });
  return page;
}

/** In the page: the classic flow, then a put and a synchronize through the Sync Manager. */
function signInAndSync(page, pool, role) {
  return page.evaluate(async ([endpoint, region, poolId, roleArn]) => {
    AWS.config.update({
      region,
      cognitoidentity: { endpoint },
      cognitosync: { endpoint },
      sts: { endpoint }, // AssumeRoleWithWebIdentity goes to cogsync too
    });
    const credentials = new AWS.CognitoIdentityCredentials({ IdentityPoolId: poolId, RoleArn: roleArn });
    AWS.config.credentials = credentials;
    try {
      await credentials.getPromise();
    } catch (err) {
      return { error: { code: err.code, status: err.statusCode } };
    }
    const manager = new AWS.CognitoSyncManager();
    const dataset = await new Promise((resolve, reject) => manager.openOrCreateDataset(
      'classic', (err, d) => (err ? reject(err) : resolve(d))));
    await new Promise((resolve, reject) => dataset.put('flow', 'classic',
      (err) => (err ? reject(err) : resolve())));
    await new Promise((resolve, reject) => dataset.synchronize({
      onSuccess: resolve, onFailure: reject,
      onConflict: (ds, conflicts, resume) => resume(false),
      onDatasetDeleted: (ds, name, resume) => resume(false),
      onDatasetsMerged: (ds, names, resume) => resume(false),
    }));
    return {
      identityId: credentials.identityId,
      assumedRole: credentials.data.AssumedRoleUser.Arn,
      subject: credentials.data.SubjectFromWebIdentityToken,
      accessKeyId: credentials.accessKeyId,
    };
  }, [ENDPOINT, REGION, pool, role]);
}

test('a page signs in by the classic flow, through STS, and synchronizes', async () => {
  const pool = await classicPool();
  const page = await pageWithSdk();
  const seen = await signInAndSync(page, pool, ROLE);
  assert.deepEqual(page.problems, []);
  assert.match(seen.identityId, /^us-east-1:[0-9a-f-]{36}$/);
  // These are STS's credentials: the enhanced flow's carry no AssumedRoleUser.
  assert.equal(seen.assumedRole, 'arn:aws:sts::123456789012:assumed-role/Classic_Unauth/web-identity');
  assert.equal(seen.subject, seen.identityId);
  assert.match(seen.accessKeyId, /^ASIA/);

  const sync = new CognitoSyncClient(developer);
  const stored = await sync.send(new ListRecordsCommand({
    IdentityPoolId: pool, IdentityId: seen.identityId, DatasetName: 'classic',
  }));
  assert.deepEqual(stored.Records.map((r) => [r.Key, r.Value, r.SyncCount]), [['flow', 'classic', 1]]);
});

test('a role the pool does not have is refused by STS, and the page gets its error', async () => {
  const pool = await classicPool();
  const page = await pageWithSdk();
  const seen = await signInAndSync(page, pool, 'arn:aws:iam::123456789012:role/Not_Configured');
  // The XML error of AssumeRoleWithWebIdentity reached the SDK (not a CORS failure).
  assert.deepEqual(seen, { error: { code: 'AccessDenied', status: 403 } });
});
