package salesforce_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// runJob creates, uploads, closes and waits for one job.
func runJob(t *testing.T, c *salesforce.Client, spec salesforce.JobSpec, path string) *salesforce.JobInfo {
	t.Helper()
	ctx := t.Context()
	job, err := c.CreateJob(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != salesforce.JobOpen || !strings.HasPrefix(job.ID, "750") {
		t.Fatalf("created job = %+v, want an Open 750... job", job)
	}
	if err := c.UploadJobData(ctx, job.ID, path); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	final, err := c.WaitJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	return final
}

func TestJobLifecycle(t *testing.T) {
	env := newEnv(t, nil)
	dir := t.TempDir()
	path := writeProducts(t, dir, "p.csv", "LC", 25)
	// A row that will fail: its Name is longer than 255.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("LC-BAD," + strings.Repeat("n", 300) + ",PC,\n")
	f.Close()

	final := runJob(t, env.client, upsertProducts, path)
	if final.State != salesforce.JobComplete {
		t.Fatalf("state = %s (%s), want JobComplete", final.State, final.ErrorMessage)
	}
	if final.NumberRecordsProcessed != 26 || final.NumberRecordsFailed != 1 {
		t.Errorf("processed/failed = %d/%d, want 26/1", final.NumberRecordsProcessed, final.NumberRecordsFailed)
	}
	if final.Object != "Product2" || final.Operation != salesforce.OpUpsert {
		t.Errorf("job = %+v", final)
	}

	out := t.TempDir()
	okPath, failPath, unPath := filepath.Join(out, "ok.csv"), filepath.Join(out, "failed.csv"), filepath.Join(out, "unprocessed.csv")
	nOK, err := env.client.DownloadResults(t.Context(), final.ID, salesforce.ResultSuccessful, okPath)
	if err != nil {
		t.Fatal(err)
	}
	nFail, err := env.client.DownloadResults(t.Context(), final.ID, salesforce.ResultFailed, failPath)
	if err != nil {
		t.Fatal(err)
	}
	nUn, err := env.client.DownloadResults(t.Context(), final.ID, salesforce.ResultUnprocessed, unPath)
	if err != nil {
		t.Fatal(err)
	}
	if nOK+nFail != final.NumberRecordsProcessed || nFail != final.NumberRecordsFailed || nUn != 0 {
		t.Errorf("rows ok/failed/unprocessed = %d/%d/%d; job says %d processed, %d failed",
			nOK, nFail, nUn, final.NumberRecordsProcessed, final.NumberRecordsFailed)
	}
	okRecs, failRecs := readCSV(t, okPath), readCSV(t, failPath)
	if int64(len(okRecs)-1) != nOK || int64(len(failRecs)-1) != nFail {
		t.Errorf("row counts %d/%d disagree with the files (%d/%d records)", nOK, nFail, len(okRecs)-1, len(failRecs)-1)
	}
	if len(okRecs) > 0 && (okRecs[0][0] != "sf__Id" || okRecs[0][1] != "sf__Created") {
		t.Errorf("successful header = %q", okRecs[0])
	}
	// Results are joined by the external id, never by position (3.2).
	keys := column(t, okRecs, "External_Id__c")
	if !slices.Contains(keys, "LC-00000") || !slices.Contains(keys, "LC-00024") {
		t.Errorf("successful keys = %q", keys)
	}
	desc := column(t, okRecs, "Description")
	if len(desc) == 0 || desc[0] != "line one, with comma\nline \"two\"" {
		t.Errorf("multi-line value came back as %q", desc)
	}
	errs := column(t, failRecs, "sf__Error")
	if len(errs) == 0 || !strings.Contains(strings.Join(errs, "|"), "STRING_TOO_LONG") {
		t.Errorf("sf__Error = %q, want a STRING_TOO_LONG row", errs)
	}
	// The records are in the org.
	if n := env.countProducts(t, "LC"); n != 25 {
		t.Errorf("org has %d LC- products, want 25", n)
	}
	if name, _ := env.field(t, "Product2", "External_Id__c", "LC-00007", "Name"); name != "Product LC 7" {
		t.Errorf("LC-00007 Name = %q", name)
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(out)
	if len(entries) != 3 {
		t.Errorf("output dir holds %d entries, want the 3 result files", len(entries))
	}

	if err := env.client.DeleteJob(t.Context(), final.ID); err != nil {
		t.Fatal(err)
	}
	_, err = env.client.GetJob(t.Context(), final.ID)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || !apiErr.HasCode("NOT_FOUND") {
		t.Errorf("GetJob after delete: %v, want 404 NOT_FOUND", err)
	}
}

func TestCreateJobValidation(t *testing.T) {
	env := newEnv(t, nil)
	for _, spec := range []salesforce.JobSpec{
		{Object: "Product2", Operation: "merge"},
		{Object: "Product2", Operation: salesforce.OpUpsert},
		{Object: "", Operation: salesforce.OpInsert},
		{Object: "Product2", Operation: salesforce.OpInsert, LineEnding: "CR"},
		{Object: "Product2", Operation: salesforce.OpInsert, ColumnDelimiter: ";"},
	} {
		if _, err := env.client.CreateJob(t.Context(), spec); err == nil {
			t.Errorf("CreateJob(%+v) succeeded", spec)
		}
	}
	if n := env.requests.count("", "/jobs/ingest"); n != 0 {
		t.Errorf("%d requests sent for invalid specs", n)
	}
	// Salesforce's own refusals come back as *APIError (2.10).
	_, err := env.client.CreateJob(t.Context(), salesforce.JobSpec{Object: "Foo__c", Operation: salesforce.OpInsert})
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !apiErr.HasCode("INVALIDJOB") {
		t.Errorf("unknown object: %v, want 400 INVALIDJOB", err)
	}
	if apiErr != nil && (apiErr.Method != "POST" || !strings.HasSuffix(apiErr.Path, "/jobs/ingest")) {
		t.Errorf("APIError method/path = %s %s", apiErr.Method, apiErr.Path)
	}
}

// TestUploadLostAnswer: the upload arrives but its answer is lost. The
// client sends it again, Salesforce refuses the second upload, and that
// refusal proves the first arrived: the job loads every row once.
func TestUploadLostAnswer(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "p.csv", "LA", 40)
	env.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Count: 1, DropAfterHandling: true})
	final := runJob(t, env.client, upsertProducts, path)
	if final.State != salesforce.JobComplete || final.NumberRecordsProcessed != 40 || final.NumberRecordsFailed != 0 {
		t.Fatalf("job = %s %d/%d (%s), want JobComplete 40/0", final.State, final.NumberRecordsProcessed, final.NumberRecordsFailed, final.ErrorMessage)
	}
	if n := env.requests.count("PUT", "/batches"); n != 2 {
		t.Errorf("PUTs = %d, want 2 (lost answer, then the refused repeat)", n)
	}
	if n := env.countProducts(t, "LA"); n != 40 {
		t.Errorf("org has %d LA- products, want 40", n)
	}
	if got := len(env.emu.Jobs()); got != 1 {
		t.Errorf("emulator holds %d jobs, want 1", got)
	}
	if !strings.Contains(env.logs.String(), "the first arrived") {
		t.Error("the recovery is not logged")
	}
}

