package sfemu_test

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// productRows is an upsert CSV of n Product2 rows with keys from start.
func productRows(start, n int) string {
	var b strings.Builder
	b.WriteString("External_Id__c,Name\n")
	for i := start; i < start+n; i++ {
		fmt.Fprintf(&b, "OM-%07d,Product %d\n", i, i)
	}
	return b.String()
}

// openJobs creates and uploads one upsert job per CSV and returns their ids
// (still Open).
func (c *tc) openJobs(csvs ...string) []string {
	c.t.Helper()
	ids := make([]string, len(csvs))
	for i, data := range csvs {
		ids[i] = c.createJob(upsertProduct)
		if r := c.upload(ids[i], data); r.status != 201 {
			c.t.Fatalf("upload: %d %s", r.status, r.body)
		}
	}
	return ids
}

// closeAll closes the jobs over HTTP and returns when the last close answered.
func (c *tc) closeAll(ids []string) {
	c.t.Helper()
	for _, id := range ids {
		if r := c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`); r.status != 200 {
			c.t.Fatalf("close %s: %d %s", id, r.status, r.body)
		}
	}
}

func TestOrgModelQueueWaitAndConcurrency(t *testing.T) {
	const (
		wait    = 300 * time.Millisecond
		perJob  = 10_000.0 // records/s of one job in progress
		rows    = 2_000    // per job: at least 200 ms in progress
		nJobs   = 4
		slots   = 2
		minProc = time.Duration(rows / perJob * float64(time.Second))
	)
	c := newTC(t, sfemu.WithOrgModel(sfemu.OrgModel{QueueWait: wait, RecordsPerSecond: perJob * slots, ConcurrentJobs: slots}))
	var csvs []string
	for i := range nJobs {
		csvs = append(csvs, productRows(i*rows, rows))
	}
	ids := c.openJobs(csvs...)
	closed := time.Now()
	c.closeAll(ids)

	// Watch the states while the jobs run: nothing in progress before the
	// queue wait (over HTTP), never more than `slots` in progress at once
	// (in a consistent snapshot of the org).
	finished := make([]time.Duration, nJobs)
	maxSeen := 0
	for done := 0; done < nJobs; {
		done = 0
		for i, id := range ids {
			switch st := c.jobInfo(id)["state"]; st {
			case sfemu.StateInProgress:
				if el := time.Since(closed); el < wait {
					t.Fatalf("job %d in progress %v after the close, before the queue wait of %v", i, el, wait)
				}
			case sfemu.StateJobComplete:
				if finished[i] == 0 {
					finished[i] = time.Since(closed)
				}
				done++
			case sfemu.StateUploadComplete:
			default:
				t.Fatalf("job %d: state %v", i, st)
			}
		}
		snapIn := 0
		for _, j := range c.emu.Jobs() {
			if j.State == sfemu.StateInProgress {
				snapIn++
			}
		}
		maxSeen = max(maxSeen, snapIn)
		if done == nJobs {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if maxSeen > slots {
		t.Errorf("saw %d jobs in progress at once, the model allows %d", maxSeen, slots)
	}
	if got := c.emu.OrgStats().PeakInProgress; got != slots {
		t.Errorf("PeakInProgress = %d, want %d (4 jobs closed at once, 2 slots)", got, slots)
	}
	// Every job waited and then took its slot's time; with 2 slots, the
	// last two started only after the first two finished.
	var last time.Duration
	for i, f := range finished {
		if f < wait+minProc {
			t.Errorf("job %d finished %v after the close, before queue wait + processing (%v)", i, f, wait+minProc)
		}
		last = max(last, f)
	}
	if last < wait+2*minProc {
		t.Errorf("the last job finished %v after the close; 4 jobs in 2 slots need at least %v", last, wait+2*minProc)
	}
	for i, id := range ids {
		info := c.jobInfo(id)
		if info["numberRecordsProcessed"] != float64(rows) || info["numberRecordsFailed"] != float64(0) {
			t.Errorf("job %d: processed %v, failed %v", i, info["numberRecordsProcessed"], info["numberRecordsFailed"])
		}
	}
}

// lockShare runs n jobs of rows records at once and returns the share of
// rows that failed UNABLE_TO_LOCK_ROW.
func lockShare(t *testing.T, c *tc, n, rows, keyBase int) float64 {
	t.Helper()
	var csvs []string
	for i := range n {
		csvs = append(csvs, productRows(keyBase+i*rows, rows))
	}
	ids := c.openJobs(csvs...)
	c.closeAll(ids)
	failed := 0
	for _, id := range ids {
		if _, err := c.emu.AwaitJob(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		_, res := c.results(id, "failedResults")
		for _, row := range res[1:] {
			if !strings.HasPrefix(row[1], "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record") {
				t.Fatalf("failed row with %q, want only lock failures", row[1])
			}
			failed++
		}
	}
	return float64(failed) / float64(n*rows)
}

func TestOrgModelLockShareRisesWithConcurrency(t *testing.T) {
	const rate = 0.02 // per other job in progress
	// 8 slots of 8,000 records/s: 2,000 rows keep a job in progress for
	// 250 ms, so jobs closed together overlap.
	c := newTC(t, sfemu.WithOrgModel(sfemu.OrgModel{RecordsPerSecond: 64_000, ConcurrentJobs: 8, LockRate: rate}))
	alone := lockShare(t, c, 1, 2_000, 0)
	two := lockShare(t, c, 2, 2_000, 100_000)
	eight := lockShare(t, c, 8, 2_000, 200_000)
	t.Logf("lock failure share: 1 job %.4f, 2 jobs %.4f, 8 jobs %.4f", alone, two, eight)
	if alone != 0 {
		t.Errorf("a job alone lost %.4f of its rows to locks, want none", alone)
	}
	// Expected: 2 jobs ~ 1 x 2 %, 8 jobs ~ 7 x 2 % (less while jobs start and end).
	if two <= 0 || two > 2*rate {
		t.Errorf("2 concurrent jobs: share %.4f, want in (0, %.2f]", two, 2*rate)
	}
	if eight <= 2*two || eight > 7*rate*1.5 {
		t.Errorf("8 concurrent jobs: share %.4f, want above twice the 2-job share (%.4f) and near %.2f", eight, two, 7*rate)
	}
	if got := c.emu.OrgStats().LockFailures; got == 0 {
		t.Errorf("OrgStats().LockFailures = 0")
	}
}

func TestOrgModelAPIAllocation(t *testing.T) {
	c := newTC(t, sfemu.WithOrgModel(sfemu.DefaultOrgModel()), sfemu.WithAPILimit(4))
	ids := c.openJobs(productRows(0, 10)) // create + upload: 2 calls
	c.closeAll(ids)                       // 3
	if r := c.get("/jobs/ingest/" + ids[0]); r.status != 200 || r.header.Get("Sforce-Limit-Info") != "api-usage=4/4" {
		t.Fatalf("4th call: %d %q", r.status, r.header.Get("Sforce-Limit-Info"))
	}
	r := c.get("/jobs/ingest/" + ids[0])
	if r.status != 403 || r.errorCode() != "REQUEST_LIMIT_EXCEEDED" || r.errorMessage() != "TotalRequests Limit exceeded." {
		t.Errorf("over the allocation: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Sforce-Limit-Info"); got != "api-usage=4/4" {
		t.Errorf("Sforce-Limit-Info over the allocation = %q", got)
	}
}

func TestOrgModelAbortWhileQueued(t *testing.T) {
	// A job aborted in the queue never takes a slot from the jobs behind it.
	c := newTC(t, sfemu.WithOrgModel(sfemu.OrgModel{QueueWait: 100 * time.Millisecond, ConcurrentJobs: 1}))
	ids := c.openJobs(productRows(0, 10), productRows(10, 10))
	c.closeAll(ids)
	if r := c.patch("/jobs/ingest/"+ids[0], `{"state":"Aborted"}`); r.status != 200 {
		t.Fatalf("abort: %d %s", r.status, r.body)
	}
	if st, err := c.emu.AwaitJob(t.Context(), ids[1]); err != nil || st != sfemu.StateJobComplete {
		t.Fatalf("second job: %s %v", st, err)
	}
	if st := c.jobInfo(ids[0])["state"]; st != sfemu.StateAborted {
		t.Errorf("aborted job: %v", st)
	}
}

var jobIDShape = regexp.MustCompile(`^7505g[0-9A-Za-z]{10}[A-Z0-5]{3}$`)

func TestJobIDsUniqueAcrossInstances(t *testing.T) {
	seen := map[string]int{}
	var mu sync.Mutex
	for inst := range 3 {
		// Each instance is a fresh emulator, as after a restart; the fixed
		// clock shows the IDs do not come from the org's clock.
		fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		c := newTC(t, sfemu.WithClock(func() time.Time { return fixed }))
		for range 3 {
			id := c.createJob(upsertProduct)
			if !jobIDShape.MatchString(id) {
				t.Fatalf("job id %q is not a Salesforce job id (750, pod, 10 digits, checksum)", id)
			}
			// The 15-character form names the same job.
			if r := c.get("/jobs/ingest/" + id[:15]); r.status != 200 {
				t.Errorf("GET by 15-char id %s: %d %s", id[:15], r.status, r.body)
			}
			mu.Lock()
			if prev, dup := seen[id]; dup {
				t.Errorf("instance %d issued job id %s again (first issued by instance %d)", inst, id, prev)
			}
			seen[id] = inst
			mu.Unlock()
		}
		c.srv.Close()
		c.emu.Close()
	}
}
