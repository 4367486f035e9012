// jsforce bulk2 upsert of the batch files dag.py extracted (upload only: the
// files exist before the clock starts), 4 files at a time, each with
// bulk2.loadAndWaitForResults (create, upload, close, poll, the three result
// sets). Prints one line: RESULT ok=N failed=M jobs=J.
//
// Usage: node jsforce_upload.mjs URL POLL_MS FILE...
import fs from 'node:fs';
import jsforce from 'jsforce';

const [url, pollMs, ...files] = process.argv.slice(2);
const conn = new jsforce.Connection({
  oauth2: {
    loginUrl: url,
    clientId: process.env.SFEMU_CLIENT_ID ?? 'sfemu-test-client',
    clientSecret: process.env.SFEMU_CLIENT_SECRET ?? 'sfemu-test-secret',
  },
  version: '66.0',
});
await conn.authorize({ grant_type: 'client_credentials' });
conn.bulk2.pollInterval = Number(pollMs);
conn.bulk2.pollTimeout = 600_000;

let ok = 0;
let failed = 0;
let next = 0;
async function worker() {
  while (next < files.length) {
    const file = files[next++];
    const res = await conn.bulk2.loadAndWaitForResults({
      object: 'Product2',
      operation: 'upsert',
      externalIdFieldName: 'External_Id__c',
      lineEnding: 'LF',
      input: fs.createReadStream(file),
    });
    ok += res.successfulResults.length;
    failed += res.failedResults.length + res.unprocessedRecords.length;
  }
}
await Promise.all(Array.from({ length: 4 }, worker));
console.log(`RESULT ok=${ok} failed=${failed} jobs=${files.length}`);
