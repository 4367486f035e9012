package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestHugeBatchSizeStaysUnderUploadLimit: batch files are capped in bytes
// as well as rows, so even the largest batch_size gives jobs the org
// accepts. The org's per-job upload limit is scaled down to 40 kB here
// (sfemu.WithMaxUploadBytes) and the cap to 30 kB with --max-batch-bytes
// (the default cap is 90 MB under Salesforce's 100 MB). Without the cap,
// the same run loads one 1000-row file the org refuses (the control case).
func TestHugeBatchSizeStaysUnderUploadLimit(t *testing.T) {
	t.Parallel()
	const limit = 40_000
	h := newHarness(t, sample{products: 1000}, sfemu.WithMaxUploadBytes(limit))
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--conf", `{"batch_size": 10000000}`, "--max-batch-bytes", "30000", "--keep-batches", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	s := h.checkAllLanded(stdout, 1000)
	m := h.manifest(s.RunID)
	if len(m.Batches) < 4 {
		t.Errorf("%d batches, want the 1000 rows split by bytes into several", len(m.Batches))
	}
	for _, b := range m.Batches {
		if b.Bytes > 30_000 {
			t.Errorf("batch %d has %d bytes, over the 30000 cap", b.Index, b.Bytes)
		}
	}
	if n := len(h.emu.Jobs()); n != len(m.Batches) {
		t.Errorf("%d jobs for %d batches", n, len(m.Batches))
	}

	// Control: with a cap above the org's limit the job is refused.
	h2 := newHarness(t, sample{products: 1000}, sfemu.WithMaxUploadBytes(limit))
	code, _, stderr = h2.main("run", "--table", "PRODUCTS", "--conf", `{"batch_size": 10000000}`, "--max-batch-bytes", "90000000")
	if code == 0 || !strings.Contains(stderr, "413") && !strings.Contains(strings.ToLower(stderr), "limit") {
		t.Errorf("control run: exit %d, want a refusal of the over-limit job:\n%s", code, stderr)
	}
}

// TestMaxBatchBytesChecked: a byte cap outside what a job accepts is a
// usage error before anything is sent.
func TestMaxBatchBytesChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1})
	for _, v := range []string{"100000001", "10"} {
		code, _, stderr := h.main("run", "--table", "PRODUCTS", "--max-batch-bytes", v)
		if code != 2 || !strings.Contains(stderr, "--max-batch-bytes "+v) {
			t.Errorf("%s: exit %d\n%s", v, code, stderr)
		}
	}
	if len(h.reqs.Requests()) != 0 {
		t.Errorf("requests sent")
	}
}

// TestPlanRunPassesByteCapAndPollCap: a plan run gives every step the
// run's --max-batch-bytes and --poll-max-interval (they were once checked
// and then dropped). The org refuses jobs over 40 kB, so a dropped cap
// fails the run; each job takes 600ms, so the 5ms poll cap shows in the
// number of polls (the default 30s cap lets the backoff reach 512ms and
// poll such a job about ten times).
func TestPlanRunPassesByteCapAndPollCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 600}, sfemu.WithMaxUploadBytes(40_000), sfemu.WithProcessing(sfemu.ProcessAsync, 600*time.Millisecond))
	code, stdout, stderr := h.main("run", "--tables", "PRODUCTS", "--run-id", "capped", "--conf", `{"batch_size": 10000000}`,
		"--max-batch-bytes", "30000", "--poll-interval", "1ms", "--poll-max-interval", "5ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if s := lastLinePlan(t, stdout); s.Outcome != "succeeded" {
		t.Fatalf("plan outcome %q", s.Outcome)
	}
	m, err := pipeline.ReadManifest(pipeline.RunDir(h.dir, "capped"), "PRODUCTS")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Batches) < 3 {
		t.Errorf("%d batches, want the 600 rows split by bytes into several", len(m.Batches))
	}
	for _, b := range m.Batches {
		if b.Bytes > 30_000 {
			t.Errorf("batch %d has %d bytes, over the 30000 cap", b.Index, b.Bytes)
		}
	}
	jobs := h.emu.Jobs()
	if len(jobs) != len(m.Batches) {
		t.Fatalf("%d jobs for %d batches", len(jobs), len(m.Batches))
	}
	polls := 0
	for _, r := range h.reqs.Requests() {
		for _, j := range jobs {
			if r.Method == "GET" && strings.HasSuffix(strings.TrimSuffix(r.Path, "/"), "/jobs/ingest/"+j.ID) {
				polls++
			}
		}
	}
	if perJob := float64(polls) / float64(len(jobs)); perJob < 25 {
		t.Errorf("%.1f polls per 600ms job, want at least 25 with polls at most 5ms apart", perJob)
	}
}
