package main

import (
	"strings"
	"testing"

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