// TestUploadDroppedBeforeHandling: the connection is cut before the upload
// is handled; the repeat is the one that lands.
func TestUploadDroppedBeforeHandling(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "p.csv", "DB", 30)
	env.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Count: 2, Drop: true})
	final := runJob(t, env.client, upsertProducts, path)
	if final.State != salesforce.JobComplete || final.NumberRecordsProcessed != 30 {
		t.Fatalf("job = %s %d processed, want JobComplete 30", final.State, final.NumberRecordsProcessed)
	}
	if n := env.requests.count("PUT", "/batches"); n != 3 {
		t.Errorf("PUTs = %d, want 3", n)
	}
}

// TestUploadErrorAnswerNotResent: an upload answered with an error is not
// sent again, not even a 503 (salesforce-api.md 6.4).
func TestUploadErrorAnswerNotResent(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "p.csv", "UE", 3)
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	env.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Count: 1, Status: 503})
	err = env.client.UploadJobData(t.Context(), job.ID, path)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 {
		t.Fatalf("err = %v, want the 503", err)
	}
	if n := env.requests.count("PUT", "/batches"); n != 1 {
		t.Errorf("PUTs = %d, want 1", n)
	}
	// The job is still Open and empty: a deliberate second upload works.
	if err := env.client.UploadJobData(t.Context(), job.ID, path); err != nil {
		t.Fatal(err)
	}
	// And a third is refused as a second upload, recognisably.
	err = env.client.UploadJobData(t.Context(), job.ID, path)
	if !errors.Is(err, salesforce.ErrAlreadyUploaded) {
		t.Errorf("third upload: %v, want ErrAlreadyUploaded", err)
	}
}

