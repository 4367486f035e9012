//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// splitProducts adds two tables to the harness's tables config that load
// the first and the second half of PRODUCTS into Product2, so that two
// runs of different run ids share one object with different rows.
func (h *harness) splitProducts(half int) {
	h.t.Helper()
	cfg, err := os.ReadFile(h.tables)
	if err != nil {
		h.t.Fatal(err)
	}
	text := string(cfg)
	start := strings.Index(text, "  PRODUCTS:\n")
	end := strings.Index(text, "  PRICES:\n")
	block := text[start:end]
	var extra strings.Builder
	for _, t := range []struct{ name, cond string }{
		{"PRODUCTS_A", "<="}, {"PRODUCTS_B", ">"},
	} {
		b := strings.Replace(block, "  PRODUCTS:\n", "  "+t.name+":\n", 1)
		b = strings.Replace(b, "    table: PRODUCTS\n",
			fmt.Sprintf("    query: SELECT * FROM PRODUCTS WHERE PRODUCT_ID %s 'P-%06d'\n", t.cond, half), 1)
		extra.WriteString(b)
	}
	text = text[:end] + extra.String() + text[end:]
	if err := os.WriteFile(h.tables, []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// startRun starts sfmigrate run in a subprocess with extra environment.
func (h *harness) startRun(env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	h.t.Helper()
	return h.start(env, "run", args...)
}

// start starts sfmigrate cmd in a subprocess with extra environment; its
// stdout and stderr go to the returned buffer.
func (h *harness) start(env []string, command string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	h.t.Helper()
	cmd := h.command(command, args...)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	return cmd, &out
}

// waitKilled waits for cmd and fails unless SIGKILL ended it.
// waitExit waits up to within for cmd to end; past that it kills it and
// fails the test, saying what did not happen.
func waitExit(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer, within time.Duration, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		// SIGQUIT first: a Go process prints every goroutine's stack, which
		// says where it hangs. out is read only once Wait has returned (its
		// copying goroutines write it until then).
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		t.Fatalf("%s:\n%s", what, out.String())
	}
}

// killAndWait kills cmd with SIGKILL and waits for it to die by it.
func killAndWait(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitKilled(t, cmd, out)
}

// waitKilled waits for cmd and fails the test unless SIGKILL ended it.
func waitKilled(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("process did not die by SIGKILL: %v\n%s", err, out.String())
	}
}

