// Drives `sfmigrate emulator` with an unmodified jsforce (the version pinned
// in package.json): OAuth 2.0 client-credentials login, a Bulk API 2.0 upsert
// with successful and failed rows, its three result sets, a second upsert that
// updates, a SOQL query and a REST upsert by external id. Exits non-zero on the
// first mismatch.
//
// Usage: SFEMU_URL=http://127.0.0.1:PORT node check.mjs
// (the URL is the first line `sfmigrate emulator` prints; see docs/emulator.md)
import jsforce from 'jsforce';
import assert from 'node:assert/strict';

const loginUrl = process.env.SFEMU_URL;
if (!loginUrl) {
  console.error('set SFEMU_URL to the base URL printed by `sfmigrate emulator`');
  process.exit(2);
}
const clientId = process.env.SFEMU_CLIENT_ID ?? 'sfemu-test-client';
const clientSecret = process.env.SFEMU_CLIENT_SECRET ?? 'sfemu-test-secret';

const conn = new jsforce.Connection({
  oauth2: { loginUrl, clientId, clientSecret },
  version: '66.0',
});
const who = await conn.authorize({ grant_type: 'client_credentials' });
assert.equal(conn.instanceUrl, loginUrl, 'instance_url is the emulator');
assert.match(conn.accessToken, /^00D\w{12}!/, 'token shaped <orgId>!<opaque>');
assert.match(who.organizationId, /^00D/);
assert.match(who.id, /^005/);
console.log(`login ok: org ${who.organizationId}, user ${who.id}, jsforce ${jsforce.VERSION}`);

const versions = await conn.request('/services/data/');
assert.equal(versions.at(-1).version, '66.0');

const run = Date.now().toString(36);
const key = (n) => `JS-${run}-${n}`;
const csv = [
  'External_Id__c,Name,Price__c,IsActive,Family,Launch_Date__c,Description',
  `${key(1)},Widget,912260031,true,Hardware,2025-03-04,"Lorem\nIpsum, ""quoted"""`,
  `${key(2)},Gadget,19.99,false,Software,2025-01-31,`,
  `${key(3)},,1,true,Hardware,,`, // Name missing: REQUIRED_FIELD_MISSING
  `${key(4)},Bad family,1,true,Toys,,`, // not in the restricted picklist
].join('\n') + '\n';

conn.bulk2.pollInterval = 200;
conn.bulk2.pollTimeout = 60000;
const res = await conn.bulk2.loadAndWaitForResults({
  object: 'Product2',
  operation: 'upsert',
  externalIdFieldName: 'External_Id__c',
  input: csv,
});
console.log('bulk upsert results:', JSON.stringify(res, null, 1));
assert.equal(res.successfulResults.length, 2);
assert.equal(res.failedResults.length, 2);
assert.equal(res.unprocessedRecords.length, 0);
const ok = Object.fromEntries(res.successfulResults.map((r) => [r.External_Id__c, r]));
assert.match(ok[key(1)].sf__Id, /^01t\w{15}$/);
assert.equal(ok[key(1)].sf__Created, 'true');
assert.equal(ok[key(1)].Price__c, '9.12260031E8');
assert.equal(ok[key(1)].Description, 'Lorem\nIpsum, "quoted"');
const failed = Object.fromEntries(res.failedResults.map((r) => [r.External_Id__c, r]));
assert.equal(failed[key(3)].sf__Error, 'REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --');
assert.match(failed[key(4)].sf__Error, /^INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:/);

// A second job updates the same records: sf__Created is false, and a row
// that fails on an existing record names it in sf__Id.
const res2 = await conn.bulk2.loadAndWaitForResults({
  object: 'Product2',
  operation: 'upsert',
  externalIdFieldName: 'External_Id__c',
  input: `External_Id__c,Name,Family\n${key(1)},Widget v2,\n${key(2)},Gadget v2,Toys\n`,
});
assert.equal(res2.successfulResults.length, 1);
assert.equal(res2.successfulResults[0].sf__Created, 'false');
assert.equal(res2.successfulResults[0].sf__Id, ok[key(1)].sf__Id);
assert.equal(res2.failedResults.length, 1);
assert.equal(res2.failedResults[0].sf__Id, ok[key(2)].sf__Id, 'a failed row on an existing record names it');
assert.equal(res2.failedResults[0].sf__Error, 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Toys:Family --');

// REST errors come in the envelope jsforce turns into errorCode / message.
await assert.rejects(
  conn.sobject('Product2').create({ Name: 'x', Family: 'Toys' }),
  (err) => err.errorCode === 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST' && err.message === 'bad value for restricted picklist field: Toys',
);
await assert.rejects(conn.request('/services/data/v66.0/jobs/ingest/7505g00000ZZZZZAAA'), (err) => err.errorCode === 'NOT_FOUND');

// The job list, a query and a REST upsert by external id.
const list = await conn.request('/services/data/v66.0/jobs/ingest');
assert.ok(list.records.length >= 2, 'both jobs listed');
// Every data API answer carries Sforce-Limit-Info; conn.request keeps the last one.
assert.ok(conn.limitInfo?.apiUsage?.used > 0 && conn.limitInfo.apiUsage.limit === 100000, `limitInfo ${JSON.stringify(conn.limitInfo)}`);
const q = await conn.query(`SELECT Id, Name, Price__c FROM Product2 WHERE External_Id__c = '${key(1)}'`);
assert.equal(q.totalSize, 1);
assert.equal(q.records[0].Name, 'Widget v2');
assert.equal(q.records[0].Price__c, 912260031);
const up = await conn.sobject('Migration_Status__c').upsert(
  { External_Ref__c: `JS_${run}`, Status__c: 'In Progress' },
  'External_Ref__c',
);
assert.equal(up.success, true);
assert.equal(up.created, true);
const describe = await conn.sobject('Product2').describe();
assert.ok(describe.fields.some((f) => f.name === 'External_Id__c' && f.externalId));

console.log('jsforce check passed');
