package salesforce_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// A realistic org processes two jobs at a time, so of four jobs closed
// together two wait in its queue behind the others: their close says
// nothing of when they end. The poller times them by their progress
// (records processed grow while a job runs) and notices every job, the
// last wave included, within moments of its end, for a few polls each.
//
// Time is the bench's realistic org scaled by 1/10 (jobs twice as long):
// 200ms queue wait, 2s per job (8,000 records at 4,000 a second,
// committed in chunks of 200: 50ms), polls from 200ms up to 3s. Polling
// on a ladder noticed the second wave a third of a job late (640-690ms in
// three runs under -race); a poll timed by progress errs late by up to a
// chunk, and the round trips (50ms, up to 320ms under -race on a busy
// machine, where the emulator parses a job before pacing it and then
// catches up in a burst).
func TestPollerTimesQueuedJobsByTheirProgress(t *testing.T) {
	const (
		rows      = 8000
		jobs      = 4
		perSecond = 4000.0 // of one job in progress
		chunk     = time.Duration(200 / perSecond * float64(time.Second))
	)
	env := newEnv(t, func(c *salesforce.Config) { c.PollInterval, c.PollMaxInterval = 200*time.Millisecond, 3*time.Second },
		sfemu.WithProcessing(sfemu.ProcessAsync, 0),
		sfemu.WithOrgModel(sfemu.OrgModel{QueueWait: 200 * time.Millisecond, RecordsPerSecond: 2 * perSecond, ConcurrentJobs: 2}))
	env.needEmu(t)
	dir := t.TempDir()
	var files []salesforce.LoadFile
	for i := range jobs {
		files = append(files, salesforce.LoadFile{Path: writeProducts(t, dir, fmt.Sprintf("q_%d.csv", i), fmt.Sprintf("Q%d", i), rows), Rows: rows})
	}
	w, err := salesforce.NewWindow(jobs, jobs)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	noticed := map[string]time.Time{}
	res, err := env.client.LoadFiles(t.Context(), upsertProducts, files, salesforce.LoadOptions{
		Parallel: jobs,
		Window:   w,
		OnJobDone: func(r salesforce.LoadResult) {
			mu.Lock()
			defer mu.Unlock()
			noticed[r.JobID] = time.Now()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	polls := env.requests.count("GET", "/jobs/ingest/7")
	var worst time.Duration
	for _, r := range res {
		if !r.Succeeded() {
			t.Fatalf("%s: %+v", r.Path, r)
		}
		info, err := env.client.GetJob(t.Context(), r.JobID)
		if err != nil {
			t.Fatal(err)
		}
		// The job's last change is its end.
		lag := noticed[r.JobID].Sub(info.SystemModstamp)
		t.Logf("job %s ended %s, noticed %s later", r.JobID, info.SystemModstamp.Format("15:04:05.000"), lag.Round(time.Millisecond))
		worst = max(worst, lag)
	}
	t.Logf("%d polls for %d jobs; noticed at most %s after the end", polls, jobs, worst.Round(time.Millisecond))
	if limit := chunk + 350*time.Millisecond; worst > limit {
		t.Errorf("a job was noticed %s after its end, want within %s (a chunk and the round trips)", worst.Round(time.Millisecond), limit)
	}
	if polls > jobs*8 {
		t.Errorf("%d polls for %d jobs: more than 8 a job", polls, jobs)
	}
}

// A job of ten minutes, its progress visible, costs no more polls than
// the backoff alone allows (TestPollBudgetOfALongJob in cmd/sfmigrate
// for a job whose progress is not seen): polls timed by progress come
// only near its end. Scaled by 1/1000 as there: a 600ms job (12,000
// records at 20,000 a second, chunks of 10ms), polls from 2ms to 30ms.
func TestPollBudgetOfALongJobInProgress(t *testing.T) {
	for _, first := range []time.Duration{2 * time.Millisecond, 50 * time.Microsecond} {
		t.Run(first.String(), func(t *testing.T) {
			env := newEnv(t, func(c *salesforce.Config) { c.PollInterval, c.PollMaxInterval = first, 30*time.Millisecond },
				sfemu.WithProcessing(sfemu.ProcessAsync, 0),
				sfemu.WithOrgModel(sfemu.OrgModel{RecordsPerSecond: 20_000, ConcurrentJobs: 1}))
			env.needEmu(t)
			f := salesforce.LoadFile{Path: writeProducts(t, t.TempDir(), "long.csv", "LJ", 12_000), Rows: 12_000}
			start := time.Now()
			res, err := env.client.LoadFiles(t.Context(), upsertProducts, []salesforce.LoadFile{f}, salesforce.LoadOptions{})
			if err != nil || !res[0].Succeeded() {
				t.Fatalf("%+v %v", res, err)
			}
			polls := env.requests.count("GET", "/jobs/ingest/7")
			t.Logf("%d polls of a job that took %s", polls, time.Since(start).Round(time.Millisecond))
			if polls > 40 {
				t.Errorf("%d polls of a job of 10 minutes (scaled), want at most 40", polls)
			}
		})
	}
}
