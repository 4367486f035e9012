package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// mappedStart runs authenticate and extract of a run as separate tasks and
// returns the batches the extract step says to map the upload over.
func (h *harness) mappedStart(runID, table, conf string) []int {
	h.t.Helper()
	if code, _, stderr := h.main("task", "authenticate", "--table", table, "--run-id", runID, "--conf", conf); code != 0 {
		h.t.Fatalf("authenticate: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := h.main("task", "extract", "--table", table, "--run-id", runID, "--conf", conf, "--json")
	if code != 0 {
		h.t.Fatalf("extract: exit %d\n%s", code, stderr)
	}
	return lastLineSummary(h.t, stdout).UploadBatches
}

// startMapped starts `task upload --batch N` in a subprocess.
func (h *harness) startMapped(runID string, batch int, env ...string) (*exec.Cmd, *bytes.Buffer) {
	h.t.Helper()
	return h.start(env, "task", "upload", "--run-id", runID, "--batch", fmt.Sprint(batch), "--json")
}

// Every batch uploaded by a process of its own, all at once, as Airflow's
// mapped tasks do: each batch gets one job, locked rows land in follow-ups
// run by their batch's process, the last process marks the upload step
// done, and the run finishes green with every row in the org.
func TestMappedUploadOneProcessPerBatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 600}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.LockRecordsFor("Product2", 1, demo.ProductKey(5), demo.ProductKey(250), demo.ProductKey(420))
	batches := h.mappedStart("mp", "PRODUCTS", `{"batch_size": 100}`)
	if !slices.Equal(batches, []int{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("extract's upload_batches = %v, want 1..6", batches)
	}
	// Mapped uploads are refused for a batch the run does not have, and
	// --batch for another step.
	if code, _, stderr := h.main("task", "upload", "--run-id", "mp", "--batch", "9"); code != 2 ||
		!strings.Contains(stderr, "no extracted batch 9 (it has 6 batches with rows, 1-6)") {
		t.Errorf("--batch 9: exit %d, want 2 naming the batches\n%s", code, stderr)
	}
	if code, _, stderr := h.main("task", "collect-results", "--run-id", "mp", "--batch", "2"); code != 2 || !strings.Contains(stderr, "--batch 2 is for the upload step only") {
		t.Errorf("collect-results --batch: exit %d, want 2\n%s", code, stderr)
	}

	type proc struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var procs []proc
	for _, b := range batches {
		cmd, out := h.startMapped("mp", b)
		procs = append(procs, proc{cmd, out})
	}
	for i, p := range procs {
		waitExit(t, p.cmd, p.out, 2*time.Minute, fmt.Sprintf("upload --batch %d did not end", batches[i]))
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("upload --batch %d: exit %d\n%s", batches[i], code, p.out)
		}
		s := lastLineSummary(t, p.out.String())
		// Its own batch only: 100 rows, follow-ups included.
		if s.Batch != batches[i] || s.Rows != 100 || s.Processed == 0 || s.RowsPerSecond <= 0 {
			t.Errorf("upload --batch %d summary: batch %d, rows %d, processed %d, %.0f rows/s", batches[i], s.Batch, s.Rows, s.Processed, s.RowsPerSecond)
		}
	}
	m := h.manifest("mp")
	if !m.StepDone(pipeline.StepUpload) {
		t.Fatalf("upload step not marked done after every batch was uploaded: %+v", m.Steps[pipeline.StepUpload])
	}
	if fu := m.Batch(2<<32 + 1); fu == nil || fu.JobState != "JobComplete" {
		t.Errorf("batch 1's follow-up (locked row 5) missing or unfinished: %+v", fu)
	}
	h.checkOneJobPerBatch("mp", "Product2")

	// Idempotent: a mapped upload run again (an Airflow retry) does nothing.
	jobs := len(h.jobsFor("Product2"))
	if code, _, stderr := h.main("task", "upload", "--run-id", "mp", "--batch", "3"); code != 0 {
		t.Fatalf("upload --batch 3 again: exit %d\n%s", code, stderr)
	}
	if n := len(h.jobsFor("Product2")); n != jobs {
		t.Errorf("upload --batch 3 again made %d new jobs", n-jobs)
	}
	for _, step := range []string{"collect-results", "update-status"} {
		if code, _, stderr := h.main("task", step, "--run-id", "mp"); code != 0 {
			t.Fatalf("%s: exit %d\n%s", step, code, stderr)
		}
	}
	_, stdout, _ := h.main("task", "update-status", "--run-id", "mp", "--json")
	h.checkAllLanded(stdout, 600)
	if s := lastLineSummary(t, stdout); s.Retried != 3 || s.FollowUpJobs != 3 {
		t.Errorf("summary: %d rows retried in %d follow-up jobs, want 3 in 3", s.Retried, s.FollowUpJobs)
	}
}

