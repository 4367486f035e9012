package salesforce_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestLoadLostCreateAnswer: the answer to "create job" is lost. The job
// may exist but nobody knows its id, so it can hold no data: the loader
// says so (OnCreateLost) and loads the file in a new job.
func TestLoadLostCreateAnswer(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "l.csv", "LC", 9)
	env.emu.AddFault(sfemu.Fault{Method: "POST", Path: "/jobs/ingest", Count: 1, DropAfterHandling: true})
	var creating, lost int
	var ids []string
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, []salesforce.LoadFile{{Path: path}}, salesforce.LoadOptions{
		OnCreateJob:  func(string) error { creating++; return nil },
		OnCreateLost: func(string) { lost++ },
		OnJobCreated: func(_, id string) error { ids = append(ids, id); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !r.Succeeded() || r.Processed != 9 || len(ids) != 1 || r.JobID != ids[0] {
		t.Fatalf("result %+v, recorded %v; want success in the one job whose answer arrived", r, ids)
	}
	if creating != 2 || lost != 1 {
		t.Errorf("OnCreateJob %d times, OnCreateLost %d times; want 2 and 1", creating, lost)
	}
	// The unanswered job is Open and empty; it was never touched.
	if st := env.jobsByState(); st["Open"] != 1 || st["JobComplete"] != 1 || len(st) != 2 {
		t.Errorf("jobs by state %v, want 1 Open (unanswered) + 1 JobComplete", st)
	}
	for _, j := range env.emu.Jobs() {
		if j.State == "Open" && j.UploadedBytes != 0 {
			t.Errorf("the unanswered job %s holds %d bytes", j.ID, j.UploadedBytes)
		}
	}
	if n := env.countProducts(t, "LC"); n != 9 {
		t.Errorf("org has %d LC products, want 9", n)
	}
}

// TestLoadUnrecordedJobGetsNoData: when the job id cannot be recorded,
// nothing is uploaded to the job; it is aborted and the file fails with
// the recording error, without a second job.
func TestLoadUnrecordedJobGetsNoData(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "u.csv", "UJ", 5)
	diskFull := errors.New("write manifest.json.tmp: no space left on device")
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, []salesforce.LoadFile{{Path: path}}, salesforce.LoadOptions{
		OnJobCreated: func(string, string) error { return diskFull },
	})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if !errors.Is(r.Err, diskFull) || r.State != salesforce.JobAborted || !strings.Contains(r.Err.Error(), "no data was sent") {
		t.Fatalf("result %+v, want the recording error and the job Aborted", r)
	}
	if n := env.requests.count("PUT", "/batches"); n != 0 {
		t.Errorf("%d uploads to a job that was not recorded", n)
	}
	if n := env.requests.count("POST", "/jobs/ingest"); n != 1 {
		t.Errorf("%d jobs created, want 1", n)
	}
	if st := env.jobsByState(); st["Aborted"] != 1 || len(st) != 1 {
		t.Errorf("jobs by state %v, want 1 Aborted", st)
	}
}