// TestTwoRunsOneObjectKilledAtCreate is the row-loss case of issue 8: run B
// is killed with its first job Open and holding B's rows (its close
// refused for a while); run A is killed between creating a job and recording its id.
// A's resume must not take B's job for its batch (it would be refused as
// already uploaded, closed, and A's rows never loaded): a job the manifest
// does not record is never touched. Both resumes end with every row of
// both runs in the org and every batch in one completed job.
func TestTwoRunsOneObjectKilledAtCreate(t *testing.T) {
	t.Parallel()
	const products, half = 600, 300
	h := newHarness(t, sample{products: products, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.splitProducts(half)
	conf := []string{"--conf", `{"batch_size": 100, "parallel": 1}`}

	// Run B: every close is refused (503, retried with backoff); kill it
	// once its first job holds B's data.
	h.emu.AddFault(sfemu.Fault{Method: "PATCH", Path: "/jobs/ingest/", Share: 1, Status: 503})
	cmdB, outB := h.startRun(nil, append([]string{"--table", "PRODUCTS_B", "--run-id", "b"}, conf...)...)
	var jobB string
	h.waitManifest("b", "B's first job holds its data, still Open", func(m *pipeline.Manifest) bool {
		if len(m.Batches) == 0 || m.Batches[0].JobID == "" {
			return false
		}
		for _, j := range h.emu.Jobs() {
			if j.ID == m.Batches[0].JobID && j.State == "Open" && j.UploadedBytes > 0 {
				jobB = j.ID
				return true
			}
		}
		return false
	}, cmdB, outB)
	cmdB.Process.Signal(syscall.SIGKILL)
	waitKilled(t, cmdB, outB)
	h.emu.ClearFaults()

	// Run A dies between "job created" and "job recorded".
	cmdA, outA := h.startRun([]string{"SFMIGRATE_E2E_AT_JOB_CREATED=kill"}, append([]string{"--table", "PRODUCTS_A", "--run-id", "a"}, conf...)...)
	waitKilled(t, cmdA, outA)
	var jobA string
	for _, j := range h.jobsFor("Product2") {
		if j.ID != jobB {
			jobA = j.ID
		}
	}
	if len(h.jobsFor("Product2")) != 2 || jobA == "" {
		t.Fatalf("org jobs after the kills: %+v, want B's and A's unrecorded one", h.jobsFor("Product2"))
	}
	if m := h.manifest("a"); len(m.Batches) == 0 || m.Batches[0].JobID != "" || m.Batches[0].HandedAt == nil {
		t.Fatalf("A's manifest after the kill: %+v, want batch 1 in creation without a job", m.Batches)
	}

	// Resume A, then B.
	code, stdoutA, stderrA := h.main("run", "--run-id", "a", "--json")
	if code != 0 {
		t.Fatalf("resume A: exit %d\n%s", code, stderrA)
	}
	code, _, stderrB := h.main("run", "--run-id", "b", "--json")

	if code != 0 {
		t.Fatalf("resume B: exit %d\n%s", code, stderrB)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != products {
		t.Errorf("org holds %d products, want %d (both halves)", n, products)
	}
	for _, k := range []string{"P-000001", "P-000100", "P-000300", "P-000301", "P-000600"} {
		if n, _ := h.query("SELECT COUNT() FROM Product2 WHERE External_Id__c = '" + k + "'"); n != 1 {
			t.Errorf("%s: %d records", k, n)
		}
	}
	ma, mb := h.manifest("a"), h.manifest("b")
	h.checkJobsOf([]*pipeline.Manifest{ma, mb}, "Product2", false)
	if mb.Batches[0].JobID != jobB {
		t.Errorf("B's batch 1 is job %s, want its own %s", mb.Batches[0].JobID, jobB)
	}
	for _, b := range ma.Batches {
		if b.JobID == jobB || b.JobID == jobA {
			t.Errorf("A's batch %d took job %s, which A never recorded", b.Index, b.JobID)
		}
	}
	s := lastLineSummary(t, stdoutA)
	if p := s.PossiblyOpenJobs; p == nil || p.Count != 1 {
		t.Errorf("A's summary lists %+v as possibly open, want 1", p)
	}
	for _, j := range h.jobsFor("Product2") {
		if j.ID == jobA && (j.State != "Open" || j.UploadedBytes != 0) {
			t.Errorf("A's unrecorded job was touched: %+v", j)
		}
	}
}

// mountTmpfs mounts a small tmpfs at dir (root only; skips otherwise).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// TestDiskFullWhenRecordingJob: the work dir's file system fills up just
// as a job id is to be recorded. No data goes to that job (it is aborted),
// the upload step stops with exit 1 and a manifest that is true, and a run
// resuming it, with space again, gives every batch exactly one job that
// loads rows.
//
// The batches are extracted first, by the extract step: in 'sfmigrate run'
// the extraction may still be writing when the disk fills, fail, and free
// its partial file, and then the job's record fits after all (under the
// full suite's load it did, and the test failed).
func TestDiskFullWhenRecordingJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	mountTmpfs(t, h.dir, "8m")
	for _, step := range [][]string{
		{"authenticate", "--run-id", "full", "--table", "PRODUCTS"},
		{"extract", "--run-id", "full", "--conf", `{"batch_size": 100}`},
	} {
		if code, _, stderr := h.main("task", step...); code != 0 {
			t.Fatalf("task %v: exit %d\n%s", step, code, stderr)
		}
	}
	cmd, out := h.start([]string{"SFMIGRATE_E2E_AT_JOB_CREATED=fill:" + h.dir}, "task", "upload", "--run-id", "full", "--conf", `{"parallel": 1}`)
	waitExit(t, cmd, out, 60*time.Second, "upload did not end")
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "no space left on device") {
		t.Errorf("output does not name the full disk:\n%s", out.String())
	}
	jobs := h.jobsFor("Product2")
	if len(jobs) != 1 || jobs[0].State != "Aborted" || jobs[0].UploadedBytes != 0 {
		t.Fatalf("org jobs %+v, want one Aborted job that got no data", jobs)
	}
	for _, b := range h.manifest("full").Batches {
		if b.JobID != "" {
			t.Errorf("batch %d records job %s, which the run could not have written", b.Index, b.JobID)
		}
	}

	if err := os.Remove(filepath.Join(h.dir, "filler")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := h.main("run", "--run-id", "full", "--json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	h.checkAllLanded(stdout, 300)
	h.checkOneJobPerBatch("full", "Product2")
	loaded := 0
	for _, j := range h.jobsFor("Product2") {
		if j.NumberRecordsProcessed > 0 {
			loaded++
		}
	}
	if m := h.manifest("full"); loaded != len(m.Batches) {
		t.Errorf("%d jobs processed rows for %d batches", loaded, len(m.Batches))
	}
}

// addFaultMix makes the emulator answer like the flaky proxy of issue 8:
// of the data calls, 10 % answered 503, 5 % 401 INVALID_SESSION_ID (as an
// expired token) and 5 % handled but their answer lost; of the token
// requests, 10 % 503 and 5 % lost answers. Faults are drawn in that order,
// so a data call fails with probability 1 - 0.90·0.95·0.95 ≈ 0.19.
func addFaultMix(emu *sfemu.Server) {
	const data, token = "/services/data/", "/services/oauth2/token"
	emu.AddFault(sfemu.Fault{Path: data, Share: 0.10, Status: 503})
	emu.AddFault(sfemu.Fault{Path: data, Share: 0.05, Status: 401})
	emu.AddFault(sfemu.Fault{Path: data, Share: 0.05, DropAfterHandling: true})
	emu.AddFault(sfemu.Fault{Path: token, Share: 0.10, Status: 503})
	emu.AddFault(sfemu.Fault{Path: token, Share: 0.05, DropAfterHandling: true})
}

// TestFaultMix: runs through the fault mix of addFaultMix finish by
// themselves, on every path (fresh load, resumed load after a kill,
// result downloads, tracker; in one run and step by step): exit 0, every row landed, every batch in
// one completed job (jobs abandoned on the way were aborted before they
// processed a row; jobs whose create answer was lost hold no data).
//
// Why this test does not flake, with the client's defaults (MaxAttempts 6)
// and p ≈ 0.19 per attempt: an idempotent call (poll, describe, results,
// tracker) fails only after 6 failed attempts, p⁶ ≈ 4.4e-5 (a 401's first
// renewal is free, which only lowers it). The steps made of such calls
// (authenticate, collect-results, update-status, about 10 calls in a run)
// fail with at most 10·p⁶ ≈ 4.4e-4, and run up to 3 times: ≈ 9e-11. A
// batch's load fails a round only when 6 jobs in a row fail (create
// answer lost ≈ 0.05, or upload answered 503 ≈ 0.10: ≈ 0.15 per job,
// 0.15⁶ ≈ 1.1e-5), or its close or poll runs out of attempts (≈ p⁶);
// rounds run up to 4 times: < 1e-17 per batch. Summed over the 8 batches
// and the runs below, the chance that any run exits non-zero is below
// 1e-9.
func TestFaultMix(t *testing.T) {
	t.Parallel()
	const products = 400
	conf := `{"batch_size": 50, "parallel": 4}`
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprintf("fresh/seed%d", seed), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sample{products: products}, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithShuffleResults(seed))
			addFaultMix(h.emu)
			code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "mix", "--conf", conf, "--json")
			h.emu.ClearFaults()
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			h.checkFaultMixRun(stdout, products)
		})
	}
	// The steps one by one, as the Airflow DAG runs them.
	t.Run("tasks/seed6", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, sample{products: products}, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithShuffleResults(6))
		addFaultMix(h.emu)
		var stdout string
		for i, step := range pipeline.Steps {
			args := []string{step, "--run-id", "mix", "--json"}
			if i == 0 {
				args = append(args, "--table", "PRODUCTS", "--conf", conf)
			}
			code, out, stderr := h.main("task", args...)
			if code != 0 {
				h.emu.ClearFaults()
				t.Fatalf("task %s: exit %d\n%s", step, code, stderr)
			}
			stdout = out
		}
		h.emu.ClearFaults()
		h.checkFaultMixRun(stdout, products)
	})
	for _, seed := range []int64{4, 5} {
		t.Run(fmt.Sprintf("resumed/seed%d", seed), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sample{products: products}, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithShuffleResults(seed))
			// Kill the first run while uploads stall: jobs recorded Open,
			// their data not there yet. The resume meets the fault mix on
			// every resumed job.
			h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 2 * time.Second})
			cmd, out := h.startRun(nil, "--table", "PRODUCTS", "--run-id", "mix", "--conf", conf)
			h.waitManifest("mix", "jobs recorded Open", func(m *pipeline.Manifest) bool {
				open := 0
				for _, b := range m.Batches {
					if b.JobID != "" && b.JobState == "Open" {
						open++
					}
				}
				return open >= 2
			}, cmd, out)
			cmd.Process.Signal(syscall.SIGKILL)
			waitKilled(t, cmd, out)
			h.emu.ClearFaults()
			addFaultMix(h.emu)
			code, stdout, stderr := h.main("run", "--run-id", "mix", "--json")
			h.emu.ClearFaults()
			if code != 0 {
				t.Fatalf("resume: exit %d\n%s", code, stderr)
			}
			h.checkFaultMixRun(stdout, products)
		})
	}
}