func TestUploadChecksFile(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.MaxUploadBytes = 100 })
	dir := t.TempDir()
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.csv")
	os.WriteFile(empty, nil, 0o644)
	big := writeProducts(t, dir, "big.csv", "BG", 10)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.csv"): "no such file",
		empty:                             "the file is empty",
		big:                               "split it into smaller batch files",
	} {
		err := env.client.UploadJobData(t.Context(), job.ID, path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("upload %s: %v, want an error naming the file and %q", path, err, want)
		}
	}
	if n := env.requests.count("PUT", ""); n != 0 {
		t.Errorf("%d PUTs sent for files refused locally", n)
	}
	if err := env.client.UploadJobData(t.Context(), "../../etc", big); err == nil {
		t.Error("a malformed job id was accepted")
	}
}

// TestCreateJobLostAnswerNotRepeated: when a create's answer is lost, a job
// may exist; the client does not create a second one.
func TestCreateJobLostAnswerNotRepeated(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	env.emu.AddFault(sfemu.Fault{Method: "POST", Path: "/jobs/ingest", Count: 1, DropAfterHandling: true})
	_, err := env.client.CreateJob(t.Context(), upsertProducts)
	if !errors.Is(err, salesforce.ErrJobMayExist) || !strings.Contains(err.Error(), "no answer") || !strings.Contains(err.Error(), "stays Open and empty") {
		t.Fatalf("err = %v, want a lost-answer error wrapping ErrJobMayExist", err)
	}
	if n := env.requests.count("POST", "/jobs/ingest"); n != 1 {
		t.Errorf("create requests = %d, want 1", n)
	}
	if jobs := env.emu.Jobs(); len(jobs) != 1 || string(jobs[0].State) != "Open" {
		t.Errorf("emulator jobs = %+v, want the one orphan Open job", jobs)
	}
}

// TestCreateJobRetriedAfterRefusal: 503/429 prove nothing was created, so
// creation is repeated and exactly one job exists.
func TestCreateJobRetriedAfterRefusal(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	// (Faults are armed one kind at a time: a matching fault uses up its
	// count even when an earlier one decided the answer.)
	env.emu.AddFault(sfemu.Fault{Method: "POST", Path: "/jobs/ingest", Count: 2, Status: 503})
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	env.emu.AddFault(sfemu.Fault{Method: "POST", Path: "/jobs/ingest", Count: 1, Status: 429})
	job2, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	if n := env.requests.count("POST", "/jobs/ingest"); n != 5 {
		t.Errorf("create requests = %d, want 5 (3 for the first job, 2 for the second)", n)
	}
	if jobs := env.emu.Jobs(); len(jobs) != 2 || !slices.ContainsFunc(jobs, func(j sfemu.JobSnapshot) bool { return j.ID == job.ID }) ||
		!slices.ContainsFunc(jobs, func(j sfemu.JobSnapshot) bool { return j.ID == job2.ID }) {
		t.Errorf("emulator jobs = %+v, want only %s and %s", jobs, job.ID, job2.ID)
	}
	// A 500 may hide a created job: not repeated.
	env.emu.AddFault(sfemu.Fault{Method: "POST", Path: "/jobs/ingest", Count: 1, Status: 500})
	env.requests.reset()
	if _, err := env.client.CreateJob(t.Context(), upsertProducts); err == nil {
		t.Error("create after 500 succeeded; want the error")
	}
	if n := env.requests.count("POST", "/jobs/ingest"); n != 1 {
		t.Errorf("create requests after 500 = %d, want 1", n)
	}
}

