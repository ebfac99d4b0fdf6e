// Shared set-up for the JavaScript end-to-end tests: where the server is, and small
// promise wrappers around the callback APIs of aws-sdk v2 and the Sync Manager.
import { randomUUID } from 'node:crypto';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through tests/test_javascript.py`);
  }
  return value;
}

export const REGION = 'us-east-1';
export const ENDPOINT = required('COGSYNC_ENDPOINT');
export const POOL_ID = required('COGSYNC_POOL_ID');
export const ACCOUNT_ID = required('COGSYNC_ACCOUNT_ID'); // the developer key's account
export const DEVELOPER_PROVIDER = required('COGSYNC_DEVELOPER_PROVIDER');
export const GCM_APP_ARN = required('COGSYNC_GCM_APP_ARN');
export const DEVELOPER_KEY = {
  accessKeyId: required('COGSYNC_ACCESS_KEY_ID'),
  secretAccessKey: required('COGSYNC_SECRET_ACCESS_KEY'),
};

/** A name nobody else in this run uses (tests share one pool). */
export function unique(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Calls `fn(...args, callback)` and settles with the callback's (err, value). */
export function call(fn, ...args) {
  return new Promise((resolve, reject) => {
    fn(...args, (err, value) => (err ? reject(err) : resolve(value)));
  });
}
