// Package sfemu is a local Salesforce org for tests, demos and offline
// rehearsals: an http.Handler that serves the parts of the Salesforce APIs
// sfmigrate and common clients use, with the real status codes, JSON
// shapes, CSV formats and error texts.
//
// It serves OAuth 2.0 client credentials (POST /services/oauth2/token),
// the versions list (GET /services/data/), Bulk API 2.0 ingest jobs
// (/services/data/vXX.X/jobs/ingest: create, upload, close, abort, info,
// list, delete and the three result sets), sObject REST (create, get,
// update, delete, upsert by external ID, describe), a SOQL subset
// (GET .../query?q=) and what clients read after a login to learn who a
// token acts for: /services/oauth2/userinfo, the identity URL and the
// read-only User and Organization records (identity.go). The contract is docs/salesforce-api.md of the
// project; behaviour that no public source establishes is marked [I] in
// comments, with the section it belongs to.
//
// Usage in a test:
//
//	emu := sfemu.New(sfemu.WithProcessing(sfemu.ProcessInstant, 0))
//	srv := httptest.NewServer(emu)
//	defer srv.Close()
//	// log in at srv.URL with sfemu.TestClientID / sfemu.TestClientSecret,
//	// run Bulk API 2.0 jobs, then check what landed:
//	state, err := emu.AwaitJob(ctx, jobID)
//
// Records live in memory, one table per object of the org (DefaultObjects
// or WithObjects / ParseObjects for a YAML definition). Faults can be
// injected at run time: AddFault (latency, 429/503 answers, dropped
// connections), ExpireTokens, LockRecords, FailNextJob and SetOAuthFault.
//
// By default a closed job is processed at once. WithOrgModel makes the
// org behave like a busy production org instead (orgmodel.go): a queue
// wait, a limited number of jobs in progress, a records/s capacity shared
// by them, and UNABLE_TO_LOCK_ROW failures that rise with the number of
// concurrent jobs on related objects.
//
// A Server is safe for concurrent use. The org's mutable state (records,
// jobs, injected record locks, query cursors) belongs to one store value
// (orgStore) whose methods each take and release its lock; handlers only
// translate between HTTP and those methods, and reading uploads, parsing
// rows, evaluating queries and writing results happen outside the lock.
// Independent state (the API count, tokens, faults) has its own small
// locks. docs/emulator.md describes the rules.
package sfemu