// TestCloseAndAbortLostAnswer: a lost close or abort answer is settled by
// reading the job's state.
func TestCloseAndAbortLostAnswer(t *testing.T) {
	env := newEnv(t, nil, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	env.needEmu(t)
	ctx := t.Context()
	path := writeProducts(t, t.TempDir(), "p.csv", "CL", 5)
	job, err := env.client.CreateJob(ctx, upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.client.UploadJobData(ctx, job.ID, path); err != nil {
		t.Fatal(err)
	}
	env.emu.AddFault(sfemu.Fault{Method: "PATCH", Path: "/jobs/ingest/", Count: 1, DropAfterHandling: true})
	info, err := env.client.CloseJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != salesforce.JobUploadComplete {
		t.Errorf("close → %s, want UploadComplete", info.State)
	}
	if n := env.requests.count("PATCH", "/jobs/ingest/"); n != 1 {
		t.Errorf("PATCHes = %d, want 1 (the state read settles it)", n)
	}

	// Abort: dropped before handling, so the job is still UploadComplete
	// when read; the PATCH is sent again.
	env.emu.AddFault(sfemu.Fault{Method: "PATCH", Path: "/jobs/ingest/", Count: 1, Drop: true})
	env.requests.reset()
	info, err = env.client.AbortJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != salesforce.JobAborted {
		t.Errorf("abort → %s, want Aborted", info.State)
	}
	if n := env.requests.count("PATCH", "/jobs/ingest/"); n != 2 {
		t.Errorf("abort PATCHes = %d, want 2", n)
	}
	// Aborting an Aborted job: the state is already the one asked for.
	_, err = env.client.AbortJob(ctx, job.ID)
	if err != nil {
		t.Errorf("second abort of an Aborted job: %v, want success (state reached)", err)
	}
}

// TestIllegalJobTransitions: Salesforce's refusals of calls in the wrong
// state come back as errors, not retried, and the client's state reading
// settles close/abort.
func TestIllegalJobTransitions(t *testing.T) {
	env := newEnv(t, nil, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	ctx := t.Context()
	path := writeProducts(t, t.TempDir(), "p.csv", "IT", 3)
	job, err := env.client.CreateJob(ctx, upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	// Deleting an Open job is refused (2.8).
	if err := env.client.DeleteJob(ctx, job.ID); err == nil {
		t.Error("deleting an Open job succeeded")
	}
	if err := env.client.UploadJobData(ctx, job.ID, path); err != nil {
		t.Fatal(err)
	}
	if env.emu != nil {
		// The close is done and the job even processed, but the answer is
		// lost: reading the job shows the close took effect.
		env.emu.AddFault(sfemu.Fault{Method: "PATCH", Path: "/jobs/ingest/", Count: 1, DropAfterHandling: true})
	}
	info, err := env.client.CloseJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State == salesforce.JobOpen || info.State == salesforce.JobAborted {
		t.Errorf("close → %s", info.State)
	}
	final, err := env.client.WaitJob(ctx, job.ID)
	if err != nil || final.State != salesforce.JobComplete {
		t.Fatalf("final %+v, %v", final, err)
	}
	env.requests.reset()
	err = env.client.UploadJobData(ctx, job.ID, path)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("upload to a finished job: %v, want 400", err)
	}
	if n := env.requests.count("PUT", ""); n != 1 {
		t.Errorf("PUTs = %d, want 1", n)
	}
	// Closing a finished job: the state read shows it is past closing.
	if info, err := env.client.CloseJob(ctx, job.ID); err != nil || info.State != salesforce.JobComplete {
		t.Errorf("close of a finished job: %+v, %v", info, err)
	}
	// Aborting a finished job: nothing to abort, said so.
	if _, err := env.client.AbortJob(ctx, job.ID); err == nil || !strings.Contains(err.Error(), "already finished as JobComplete") {
		t.Errorf("abort of a finished job: %v", err)
	}
	// A delete whose answer is lost: the repeat meets 404, which after a
	// lost answer means the first one worked.
	if env.emu != nil {
		env.emu.AddFault(sfemu.Fault{Method: "DELETE", Count: 1, DropAfterHandling: true})
	}
	if err := env.client.DeleteJob(ctx, job.ID); err != nil {
		t.Errorf("delete with a lost answer: %v", err)
	}
	if _, err := env.client.GetJob(ctx, job.ID); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("job still there after delete: %v", err)
	}
}

// TestWaitJobThroughDroppedPolls: polls that lose their connection, or meet
// 503s, do not end the wait.
func TestWaitJobThroughDroppedPolls(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.MaxAttempts = 2 }, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "p.csv", "WP", 10)
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.client.UploadJobData(t.Context(), job.ID, path); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.CloseJob(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	env.requests.reset()
	type result struct {
		info *salesforce.JobInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := env.client.WaitJob(t.Context(), job.ID)
		done <- result{info, err}
	}()
	// awaitPolls waits until n polls have been sent in this test.
	awaitPolls := func(n int) {
		for env.requests.count("GET", "/jobs/ingest/") < n {
			select {
			case r := <-done:
				t.Fatalf("WaitJob ended early: %+v, %v", r.info, r.err)
			case <-time.After(time.Millisecond):
			}
		}
	}
	// More failures in a row than one GetJob's attempts, of each kind,
	// armed one after another: WaitJob must poll on through all of them.
	env.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/jobs/ingest/", Count: 3, Drop: true})
	awaitPolls(1)
	awaitPolls(4)
	env.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/jobs/ingest/", Count: 3, Status: 503})
	awaitPolls(7)
	env.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/jobs/ingest/", Count: 3, DropAfterHandling: true})
	awaitPolls(10)
	env.emu.ProcessJobs()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.info.State != salesforce.JobComplete || r.info.NumberRecordsProcessed != 10 {
		t.Errorf("final = %s %d", r.info.State, r.info.NumberRecordsProcessed)
	}
	logs := env.logs.String()
	for _, want := range []string{"polling on", "503", "EOF"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not mention %q", want)
		}
	}
}