// A mapped upload killed between creating its job and recording the id is
// run again (Airflow's retry): its batch gets a new job, the empty one is
// listed as possibly open, no other batch is touched, and collect-results
// waits until the batch is done.
func TestMappedUploadKilledAtCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	batches := h.mappedStart("mk", "PRODUCTS", `{"batch_size": 100}`)
	killed, kout := h.startMapped("mk", 2, "SFMIGRATE_E2E_AT_JOB_CREATED=kill")
	var others []*exec.Cmd
	for _, b := range batches {
		if b != 2 {
			cmd, out := h.startMapped("mk", b)
			others = append(others, cmd)
			defer waitExit(t, cmd, out, 2*time.Minute, fmt.Sprintf("upload --batch %d did not end", b))
		}
	}
	waitKilled(t, killed, kout)
	for _, cmd := range others {
		cmd.Wait() //nolint:errcheck // checked below by the manifest
	}
	m := h.manifest("mk")
	if m.StepDone(pipeline.StepUpload) {
		t.Fatal("upload marked done while batch 2 has no job")
	}
	if b := m.Batch(2); b.JobID != "" || b.HandedAt == nil {
		t.Fatalf("batch 2 after the kill: %+v, want a job creation under way and no job", b)
	}
	for _, b := range []int{1, 3} {
		if mb := m.Batch(b); mb.JobState != "JobComplete" {
			t.Errorf("batch %d: %+v, want its job complete", b, mb)
		}
	}
	if code, _, stderr := h.main("task", "collect-results", "--run-id", "mk"); code != 2 || !strings.Contains(stderr, "upload has not finished") {
		t.Errorf("collect-results before batch 2: exit %d, want 2\n%s", code, stderr)
	}
	if code, _, stderr := h.main("task", "upload", "--run-id", "mk", "--batch", "2"); code != 0 {
		t.Fatalf("upload --batch 2 again: exit %d\n%s", code, stderr)
	}
	m = h.manifest("mk")
	if !m.StepDone(pipeline.StepUpload) || len(m.PossiblyOpenJobs) != 1 || m.PossiblyOpenJobs[0].Batch != 2 {
		t.Errorf("after the retry: upload %+v, possibly open %+v", m.Steps[pipeline.StepUpload], m.PossiblyOpenJobs)
	}
	h.checkOneJobPerBatch("mk", "Product2")
	for _, step := range []string{"collect-results", "update-status"} {
		if code, _, stderr := h.main("task", step, "--run-id", "mk"); code != 0 {
			t.Fatalf("%s: exit %d\n%s", step, code, stderr)
		}
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 300 {
		t.Errorf("org holds %d products, want 300", n)
	}
}

// flockFile holds a flock on path until the test ends. It waits up to 10 s
// for the lock: a process another test forks may hold a copy of a lock's
// descriptor for a moment, until it execs.
func flockFile(t *testing.T, path string, how int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flock %s: %v", path, err)
		}
	}
}

// One uploader per batch, and never a mapped upload beside a step of the
// whole run (or the other way round): each is refused at once, saying why,
// before anything is sent.
func TestMappedUploadLocks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 200}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.mappedStart("ml", "PRODUCTS", `{"batch_size": 100}`)
	dir := pipeline.RunDir(h.dir, "ml")

	t.Run("same batch", func(t *testing.T) {
		flockFile(t, filepath.Join(dir, "lock.batch-1"), syscall.LOCK_EX)
		code, _, stderr := h.main("task", "upload", "--run-id", "ml", "--batch", "1")
		if code != 1 || !strings.Contains(stderr, "batch 1 of run directory") || !strings.Contains(stderr, "being uploaded by another sfmigrate process") {
			t.Errorf("exit %d, want 1 saying the batch is being uploaded\n%s", code, stderr)
		}
	})
	t.Run("whole-run step running", func(t *testing.T) {
		flockFile(t, filepath.Join(dir, "lock"), syscall.LOCK_EX)
		code, _, stderr := h.main("task", "upload", "--run-id", "ml", "--batch", "2")
		if code != 1 || !strings.Contains(stderr, "in use by a step of the whole run") {
			t.Errorf("exit %d, want 1 saying a whole-run step holds the run\n%s", code, stderr)
		}
	})
	t.Run("mapped upload running", func(t *testing.T) {
		flockFile(t, filepath.Join(dir, "lock"), syscall.LOCK_SH)
		code, _, stderr := h.main("task", "upload", "--run-id", "ml")
		if code != 1 || !strings.Contains(stderr, "in use by another sfmigrate process") {
			t.Errorf("exit %d, want 1 saying the run is in use\n%s", code, stderr)
		}
	})
	if jobs := h.jobsFor("Product2"); len(jobs) != 0 {
		t.Errorf("refused uploads created %d jobs", len(jobs))
	}
}

// A run without rows maps its upload over nothing (Airflow skips the
// mapped task): collect-results and update-status still follow.
func TestMappedUploadNoRows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 5}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.splitProducts(100) // PRODUCTS_B: the products after the 100th, none
	if batches := h.mappedStart("mz", "PRODUCTS_B", `{}`); len(batches) != 0 {
		t.Fatalf("upload_batches = %v, want none", batches)
	}
	for _, step := range []string{"collect-results", "update-status"} {
		if code, _, stderr := h.main("task", step, "--run-id", "mz"); code != 0 {
			t.Fatalf("%s: exit %d\n%s", step, code, stderr)
		}
	}
	if code, _, stderr := h.main("task", "upload", "--run-id", "mz", "--batch", "1"); code != 2 || !strings.Contains(stderr, "it has no batch with rows") {
		t.Errorf("--batch 1 of a run without rows: exit %d, want 2\n%s", code, stderr)
	}
}
