// Package salesforce is sfmigrate's Salesforce client: OAuth 2.0
// client-credentials login, Bulk API 2.0 ingest (jobs, streamed uploads,
// polling, result downloads, parallel loads that can be resumed), sObject
// describe, and the status tracker (upsert by external id). It is written
// from the project's API contract, docs/salesforce-api.md, whose section
// numbers the comments cite.
//
// # Walk-through
//
// A Client is built from the three fields of the salesforce_api
// connection. New sends nothing; missing fields fail at once:
//
//	c, err := salesforce.New(salesforce.Config{
//		LoginURL:     "https://acme.my.salesforce.com", // host
//		ClientID:     clientID,                         // login
//		ClientSecret: clientSecret,                     // password
//	})
//
// The first call logs in (x/oauth2's client-credentials flow, credentials in
// the form body) and keeps the token in memory only. Salesforce's answer
// has no expiry, so when a call answers 401 INVALID_SESSION_ID the client
// gets a new token and repeats that call once. Authenticate logs in
// explicitly, to check the credentials early; its refusals are *AuthError
// values that say what to check (client id, secret, flow not enabled, no
// Run As user, a login.salesforce.com host). A login that got no answer
// wraps the network error, so errors.As finds a *net.DNSError for a host
// name that does not exist and errors.Is finds http.ErrSchemeMismatch for an
// https URL pointed at a plain-HTTP server.
//
// Load batch files, one ingest job each, a few at a time:
//
//	spec := salesforce.JobSpec{Object: "Product2", Operation: salesforce.OpUpsert, ExternalIDField: "External_Id__c"}
//	results, err := c.LoadFiles(ctx, spec, []salesforce.LoadFile{{Path: "batch_00001.csv"}}, salesforce.LoadOptions{
//		Parallel:     4,
//		OnJobCreated: func(path, jobID string) error { /* record jobID: a rerun passes it back as LoadFile.JobID */ return nil },
//	})
//
// Each result has the job id, final state and record counts; then fetch the
// rows with DownloadResults (successfulResults, failedResults,
// unprocessedrecords), which streams each set to a file. The same steps
// exist one by one: CreateJob, UploadJobData, CloseJob, WaitJob, AbortJob,
// GetJob, ListJobs, DeleteJob.
//
// Record progress in the tracker object:
//
//	err = c.UpsertStatus(ctx, "PRODUCT_PRICE", "In Progress", map[string]any{"Records_Total__c": 1200})
//	err = c.UpdateStatus(ctx, "PRODUCT_PRICE", "Uploaded") // never creates; ErrTrackerRecordNotFound if missing
//
// # Failures and retries
//
// Every call goes through one request path that turns error answers into
// *APIError (status, method, path and Salesforce's errorCode list) and
// makes one retry decision. Classify sorts any error of this package into
// ClassTransient (no answer, 429, 5xx, an expired session, lock contention
// UNABLE_TO_LOCK_ROW, the concurrent-request limit), ClassRefused (a 4xx
// Salesforce would answer again, the daily request limit included),
// ClassConfig (login refused, a host that does not exist, https to a
// plain-HTTP server, an untrusted certificate) or ClassOther; the client,
// the loader and sfmigrate's pipeline all read it, so a failure is treated
// the same on every path. Transient failures are retried with capped
// exponential backoff and jitter, within Config.MaxAttempts and the
// context. What may be repeated depends on the call, because some
// repetitions would duplicate work:
//
//   - reads, deletes and the tracker upsert are repeated after any of these;
//   - job creation only after an answer proving nothing was created (429,
//     502, 503): after a lost answer a job may exist (ErrJobMayExist), so
//     the request is not repeated; LoadFiles creates another job instead,
//     the lost one being Open, empty and bound to expire;
//   - the job-data upload only when no answer came back at all; a repeat
//     refused as a second upload ("Found multipe contents") proves the
//     first arrived;
//   - close and abort, when the answer is lost, are settled by reading the
//     job's state.
//
// A 401 INVALID_SESSION_ID gets a new token and the call is repeated,
// whatever the call (nothing was done); the first renewal is free, further
// ones count as attempts. A 429 or concurrency-limit answer pauses every
// call of the Client, not only the one that got it, until its Retry-After
// (or the backoff) has passed: the parallel loaders of one Client slow down
// together. The login takes the same decision (a second token request is
// harmless). A refused connection is retried, since a restarting server or
// proxy refuses for a moment too.
//
// Polling (WaitJob) keeps going through transient failures until the job
// ends, Config.JobTimeout passes, or the context ends. LoadFiles abandons
// (aborts) a job whose creation or upload failed transiently, fresh or
// resumed, and loads the file in a new one: such a job was never closed,
// so it never processed a row.
//
// # Memory
//
// Uploads stream the file from disk (with a known length and a body that
// can be reopened for a repeat); result sets are copied to a temporary file
// as they arrive and renamed when complete. Neither is ever held in memory,
// whatever its size.
//
// # Secrets
//
// The client secret and the access token never appear in errors or log
// records; Config, Client and Session print redacted under every fmt verb,
// slog and encoding/json.
package salesforce