func TestWaitJobTimeoutAndContext(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.JobTimeout = 50 * time.Millisecond }, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "p.csv", "WT", 2)
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	env.client.UploadJobData(t.Context(), job.ID, path)
	env.client.CloseJob(t.Context(), job.ID)
	start := time.Now()
	last, err := env.client.WaitJob(t.Context(), job.ID)
	if !errors.Is(err, salesforce.ErrJobTimeout) || !strings.Contains(err.Error(), "still UploadComplete") {
		t.Fatalf("err = %v, want ErrJobTimeout naming the state", err)
	}
	if last == nil || last.State != salesforce.JobUploadComplete {
		t.Errorf("last info = %+v", last)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	env2 := newEnv(t, func(c *salesforce.Config) { c.PollInterval = time.Hour }, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	job2, _ := env2.client.CreateJob(t.Context(), upsertProducts)
	start = time.Now()
	_, err = env2.client.WaitJob(ctx, job2.ID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ctx deadline honoured only after %s", d)
	}

	// Processing resumes: the wait completes.
	env.emu.ProcessJobs()
	final, err := env.client.WaitJob(t.Context(), job.ID)
	if err != nil || final.State != salesforce.JobComplete {
		t.Errorf("after ProcessJobs: %v %v", final, err)
	}
}

// TestWaitJobWaitsBeforeFirstPoll: a job just closed is UploadComplete,
// so WaitJob waits one PollInterval before its first GET. A job that is
// done within that interval costs exactly one poll, alone through WaitJob
// and inside LoadFiles; and when the close itself came back terminal (its
// answer lost, the job read as already done), LoadFiles does not wait at
// all.
func TestWaitJobWaitsBeforeFirstPoll(t *testing.T) {
	const poll = 300 * time.Millisecond // processing (20ms) ends well within it
	cfg := func(c *salesforce.Config) { c.PollInterval, c.PollMaxInterval = poll, poll }
	t.Run("WaitJob", func(t *testing.T) {
		env := newEnv(t, cfg, sfemu.WithProcessing(sfemu.ProcessAsync, 20*time.Millisecond))
		env.needEmu(t)
		ctx := t.Context()
		job, err := env.client.CreateJob(ctx, upsertProducts)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.client.UploadJobData(ctx, job.ID, writeProducts(t, t.TempDir(), "p.csv", "FP", 3)); err != nil {
			t.Fatal(err)
		}
		if info, err := env.client.CloseJob(ctx, job.ID); err != nil || info.State != salesforce.JobUploadComplete {
			t.Fatalf("close: %v %v", info, err)
		}
		env.requests.reset()
		start := time.Now()
		final, err := env.client.WaitJob(ctx, job.ID)
		if err != nil || final.State != salesforce.JobComplete || final.NumberRecordsProcessed != 3 {
			t.Fatalf("WaitJob = %+v, %v", final, err)
		}
		if n := env.requests.count("GET", "/jobs/ingest/"+job.ID); n != 1 {
			t.Errorf("%d polls, want 1: the first GET comes after PollInterval, when the job is done", n)
		}
		if took := time.Since(start); took < poll {
			t.Errorf("WaitJob returned after %s, before the first PollInterval (%s)", took, poll)
		}
	})
	t.Run("LoadFiles", func(t *testing.T) {
		env := newEnv(t, cfg, sfemu.WithProcessing(sfemu.ProcessAsync, 20*time.Millisecond))
		env.needEmu(t)
		dir := t.TempDir()
		files := []salesforce.LoadFile{{Path: writeProducts(t, dir, "a.csv", "FA", 2)}, {Path: writeProducts(t, dir, "b.csv", "FB", 2)}}
		res, err := env.client.LoadFiles(t.Context(), upsertProducts, files, salesforce.LoadOptions{Parallel: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if !r.Succeeded() {
				t.Fatalf("%+v", r)
			}
			if n := env.requests.count("GET", "/jobs/ingest/"+r.JobID); n != 1 {
				t.Errorf("job %s: %d polls, want 1", r.JobID, n)
			}
		}
	})
	t.Run("close answer lost, job already done", func(t *testing.T) {
		env := newEnv(t, cfg, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
		env.needEmu(t)
		env.emu.AddFault(sfemu.Fault{Method: "PATCH", Path: "/jobs/ingest/", Count: 1, DropAfterHandling: true})
		start := time.Now()
		res, err := env.client.LoadFiles(t.Context(), upsertProducts,
			[]salesforce.LoadFile{{Path: writeProducts(t, t.TempDir(), "c.csv", "FC", 2)}}, salesforce.LoadOptions{})
		if err != nil || !res[0].Succeeded() || res[0].Processed != 2 {
			t.Fatalf("%+v, %v", res, err)
		}
		if n := env.requests.count("GET", "/jobs/ingest/"+res[0].JobID); n != 1 {
			t.Errorf("%d GETs of the job, want 1 (the read that settled the lost close)", n)
		}
		if took := time.Since(start); took >= poll {
			t.Errorf("took %s: waited a PollInterval for a job known to be done", took)
		}
	})
}

// TestWaitJobBacksOff: polls start at PollInterval and grow to
// PollMaxInterval, so a long job costs few API calls.
func TestWaitJobBacksOff(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) {
		c.PollInterval = time.Millisecond
		c.PollMaxInterval = 40 * time.Millisecond
		c.JobTimeout = 400 * time.Millisecond
	}, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	env.needEmu(t)
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	env.requests.reset()
	if _, err := env.client.WaitJob(t.Context(), job.ID); !errors.Is(err, salesforce.ErrJobTimeout) {
		t.Fatalf("err = %v", err)
	}
	// 1ms doubling up to 40ms over 400ms: 1+2+...+32 = 63ms in 6 polls,
	// then about 8 of 40ms, so about 15 polls. Without backoff it would be
	// hundreds; with a far lower cap, more than 40.
	if n := env.requests.count("GET", "/jobs/ingest/"); n < 8 || n > 25 {
		t.Errorf("%d polls in 400ms, want about 15", n)
	}
}

// TestJobEndsFailed: a job Salesforce fails as a whole reports Failed with
// its errorMessage; its rows are unprocessed.
func TestJobEndsFailed(t *testing.T) {
	env := newEnv(t, nil)
	dir := t.TempDir()
	t.Run("bad header", func(t *testing.T) {
		path := filepath.Join(dir, "bad.csv")
		os.WriteFile(path, []byte("External_Id__c,Name,Foo__c\nFH-1,x,y\nFH-2,z,w\n"), 0o644)
		final := runJob(t, env.client, upsertProducts, path)
		if final.State != salesforce.JobFailed || final.ErrorMessage != "InvalidBatch : Field name not found : Foo__c" {
			t.Errorf("job = %s %q, want Failed with the 2.11 message", final.State, final.ErrorMessage)
		}
		n, err := env.client.DownloadResults(t.Context(), final.ID, salesforce.ResultUnprocessed, filepath.Join(dir, "un.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("unprocessed rows = %d, want 2", n)
		}
	})
	t.Run("injected failure", func(t *testing.T) {
		env.needEmu(t)
		env.emu.FailNextJob("ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF")
		path := writeProducts(t, dir, "p.csv", "FJ", 7)
		res, err := env.client.LoadFiles(t.Context(), upsertProducts, []salesforce.LoadFile{{Path: path}}, salesforce.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		if r.Err != nil || r.State != salesforce.JobFailed || !strings.Contains(r.ErrorMessage, "LineEnding is invalid") || r.Succeeded() {
			t.Errorf("result = %+v, want Failed with the message", r)
		}
		n, err := env.client.DownloadResults(t.Context(), r.JobID, salesforce.ResultUnprocessed, filepath.Join(dir, "un2.csv"))
		if err != nil || n != 7 {
			t.Errorf("unprocessed = %d, %v; want 7", n, err)
		}
		if got := env.countProducts(t, "FJ"); got != 0 {
			t.Errorf("a failed job left %d records", got)
		}
	})
}

// TestDownloadResults covers streaming to disk: empty sets, a transfer
// that breaks off, and an error that must not touch an existing file.
func TestDownloadResults(t *testing.T) {
	env := newEnv(t, nil)
	dir := t.TempDir()
	final := runJob(t, env.client, upsertProducts, writeProducts(t, dir, "p.csv", "DR", 120))
	ctx := t.Context()

	failed := filepath.Join(dir, "failed.csv")
	n, err := env.client.DownloadResults(ctx, final.ID, salesforce.ResultFailed, failed)
	if err != nil || n != 0 {
		t.Fatalf("failed results: %d, %v; want 0 rows", n, err)
	}
	if _, err := os.Stat(failed); err != nil {
		t.Errorf("empty result not written: %v", err)
	}

	if env.emu != nil {
		// The first answer is cut after the work: the download starts over.
		env.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/successfulResults", Count: 1, DropAfterHandling: true})
	}
	ok := filepath.Join(dir, "ok.csv")
	n, err = env.client.DownloadResults(ctx, final.ID, salesforce.ResultSuccessful, ok)
	if err != nil || n != 120 {
		t.Fatalf("successful results: %d, %v; want 120", n, err)
	}
	recs := readCSV(t, ok)
	if len(recs) != 121 {
		t.Errorf("file has %d records, want header + 120", len(recs))
	}
	keys := column(t, recs, "External_Id__c")
	slices.Sort(keys)
	if keys[0] != "DR-00000" || keys[119] != "DR-00119" || len(slices.Compact(keys)) != 120 {
		t.Errorf("keys not the 120 uploaded ones")
	}

	// An error leaves an existing file untouched and no temporary file.
	before, _ := os.ReadFile(ok)
	_, err = env.client.DownloadResults(ctx, "750000000000000AAA", salesforce.ResultSuccessful, ok)
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("unknown job: %v, want 404", err)
	}
	after, _ := os.ReadFile(ok)
	if string(before) != string(after) {
		t.Error("a failed download changed the existing file")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	if _, err := env.client.DownloadResults(ctx, final.ID, "allResults", ok); err == nil {
		t.Error("unknown result kind accepted")
	}
}

// TestRetryBounds: retries stop after MaxAttempts, never repeat a final
// 4xx, and stop when the context ends.
func TestRetryBounds(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.MaxAttempts = 4 })
	env.needEmu(t)
	ctx := t.Context()
	if _, err := env.client.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	env.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/describe", Share: 1, Status: 503})
	env.requests.reset()
	_, err := env.client.Describe(ctx, "Product2")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("err = %v, want the 503 after 4 attempts", err)
	}
	if n := env.requests.count("GET", "/describe"); n != 4 {
		t.Errorf("describe requests = %d, want 4", n)
	}
	env.emu.ClearFaults()

	env.requests.reset()
	_, err = env.client.Describe(ctx, "NoSuchObject__c")
	if !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("err = %v, want 404", err)
	}
	if n := env.requests.count("GET", "/describe"); n != 1 {
		t.Errorf("a 404 was sent %d times", n)
	}

	slow := newEnv(t, func(c *salesforce.Config) {
		c.RetryBaseDelay = time.Hour
		c.RetryMaxDelay = time.Hour
	})
	slow.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/describe", Share: 1, Status: 503})
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = slow.client.Describe(cctx, "Product2")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "503") {
		t.Errorf("err = %v, want the deadline, with the last 503 as context", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("backoff ignored the context for %s", d)
	}
}