// TestLoadResumedUploadFails: a 503 on the upload to a resumed Open job is
// handled as on a fresh load: the recorded job (never closed) is aborted
// and the file loaded in a new job, reported through OnJobCreated.
func TestLoadResumedUploadFails(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "r.csv", "RU", 8)
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	env.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Count: 1, Status: 503})
	var ids []string
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, []salesforce.LoadFile{{Path: path, JobID: job.ID, NotBefore: time.Now()}},
		salesforce.LoadOptions{OnJobCreated: func(_, id string) error { ids = append(ids, id); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !r.Succeeded() || r.Processed != 8 || len(ids) != 1 || r.JobID != ids[0] || ids[0] == job.ID {
		t.Fatalf("result %+v, new jobs %v; want success in a new job", r, ids)
	}
	if st := env.jobsByState(); st["Aborted"] != 1 || st["JobComplete"] != 1 || len(st) != 2 {
		t.Errorf("jobs by state %v, want the resumed job Aborted and 1 JobComplete", st)
	}
}

// TestLoadRefusesForeignJob: a recorded job that is not what the record
// says (another key field; created before its creation was started) is
// refused with a clear error and left untouched.
func TestLoadRefusesForeignJob(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "f.csv", "FJ", 3)
	other, err := env.client.CreateJob(t.Context(), salesforce.JobSpec{Object: "Product2", Operation: salesforce.OpUpsert, ExternalIDField: "Id"})
	if err != nil {
		t.Fatal(err)
	}
	old, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	files := []salesforce.LoadFile{
		{Path: path, JobID: other.ID},
		// Handed over an hour after the job was created: not its job.
		{Path: path, JobID: old.ID, NotBefore: time.Now().Add(time.Hour)},
	}
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, files, salesforce.LoadOptions{
		OnJobCreated: func(p, id string) error { t.Errorf("OnJobCreated(%s, %s)", p, id); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"external id field is Id, not External_Id__c", "before its creation was started"} {
		if r := res[i]; r.Err == nil || !strings.Contains(r.Err.Error(), "is not this file's job") || !strings.Contains(r.Err.Error(), want) {
			t.Errorf("file %d: %+v, want an error saying %q", i, r, want)
		}
		// Nothing of the foreign job is reported as the file's.
		if r := res[i]; r.State != "" || r.Processed != 0 || r.Failed != 0 {
			t.Errorf("file %d: result %+v carries the foreign job's state", i, r)
		}
	}
	if n := env.requests.count("PUT", "/batches") + env.requests.count("PATCH", "/jobs/ingest/"); n != 0 {
		t.Errorf("%d uploads or state changes to jobs that are not the file's", n)
	}
	if st := env.jobsByState(); st["Open"] != 2 || len(st) != 1 {
		t.Errorf("jobs by state %v, want both still Open", st)
	}
}

// TestPacerHoldsEveryCall: a 429 answered to one call holds back the other
// calls of the same client until its Retry-After has passed, not only the
// call that got it.
func TestPacerHoldsEveryCall(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.RetryMaxDelay = 2 * time.Second })
	env.needEmu(t)
	if _, err := env.client.Authenticate(t.Context()); err != nil {
		t.Fatal(err)
	}
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	// The emulator's 429 carries Retry-After: 1.
	env.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/jobs/ingest/", Count: 1, Status: 429})
	env.requests.reset()
	var wg sync.WaitGroup
	var first time.Duration
	start := time.Now()
	wg.Go(func() {
		if _, err := env.client.GetJob(t.Context(), job.ID); err != nil {
			t.Errorf("first call: %v", err)
		}
		first = time.Since(start)
	})
	for env.requests.count("GET", "/jobs/ingest/") == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the 429 has arrived
	other := time.Now()
	if _, err := env.client.ListJobs(t.Context()); err != nil {
		t.Fatal(err)
	}
	held := time.Since(other)
	wg.Wait()
	if held < 800*time.Millisecond {
		t.Errorf("another call went out %s after the 429, want it held back until Retry-After (1s)", held)
	}
	if first < 900*time.Millisecond || first > 3*time.Second {
		t.Errorf("the call that got the 429 took %s, want about 1s", first)
	}
}

// TestRenewalsAreBounded: a session refused again and again is renewed on
// each 401 (tokens expire, proxies drop sessions) but the call ends after
// MaxAttempts; the first renewal is free.
func TestRenewalsAreBounded(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	if _, err := env.client.Authenticate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Two 401s in a row, then the call goes through.
	env.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/jobs/ingest", Count: 2, Status: 401})
	env.requests.reset()
	if _, err := env.client.ListJobs(t.Context()); err != nil {
		t.Fatalf("after two 401s: %v", err)
	}
	if n := env.requests.count("POST", "/oauth2/token"); n != 2 {
		t.Errorf("token requests = %d, want 2 renewals", n)
	}
}
