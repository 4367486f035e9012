package salesforce_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestLoadFilesParallel: at most Parallel jobs at once, each followed to
// its end, job ids reported before their upload, results in input order.
func TestLoadFilesParallel(t *testing.T) {
	env := newEnv(t, nil, sfemu.WithProcessing(sfemu.ProcessAsync, 20*time.Millisecond))
	dir := t.TempDir()
	var files []salesforce.LoadFile
	for i := range 10 {
		files = append(files, salesforce.LoadFile{Path: writeProducts(t, dir, fmt.Sprintf("b_%05d.csv", i), fmt.Sprintf("PL%02d", i), 20+i)})
	}
	var (
		mu             sync.Mutex
		active, peak   int
		created        = map[string]string{}
		uploadedBefore []string
		done           int
	)
	opts := salesforce.LoadOptions{
		Parallel: 3,
		OnJobCreated: func(path, id string) error {
			// The callback comes before any upload to the job.
			if env.requests.count("PUT", id) != 0 {
				uploadedBefore = append(uploadedBefore, id)
			}
			mu.Lock()
			defer mu.Unlock()
			created[path] = id
			active++
			peak = max(peak, active)
			return nil
		},
		OnJobDone: func(r salesforce.LoadResult) {
			mu.Lock()
			defer mu.Unlock()
			active--
			done++
		},
	}
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(files) {
		t.Fatalf("%d results for %d files", len(res), len(files))
	}
	for i, r := range res {
		if r.Path != files[i].Path {
			t.Errorf("result %d is for %s, want %s (input order)", i, r.Path, files[i].Path)
		}
		if !r.Succeeded() || r.Processed != int64(20+i) || r.JobID != created[r.Path] {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if peak > 3 {
		t.Errorf("%d jobs ran at once, want at most 3", peak)
	}
	if peak < 2 && !realOrg {
		t.Errorf("jobs never overlapped (peak %d)", peak)
	}
	if done != 10 {
		t.Errorf("OnJobDone called %d times, want 10", done)
	}
	if len(uploadedBefore) > 0 {
		t.Errorf("jobs uploaded before OnJobCreated: %v", uploadedBefore)
	}
	if n := env.countProducts(t, "PL"); n != 245 {
		t.Errorf("org has %d PL products, want 245", n)
	}
	if !realOrg {
		if st := env.jobsByState(); st["JobComplete"] != 10 || len(st) != 1 {
			t.Errorf("emulator jobs by state: %v, want 10 JobComplete", st)
		}
	}
}

// TestLoadFilesMixedOutcomes: every file gets a result, failures included.
func TestLoadFilesMixedOutcomes(t *testing.T) {
	env := newEnv(t, nil)
	dir := t.TempDir()
	good := writeProducts(t, dir, "good.csv", "MX", 10)
	badHeader := filepath.Join(dir, "bad_header.csv")
	os.WriteFile(badHeader, []byte("External_Id__c,Nope__c\nMX-X,1\n"), 0o644)
	partial := filepath.Join(dir, "partial.csv")
	os.WriteFile(partial, []byte("External_Id__c,Name\nMX-P1,ok\nMX-P2,\"\"\nMX-P3,"+strings.Repeat("z", 256)+"\n"), 0o644)
	missing := filepath.Join(dir, "missing.csv")
	var doneFor []string
	res, err := env.client.LoadFiles(t.Context(), upsertProducts,
		[]salesforce.LoadFile{{Path: good}, {Path: missing}, {Path: badHeader}, {Path: partial}},
		salesforce.LoadOptions{Parallel: 2, OnJobDone: func(r salesforce.LoadResult) { doneFor = append(doneFor, r.Path) }})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !r.Succeeded() || r.Processed != 10 {
		t.Errorf("good: %+v", r)
	}
	if r := res[1]; r.Err == nil || r.JobID != "" || !errors.Is(r.Err, os.ErrNotExist) || !strings.Contains(r.Err.Error(), missing) {
		t.Errorf("missing: %+v, want a not-exist error and no job", r)
	}
	if r := res[2]; r.Err != nil || r.State != salesforce.JobFailed || !strings.Contains(r.ErrorMessage, "Nope__c") {
		t.Errorf("bad header: %+v, want Failed naming Nope__c", r)
	}
	if r := res[3]; r.Err != nil || r.State != salesforce.JobComplete || r.Processed != 3 || r.Failed < 1 || r.Succeeded() {
		t.Errorf("partial: %+v, want JobComplete with failed rows", r)
	}
	if len(doneFor) != 4 {
		t.Errorf("OnJobDone called for %v, want all 4", doneFor)
	}
}

// TestLoadFilesTokenExpiryMidLoad: the session ends while jobs run; the
// load completes, renewing the token as needed.
func TestLoadFilesTokenExpiryMidLoad(t *testing.T) {
	cases := []struct {
		name     string
		opts     []sfemu.Option
		expireAt int // expire every token when this job is created (0: never)
	}{
		// The org ends every session at once (an admin, a password policy)
		// while uploads and polls of other jobs are in flight.
		{"sessions revoked", []sfemu.Option{sfemu.WithProcessing(sfemu.ProcessAsync, 5*time.Millisecond)}, 3},
		// Tokens live 40ms: the load outlives several of them.
		{"short token lifetime", []sfemu.Option{sfemu.WithTokenLifetime(40 * time.Millisecond),
			sfemu.WithProcessing(sfemu.ProcessAsync, 25*time.Millisecond)}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil, tc.opts...)
			env.needEmu(t)
			dir := t.TempDir()
			var files []salesforce.LoadFile
			for i := range 6 {
				files = append(files, salesforce.LoadFile{Path: writeProducts(t, dir, fmt.Sprintf("t%d.csv", i), fmt.Sprintf("TE%d", i), 30)})
			}
			created := 0
			res, err := env.client.LoadFiles(t.Context(), upsertProducts, files, salesforce.LoadOptions{
				Parallel: 2,
				OnJobCreated: func(string, string) error {
					if created++; created == tc.expireAt {
						env.emu.ExpireTokens()
					}
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.Succeeded() {
					t.Errorf("%s: %+v", r.Path, r)
				}
			}
			if n := env.requests.count("POST", "/oauth2/token"); n < 2 {
				t.Errorf("token requests = %d, want renewals", n)
			}
			if n := env.countProducts(t, "TE"); n != 180 {
				t.Errorf("org has %d TE products, want 180", n)
			}
			if st := env.jobsByState(); st["JobComplete"] != 6 || len(st) != 1 {
				t.Errorf("jobs by state %v, want exactly 6 JobComplete", st)
			}
			t.Logf("token requests: %d", env.requests.count("POST", "/oauth2/token"))
			env.assertNoSecrets(t, resultTexts(res)...)
		})
	}
}

// TestLoadFilesUploadRefused: an upload answered 503 is not re-sent; the
// loader aborts that job (never closed, so it loaded nothing) and loads
// the file in a new one, reporting the new id.
func TestLoadFilesUploadRefused(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	path := writeProducts(t, t.TempDir(), "r.csv", "UR", 12)
	env.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Count: 1, Status: 503})
	var ids []string
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, []salesforce.LoadFile{{Path: path}},
		salesforce.LoadOptions{OnJobCreated: func(_, id string) error { ids = append(ids, id); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !r.Succeeded() || r.Processed != 12 || len(ids) != 2 || r.JobID != ids[1] {
		t.Fatalf("result %+v, created %v; want success in the second job", r, ids)
	}
	if st := env.jobsByState(); st["Aborted"] != 1 || st["JobComplete"] != 1 {
		t.Errorf("jobs by state %v, want 1 Aborted + 1 JobComplete", st)
	}
	env.assertNoSecrets(t, resultTexts(res)...)
	if n := env.countProducts(t, "UR"); n != 12 {
		t.Errorf("org has %d UR products, want 12", n)
	}
}

// TestLoadResume: a file that comes with a job id is followed, never given
// a second job, whatever state the job is in.
func TestLoadResume(t *testing.T) {
	env := newEnv(t, nil, sfemu.WithProcessing(sfemu.ProcessAsync, 20*time.Millisecond))
	ctx := t.Context()
	dir := t.TempDir()
	mk := func(name string, rows int, upload, close bool) (string, string) {
		path := writeProducts(t, dir, name+".csv", "RS"+name, rows)
		job, err := env.client.CreateJob(ctx, upsertProducts)
		if err != nil {
			t.Fatal(err)
		}
		if upload {
			if err := env.client.UploadJobData(ctx, job.ID, path); err != nil {
				t.Fatal(err)
			}
		}
		if close {
			if _, err := env.client.CloseJob(ctx, job.ID); err != nil {
				t.Fatal(err)
			}
		}
		return path, job.ID
	}
	pCreated, jCreated := mk("created", 4, false, false)
	pUploaded, jUploaded := mk("uploaded", 5, true, false)
	pClosed, jClosed := mk("closed", 6, true, true)
	pDone, jDone := mk("done", 7, true, true)
	if _, err := env.client.WaitJob(ctx, jDone); err != nil {
		t.Fatal(err)
	}
	wrong, err := env.client.CreateJob(ctx, salesforce.JobSpec{Object: "Account", Operation: salesforce.OpInsert})
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	if env.emu != nil {
		before = len(env.emu.Jobs())
	}
	creates := env.requests.count("POST", "/jobs/ingest")

	files := []salesforce.LoadFile{
		{Path: pCreated, JobID: jCreated},
		{Path: pUploaded, JobID: jUploaded},
		{Path: pClosed, JobID: jClosed},
		{Path: pDone, JobID: jDone},
		{Path: pDone, JobID: "750000000000000AAA"},
		{Path: pDone, JobID: wrong.ID},
	}
	res, err := env.client.LoadFiles(ctx, upsertProducts, files, salesforce.LoadOptions{
		OnJobCreated: func(p, id string) error { t.Errorf("OnJobCreated(%s, %s) while resuming", p, id); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{4, 5, 6, 7} {
		if r := res[i]; !r.Succeeded() || r.Processed != want || r.JobID != files[i].JobID || !r.Resumed {
			t.Errorf("file %d: %+v, want JobComplete with %d rows in the recorded job", i, r, want)
		}
	}
	if r := res[4]; r.Err == nil || !strings.Contains(r.Err.Error(), "no longer exists") {
		t.Errorf("vanished job: %+v", r)
	}
	if r := res[5]; r.Err == nil || !strings.Contains(r.Err.Error(), "is not this file's job") {
		t.Errorf("wrong job: %+v", r)
	}
	if n := env.requests.count("POST", "/jobs/ingest"); n != creates {
		t.Errorf("resuming created %d jobs", n-creates)
	}
	if env.emu != nil && len(env.emu.Jobs()) != before {
		t.Errorf("emulator has %d jobs, had %d", len(env.emu.Jobs()), before)
	}
	if n := env.countProducts(t, "RS"); n != 22 {
		t.Errorf("org has %d RS products, want 22 (each file once)", n)
	}
}

// TestLoadCancel: cancelling aborts jobs not yet closed, leaves closed jobs
// to finish, starts nothing new, and still reports every file.
func TestLoadCancel(t *testing.T) {
	t.Run("during upload", func(t *testing.T) {
		env := newEnv(t, nil)
		env.needEmu(t)
		dir := t.TempDir()
		env.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 2 * time.Second})
		files := []salesforce.LoadFile{
			{Path: writeProducts(t, dir, "a.csv", "CA", 5)},
			{Path: writeProducts(t, dir, "b.csv", "CB", 5)},
			{Path: writeProducts(t, dir, "c.csv", "CC", 5)},
		}
		ctx, cancel := context.WithCancel(t.Context())
		var mu sync.Mutex
		created := 0
		start := time.Now()
		res, err := env.client.LoadFiles(ctx, upsertProducts, files, salesforce.LoadOptions{
			Parallel: 2,
			OnJobCreated: func(string, string) error {
				mu.Lock()
				defer mu.Unlock()
				if created++; created == 2 {
					time.AfterFunc(50*time.Millisecond, cancel)
				}
				return nil
			},
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("cancel took %s", d)
		}
		if len(res) != 3 {
			t.Fatalf("%d results, want 3", len(res))
		}
		for _, r := range res[:2] {
			if !errors.Is(r.Err, context.Canceled) || r.State != salesforce.JobAborted {
				t.Errorf("%s: %+v, want cancelled and Aborted", r.Path, r)
			}
		}
		if r := res[2]; !errors.Is(r.Err, context.Canceled) || r.JobID != "" || !strings.Contains(r.Err.Error(), "not started") {
			t.Errorf("third file: %+v, want not started", r)
		}
		env.emu.ClearFaults()
		if st := env.jobsByState(); st["Aborted"] != 2 || len(st) != 1 {
			t.Errorf("jobs by state %v, want 2 Aborted", st)
		}
	})
	t.Run("after close", func(t *testing.T) {
		env := newEnv(t, nil, sfemu.WithProcessing(sfemu.ProcessManual, 0))
		env.needEmu(t)
		ctx, cancel := context.WithCancel(t.Context())
		var id string
		idc := make(chan string, 1)
		go func() {
			id := <-idc
			if _, err := env.emu.AwaitJob(t.Context(), id, "UploadComplete"); err == nil {
				time.Sleep(20 * time.Millisecond) // let WaitJob poll a little
				cancel()
			}
		}()
		res, err := env.client.LoadFiles(ctx, upsertProducts, []salesforce.LoadFile{{Path: writeProducts(t, t.TempDir(), "a.csv", "CZ", 5)}},
			salesforce.LoadOptions{OnJobCreated: func(_, jobID string) error { id = jobID; idc <- jobID; return nil }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if r := res[0]; !errors.Is(r.Err, context.Canceled) || r.State != salesforce.JobUploadComplete || r.JobID != id {
			t.Errorf("result %+v, want cancelled while UploadComplete", r)
		}
		// The job was left to Salesforce; it finishes and a rerun collects it.
		env.emu.ProcessJobs()
		res, err = env.client.LoadFiles(t.Context(), upsertProducts, []salesforce.LoadFile{{Path: res[0].Path, JobID: id}}, salesforce.LoadOptions{})
		if err != nil || !res[0].Succeeded() || res[0].Processed != 5 {
			t.Errorf("resume after cancel: %+v, %v", res, err)
		}
	})
}

// TestLoadStream: files arrive while earlier ones load.
func TestLoadStream(t *testing.T) {
	env := newEnv(t, nil)
	dir := t.TempDir()
	ch := make(chan salesforce.LoadFile)
	var paths []string
	go func() {
		defer close(ch)
		for i := range 5 {
			p := writeProducts(t, dir, fmt.Sprintf("s%d.csv", i), fmt.Sprintf("LS%d", i), 10)
			paths = append(paths, p)
			select {
			case ch <- salesforce.LoadFile{Path: p}:
			case <-t.Context().Done():
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	res, err := env.client.LoadStream(t.Context(), upsertProducts, ch, salesforce.LoadOptions{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Path != paths[i] || !r.Succeeded() {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if n := env.countProducts(t, "LS"); n != 50 {
		t.Errorf("org has %d LS products, want 50", n)
	}
}

func TestLoadRejectsBadInput(t *testing.T) {
	env := newEnv(t, nil)
	if _, err := env.client.LoadFiles(t.Context(), salesforce.JobSpec{Object: "Product2", Operation: salesforce.OpUpsert}, []salesforce.LoadFile{{Path: "x"}}, salesforce.LoadOptions{}); err == nil {
		t.Error("upsert without external id field accepted")
	}
	if _, err := env.client.LoadFiles(t.Context(), upsertProducts, nil, salesforce.LoadOptions{Parallel: -1}); err == nil {
		t.Error("negative Parallel accepted")
	}
	if n := env.requests.count("", "/"); n != 0 {
		t.Errorf("%d requests sent for rejected loads", n)
	}
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, nil, salesforce.LoadOptions{})
	if err != nil || len(res) != 0 {
		t.Errorf("empty load: %v, %v", res, err)
	}
}