// TestStorm: a storm of 429/503 answers and dropped connections on every
// endpoint; a load still completes with every record once.
func TestStorm(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.MaxAttempts = 12 })
	env.needEmu(t)
	dir := t.TempDir()
	var files []salesforce.LoadFile
	for i := range 6 {
		files = append(files, salesforce.LoadFile{Path: writeProducts(t, dir, "s"+string(rune('a'+i))+".csv", "ST"+string(rune('A'+i)), 50)})
	}
	env.emu.AddFault(sfemu.Fault{Share: 0.25, Status: 503})
	env.emu.AddFault(sfemu.Fault{Share: 0.15, Status: 429})
	env.emu.AddFault(sfemu.Fault{Method: "GET", Share: 0.2, Drop: true})
	env.emu.AddFault(sfemu.Fault{Method: "PUT", Share: 0.3, DropAfterHandling: true})
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, files, salesforce.LoadOptions{Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	env.emu.ClearFaults()
	for _, r := range res {
		if !r.Succeeded() || r.Processed != 50 {
			t.Errorf("%s: %+v", r.Path, r)
		}
	}
	if n := env.countProducts(t, "ST"); n != 300 {
		t.Errorf("org has %d ST products, want 300", n)
	}
	// No job processed data twice: the completed jobs account for 300 rows.
	var processed int64
	for _, j := range env.emu.Jobs() {
		if string(j.State) == "JobComplete" {
			processed += j.NumberRecordsProcessed
		}
	}
	if processed != 300 {
		t.Errorf("completed jobs processed %d rows, want 300", processed)
	}
	t.Logf("requests sent: %d; jobs by state: %v", env.requests.count("", "/"), env.jobsByState())
	env.assertNoSecrets(t, resultTexts(res)...)
}

