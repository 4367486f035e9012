package main

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// checkFinalOutcomes asserts that every extracted row has exactly one final
// outcome in the summary.
func checkFinalOutcomes(t *testing.T, s pipeline.Summary) {
	t.Helper()
	if got := s.Successful + s.Failed + s.Unprocessed + s.Rejected; got != s.Rows {
		t.Errorf("successful %d + failed %d + unprocessed %d + rejected %d = %d, want the %d source rows read", s.Successful, s.Failed, s.Unprocessed, s.Rejected, got, s.Rows)
	}
}

// Rows that meet a lock held by another transaction are sent again in
// follow-up jobs until they land; the run ends green with no rerun.
func TestLockedRowsLandInFollowUps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 500, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	locked := []string{demo.ProductKey(3), demo.ProductKey(150), demo.ProductKey(151), demo.ProductKey(499)}
	h.emu.LockRecordsFor("Product2", 2, locked...) // each fails twice, then saves
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "lk", "--conf", `{"batch_size": 100}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Successful != 500 || s.Failed != 0 || s.TrackerStatus != "Uploaded" || s.Retried != 8 || s.FollowUpJobs != 6 {
		// batches 1, 2 and 5 hold locked rows: two follow-ups each, 4 rows twice.
		t.Errorf("summary = %+v", s)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 500 {
		t.Errorf("org holds %d products, want 500", n)
	}
	h.checkOneJobPerBatch("lk", "Product2")
	// The merged results of batch 2 say each row's final outcome once, and
	// which attempt decided it.
	m := h.manifest("lk")
	b := m.Batch(2)
	if b.Final == nil {
		t.Fatalf("batch 2 has no final results: %+v", b)
	}
	header, rows := csvRows(t, b.Final["successful"].Path)
	if len(rows) != 100 || header[len(header)-1] != "sfmigrate__attempt" {
		t.Fatalf("final successful of batch 2: %d rows, header %v", len(rows), header)
	}
	key := slices.Index(header, "External_Id__c")
	for _, r := range rows {
		want := "1"
		if r[key] == demo.ProductKey(150) || r[key] == demo.ProductKey(151) {
			want = "3"
		}
		if r[len(r)-1] != want {
			t.Errorf("row %s decided in attempt %s, want %s", r[key], r[len(r)-1], want)
		}
	}
	if f := b.Final["failed"]; f.Rows != 0 {
		t.Errorf("final failed of batch 2 has %d rows", f.Rows)
	} else if _, err := os.Stat(f.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty final failed file was left: %v", err)
	}
}

// A lock that outlasts record_retries leaves its rows failed (exit 3), once
// each in the final results, with the last attempt's error.
func TestLockOutlastingRetriesFailsItsRowsOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 200, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.LockRecords("Product2", demo.ProductKey(7))
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "lo", "--conf", `{"batch_size": 100, "record_retries": 2}`, "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\nstderr:\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Successful != 199 || s.Failed != 1 || s.FollowUpJobs != 2 || s.TrackerStatus != "In Progress" || len(s.FailedFiles) != 1 {
		t.Fatalf("summary = %+v", s)
	}
	_, rows := csvRows(t, s.FailedFiles[0])
	if len(rows) != 1 || !strings.HasPrefix(rows[0][1], "UNABLE_TO_LOCK_ROW") || rows[0][len(rows[0])-1] != "3" {
		t.Errorf("final failed rows = %v", rows)
	}
	// The tracker's detail fields count each row once, final outcome.
	_, recs := h.query("SELECT Status__c, Records_Total__c, Records_Failed__c, Last_Run_Id__c FROM Migration_Status__c WHERE External_Ref__c = 'PRODUCTS'")
	if len(recs) != 1 || recs[0]["Status__c"] != "In Progress" || recs[0]["Records_Total__c"] != 200.0 ||
		recs[0]["Records_Failed__c"] != 1.0 || recs[0]["Last_Run_Id__c"] != "lo" {
		t.Errorf("tracker record = %v", recs)
	}
}

// Failures a new attempt cannot cure (a parent that does not exist) are not
// sent again.
func TestPermanentRowFailuresAreNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 50, prices: 100, orphans: 3}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	if code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "p"); code != 0 {
		t.Fatalf("products: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := h.main("run", "--table", "PRICES", "--run-id", "pp", "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Failed != 3 || s.FollowUpJobs != 0 || s.Retried != 0 {
		t.Errorf("summary = %+v", s)
	}
}

// The unprocessed rows of a job that ended Failed land through a follow-up
// job in the same run.
func TestFailedJobRowsLandInFollowUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.FailNextJob("InvalidBatch : Failed to process query: simulated")
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "fj", "--conf", `{"batch_size": 100, "parallel": 1}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Successful != 300 || s.JobsFailed != 0 || s.Unprocessed != 0 || s.FollowUpJobs != 1 || s.Retried != 100 || s.TrackerStatus != "Uploaded" {
		t.Errorf("summary = %+v", s)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 300 {
		t.Errorf("org holds %d products, want 300", n)
	}
	h.checkOneJobPerBatch("fj", "Product2")
	if !strings.Contains(stderr, "follow-up") {
		t.Errorf("stderr does not tell of the follow-up:\n%s", stderr)
	}
}