// checkFaultMixRun checks a run through the fault mix and logs its numbers.
func (h *harness) checkFaultMixRun(stdout string, products int) {
	h.t.Helper()
	s := h.checkAllLanded(stdout, products)
	h.checkJobs("mix", "Product2", true)
	m := h.manifest("mix")
	abandoned := 0
	for _, b := range m.Batches {
		abandoned += len(b.PreviousJobs)
	}
	h.t.Logf("%s: exit 0: %d batches, %d jobs in the org (%d completed ones carry the batches, %d abandoned before processing, %d possibly open), %.1fs",
		h.t.Name(), len(m.Batches), len(h.jobsFor("Product2")), len(m.Batches), abandoned, len(m.PossiblyOpenJobs), s.Seconds)
}

// TestResumedUpload503: the upload to a resumed Open job is answered 503.
// The resume replaces the job as a fresh load would (abort it: it is the
// run's and was never closed; record it as a previous job; create a new
// one) instead of ending the run.
func TestResumedUpload503(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 200}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 2 * time.Second})
	cmd, out := h.startRun(nil, "--table", "PRODUCTS", "--run-id", "r503", "--conf", `{"batch_size": 100, "parallel": 2}`)
	h.waitManifest("r503", "both jobs recorded Open", func(m *pipeline.Manifest) bool {
		open := 0
		for _, b := range m.Batches {
			if b.JobID != "" && b.JobState == "Open" {
				open++
			}
		}
		return open == 2
	}, cmd, out)
	cmd.Process.Signal(syscall.SIGKILL)
	waitKilled(t, cmd, out)
	h.emu.ClearFaults()
	for _, b := range h.manifest("r503").Batches {
		if b.JobID != "" {
			h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: b.JobID + "/batches", Count: 1, Status: 503})
		}
	}
	code, stdout, stderr := h.main("run", "--run-id", "r503", "--json")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	h.checkAllLanded(stdout, 200)
	h.checkJobs("r503", "Product2", true)
	for _, b := range h.manifest("r503").Batches {
		if len(b.PreviousJobs) != 1 {
			t.Errorf("batch %d: previous jobs %v, want the resumed job whose upload got 503", b.Index, b.PreviousJobs)
		}
	}
}

