package salesforce_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// With a window wider than the uploads, jobs keep processing in the org
// while the next ones are uploaded: more jobs are in flight than Parallel,
// the window grows while jobs finish cleanly, and the poller, having
// learnt how long a job takes, needs about two polls per job.
func TestWindowKeepsTheOrgBusy(t *testing.T) {
	const delay = 150 * time.Millisecond // every job takes this long in the org
	env := newEnv(t, func(c *salesforce.Config) { c.PollInterval = 5 * time.Millisecond; c.PollMaxInterval = time.Second },
		sfemu.WithProcessing(sfemu.ProcessAsync, delay))
	dir := t.TempDir()
	var files []salesforce.LoadFile
	for i := range 24 {
		files = append(files, salesforce.LoadFile{Path: writeProducts(t, dir, fmt.Sprintf("w_%05d.csv", i), fmt.Sprintf("W%02d", i), 50), Rows: 50})
	}
	w, err := salesforce.NewWindow(2, 8)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inFlight, peak := 0, 0
	opts := salesforce.LoadOptions{
		Parallel: 2,
		Window:   w,
		OnJobCreated: func(string, string) error {
			mu.Lock()
			defer mu.Unlock()
			inFlight++
			peak = max(peak, inFlight)
			return nil
		},
		OnJobDone: func(salesforce.LoadResult) {
			mu.Lock()
			defer mu.Unlock()
			inFlight--
		},
	}
	start := time.Now()
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, files, opts)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	for _, r := range res {
		if !r.Succeeded() {
			t.Fatalf("%s: %+v", r.Path, r)
		}
	}
	if got := env.countProducts(t, "W"); got != 24*50 {
		t.Errorf("org holds %d products, want %d", got, 24*50)
	}
	if peak <= 2 {
		t.Errorf("at most %d jobs were in flight with 2 parallel uploads: uploading and waiting are not separate", peak)
	}
	if w.Limit() != 8 {
		changes, _ := w.Changes()
		t.Errorf("window ended at %d, want its maximum 8 after 24 clean jobs; changes %+v", w.Limit(), changes)
	}
	// 24 jobs two at a time would take 12 x 150ms; with up to 8 in flight
	// the org is never idle for long.
	if serial := 12 * delay; took >= serial {
		t.Errorf("load took %s, no faster than two jobs at a time (%s)", took, serial)
	}
	if polls := env.requests.count("GET", "/jobs/ingest/7"); polls > 24*4 {
		t.Errorf("%d job polls for 24 jobs: more than 4 per job", polls)
	}
	t.Logf("24 jobs of %s each, 2 uploads at once: %s, peak %d in flight, %d polls", delay, took.Round(time.Millisecond), peak, env.requests.count("GET", "/jobs/ingest/7"))
}

// Lock contention (Salesforce processing parts of jobs again) halves the
// window, and the change says why.
func TestWindowShrinksUnderLockContention(t *testing.T) {
	env, files := lockedFirstRows(t, 200, 10) // 5 % of each job
	w, _ := salesforce.NewWindow(8, 8)
	if _, err := env.client.LoadFiles(t.Context(), upsertProducts, files, salesforce.LoadOptions{Parallel: 2, Window: w}); err != nil {
		t.Fatal(err)
	}
	changes, _ := w.Changes()
	if w.Limit() >= 8 || len(changes) == 0 {
		t.Fatalf("window %d after lock contention in every job; changes %+v", w.Limit(), changes)
	}
	if c := changes[0]; c.From != 8 || c.To != 4 {
		t.Errorf("first change = %+v, want 8 -> 4", c)
	}
}

// The window keeps its size when one locked row fails in every job:
//   - 1 row in 200 is a little lock contention, cheaper to retry row by
//     row than to leave the org's capacity idle;
//   - 1 row in 20 is 5 %, but a job smaller than a chunk (a follow-up of
//     rows that met a lock) says little about the org's contention.
func TestWindowKeepsItsSizeForFewLockedRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows int
	}{{"light contention", 200}, {"small jobs", 20}} {
		t.Run(tc.name, func(t *testing.T) {
			env, files := lockedFirstRows(t, tc.rows, 1)
			w, _ := salesforce.NewWindow(8, 8)
			results, err := env.client.LoadFiles(t.Context(), upsertProducts, files, salesforce.LoadOptions{Parallel: 2, Window: w})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if r.Failed != 1 || r.Retries == 0 {
					t.Fatalf("job %s: %d failed, %d retries; want the locked row failed after retries", r.JobID, r.Failed, r.Retries)
				}
			}
			if changes, _ := w.Changes(); w.Limit() != 8 || len(changes) != 0 {
				t.Errorf("window %d after %d-row jobs with a locked row each; changes %+v", w.Limit(), tc.rows, changes)
			}
		})
	}
}

// lockedFirstRows writes 12 product files of rows rows each to an instant
// emulator where the first n records of every file stay locked.
func lockedFirstRows(t *testing.T, rows, n int) (*testEnv, []salesforce.LoadFile) {
	t.Helper()
	e := newEnv(t, nil, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	e.needEmu(t)
	dir := t.TempDir()
	var files []salesforce.LoadFile
	var locked []string
	for i := range 12 {
		prefix := fmt.Sprintf("L%02d", i)
		files = append(files, salesforce.LoadFile{Path: writeProducts(t, dir, fmt.Sprintf("l_%05d.csv", i), prefix, rows), Rows: int64(rows)})
		for k := 1; k <= n; k++ {
			locked = append(locked, fmt.Sprintf("%s-%05d", prefix, k))
		}
	}
	e.emu.LockRecords("Product2", locked...)
	return e, files
}