func TestListJobs(t *testing.T) {
	env := newEnv(t, nil, sfemu.WithListPageSize(3))
	var ids []string
	for range 8 {
		j, err := env.client.CreateJob(t.Context(), upsertProducts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	env.requests.reset()
	jobs, err := env.client.ListJobs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		got = append(got, j.ID)
	}
	for _, id := range ids {
		if !slices.Contains(got, id) {
			t.Errorf("job %s missing from the list", id)
		}
	}
	if !realOrg {
		if len(got) != 8 {
			t.Errorf("listed %d jobs, want 8", len(got))
		}
		if n := env.requests.count("GET", "/jobs/ingest"); n != 3 {
			t.Errorf("pages fetched = %d, want 3 (3+3+2)", n)
		}
	}
	for _, id := range ids {
		env.client.AbortJob(t.Context(), id)
	}
}

// TestAPIUsage: Sforce-Limit-Info is read; the daily limit is not retried.
func TestAPIUsage(t *testing.T) {
	env := newEnv(t, nil, sfemu.WithAPILimit(5))
	if _, ok := env.client.APIUsage(); ok {
		t.Error("usage known before any call")
	}
	if _, err := env.client.Describe(t.Context(), "Product2"); err != nil {
		t.Fatal(err)
	}
	u, ok := env.client.APIUsage()
	if !ok || u.Used < 1 {
		t.Fatalf("usage = %+v, %v", u, ok)
	}
	if realOrg {
		return
	}
	if u.Max != 5 || u.Used != env.emu.APIUsage() {
		t.Errorf("usage = %+v, emulator counted %d of 5", u, env.emu.APIUsage())
	}
	for range 6 {
		env.client.Describe(t.Context(), "Product2")
	}
	env.requests.reset()
	_, err := env.client.Describe(t.Context(), "Product2")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 403 || !apiErr.HasCode("REQUEST_LIMIT_EXCEEDED") {
		t.Fatalf("over the limit: %v, want 403 REQUEST_LIMIT_EXCEEDED", err)
	}
	if n := env.requests.count("GET", "/describe"); n != 1 {
		t.Errorf("the daily limit was retried: %d requests", n)
	}
	if !strings.Contains(env.logs.String(), "90% of its daily API calls") {
		t.Error("no warning near the cap")
	}
}