// TestUnfinishedBatchLoadedAgain: a job whose close is refused (503) until
// the client's attempts run out is not final; the batch is loaded again in
// a second round of the same run, following its recorded job (the upload
// is refused as already done, then the close goes through): one job, exit 0.
func TestUnfinishedBatchLoadedAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 100}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.AddFault(sfemu.Fault{Method: "PATCH", Path: "/jobs/ingest/", Count: 6, Status: 503}) // MaxAttempts
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "again", "--conf", `{"batch_size": 100, "parallel": 1}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "loading them again") {
		t.Errorf("no second round:\n%s", stderr)
	}
	h.checkAllLanded(stdout, 100)
	h.checkOneJobPerBatch("again", "Product2")
}

// TestRecordedJobOfAnotherLoadRefused: a manifest that records a job that
// is not the batch's (here a job of another run, on another object) is a
// clear error on resume; that job is never uploaded to, closed or aborted.
func TestRecordedJobOfAnotherLoadRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 100, prices: 300}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	if code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "p"); code != 0 {
		t.Fatalf("products: exit %d\n%s", code, stderr)
	}
	other := h.manifest("p").Batches[0].JobID
	h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 2 * time.Second})
	cmd, out := h.startRun(nil, "--table", "PRICES", "--run-id", "k", "--conf", `{"batch_size": 100, "parallel": 1}`)
	h.waitManifest("k", "a job recorded Open", func(m *pipeline.Manifest) bool {
		return len(m.Batches) > 0 && m.Batches[0].JobID != "" && m.Batches[0].JobState == "Open"
	}, cmd, out)
	cmd.Process.Signal(syscall.SIGKILL)
	waitKilled(t, cmd, out)
	h.emu.ClearFaults()

	// Someone (a copied manifest, a hand edit) records another run's job.
	path := filepath.Join(pipeline.RunDir(h.dir, "k"), "manifest.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	own := h.manifest("k").Batches[0].JobID
	edited := bytes.Replace(data, []byte(`"job_id":"`+own+`"`), []byte(`"job_id":"`+other+`"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("job %s not found in the manifest:\n%s", own, data)
	}
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.jobsFor("Product2")
	code, _, stderr := h.main("run", "--run-id", "k")
	if code != 1 {
		t.Fatalf("resume: exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{"recorded job " + other + " is not this file's job", "it is on Product2, not Product_Price__c"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if b := h.manifest("k").Batches[0]; b.Terminal() || b.Processed != 0 {
		t.Errorf("batch 1 took the other job's outcome: %+v", b)
	}
	if n, _ := h.query("SELECT COUNT() FROM Migration_Status__c WHERE External_Ref__c = 'PRICES' AND Status__c = 'Uploaded'"); n != 0 {
		t.Error("tracker says Uploaded")
	}
	after := h.jobsFor("Product2")
	if len(after) != len(before) {
		t.Fatalf("Product2 jobs %d -> %d", len(before), len(after))
	}
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("job %s changed: %+v -> %+v", before[i].ID, before[i], after[i])
		}
	}
}