// Run as separate task steps (an orchestrator), the upload step sends the
// transient failures again and collect-results writes the merged files.
func TestFollowUpsInTaskSteps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 250, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.LockRecordsFor("Product2", 1, demo.ProductKey(42), demo.ProductKey(201))
	var stdout string
	for _, step := range [][]string{
		{"authenticate", "--run-id", "ts", "--table", "PRODUCTS"},
		{"extract", "--run-id", "ts", "--conf", `{"batch_size": 100}`},
		{"upload", "--run-id", "ts"},
		{"collect-results", "--run-id", "ts"},
		{"update-status", "--run-id", "ts", "--json"},
	} {
		var code int
		var stderr string
		code, stdout, stderr = h.main("task", step...)
		if code != 0 {
			t.Fatalf("task %v: exit %d\n%s", step, code, stderr)
		}
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Successful != 250 || s.FollowUpJobs != 2 || s.TrackerStatus != "Uploaded" {
		t.Errorf("summary = %+v", s)
	}
	m := h.manifest("ts")
	for _, idx := range []int{1, 3} {
		if b := m.Batch(idx); b.Final == nil || b.Final["successful"].Rows != b.Rows {
			t.Errorf("batch %d: final results %+v for %d rows", idx, b.Final, b.Rows)
		}
	}
	h.checkOneJobPerBatch("ts", "Product2")
}

// TestFollowUpsJoinTheRunningLoad: the follow-up of a batch with a locked
// row is sent while the other batches are still being loaded, not after
// the last of them: its job is created before the last extracted batch's.
// (The org processes a job in 300 ms and 4 jobs are kept in flight, so the
// 40 batches take about 3 s; batch 1's follow-up is due about 0.6 s in.)
func TestFollowUpsJoinTheRunningLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 2000, prices: 0}, sfemu.WithProcessing(sfemu.ProcessAsync, 300*time.Millisecond))
	h.emu.LockRecordsFor("Product2", 1, demo.ProductKey(3)) // fails once, then saves
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "st", "--poll-interval", "10ms",
		"--conf", `{"batch_size": 50, "max_jobs_in_flight": 4}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Successful != 2000 || s.Failed != 0 || s.Retried != 1 || s.FollowUpJobs != 1 {
		t.Errorf("summary = %+v", s)
	}
	h.checkOneJobPerBatch("st", "Product2")
	m := h.manifest("st")
	order := map[string]int{}
	for i, j := range h.emu.Jobs() {
		order[j.ID] = i
	}
	followUp, lastExtracted := -1, -1
	for _, b := range m.Batches {
		if pipeline.IsFollowUpIndex(b.Index) {
			followUp = order[b.JobID]
		} else {
			lastExtracted = max(lastExtracted, order[b.JobID])
		}
	}
	if followUp < 0 || followUp > lastExtracted {
		t.Errorf("the follow-up's job is number %d of the org's jobs, the last extracted batch's %d: the follow-up waited for the whole load", followUp+1, lastExtracted+1)
	}
}
