//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestKillAndResume kills sfmigrate with SIGKILL at several points of a run
// and reruns the same run id: the final state is the same as an
// uninterrupted run's and no batch ever got a second job.
func TestKillAndResume(t *testing.T) {
	t.Parallel()
	const products, batch = 1000, 100 // 10 batches
	points := []struct {
		name  string
		setup func(h *harness)
		at    func(h *harness, m *pipeline.Manifest) bool
	}{
		{
			// Jobs are held in UploadComplete, so the client polls; extraction
			// is held back by the bounded queue: some batches are written and
			// waiting, others not yet extracted.
			name: "after extracting some batches, mid-poll",
			at: func(h *harness, m *pipeline.Manifest) bool {
				withJob, waiting := 0, 0
				for _, b := range m.Batches {
					if b.JobID != "" {
						withJob++
					} else {
						waiting++
					}
				}
				return withJob >= 1 && waiting >= 1 && len(h.heldJobs()) >= 1
			},
		},
		{
			// Uploads stall in the emulator: jobs exist (recorded) with no data yet.
			name: "after job creation, before its upload finished",
			setup: func(h *harness) {
				h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 3 * time.Second})
			},
			at: func(h *harness, m *pipeline.Manifest) bool {
				for _, b := range m.Batches {
					if b.JobID != "" && b.JobState == "Open" {
						return true
					}
				}
				return false
			},
		},
		{
			// Some jobs finished and recorded, others held: the rerun must
			// follow the held ones and skip the finished ones.
			name: "some jobs done, others in flight",
			setup: func(h *harness) {
				go func() {
					// Let jobs through until two batches are finished, then hold the rest.
					for i := 0; i < 20000; i++ {
						if m, err := pipeline.ReadManifest(h.dir, "k"); err == nil {
							done := 0
							for _, b := range m.Batches {
								if b.Terminal() {
									done++
								}
							}
							if done >= 2 {
								return
							}
						}
						h.emu.ProcessJobs()
						time.Sleep(time.Millisecond)
					}
				}()
			},
			at: func(h *harness, m *pipeline.Manifest) bool {
				done := 0
				for _, b := range m.Batches {
					if b.Terminal() {
						done++
					}
				}
				return done >= 2 && len(h.heldJobs()) >= 1
			},
		},
		{
			// Every job finished; result downloads stall half way.
			name: "while collecting results",
			setup: func(h *harness) {
				h.emu.AddFault(sfemu.Fault{Method: "GET", Path: "/failedResults", Share: 1, Latency: 3 * time.Second})
				ctx, stop := context.WithCancel(h.t.Context())
				h.t.Cleanup(stop)
				h.processJobsWhile(ctx)
			},
			// A batch's results are recorded in one manifest write once all
			// three are saved: kill after the first is on disk, before that.
			at: func(h *harness, m *pipeline.Manifest) bool {
				for _, b := range m.Batches {
					saved := filepath.Join(h.logs, "k", fmt.Sprintf("PRODUCTS_%05d_successful.csv", b.Index))
					if _, err := os.Stat(saved); err == nil && b.Terminal() && len(b.Results) == 0 {
						return true
					}
				}
				return false
			},
		},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sample{products: products, prices: 0}, sfemu.WithProcessing(sfemu.ProcessManual, 0))
			if p.setup != nil {
				p.setup(h)
			}
			args := []string{"--table", "PRODUCTS", "--run-id", "k", "--conf", `{"batch_size": 100, "parallel": 2}`}
			cmd := h.command("run", args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			h.waitManifest("k", p.name, func(m *pipeline.Manifest) bool { return p.at(h, m) }, cmd, &out)
			killAndWait(t, cmd, &out)
			jobsAtKill := len(h.emu.Jobs())

			// Rerun the same run id (in-process), with jobs processed again.
			h.emu.ClearFaults()
			code, stdout, stderr := h.mainProcessing("run", "--run-id", "k", "--json")
			if code != 0 {
				t.Fatalf("rerun: exit %d\nfirst run:\n%s\nrerun:\n%s", code, out.String(), stderr)
			}
			if s := h.checkAllLanded(stdout, products); s.Batches != products/batch {
				t.Errorf("summary after resume = %+v", s)
			}
			if st := h.trackerStatus("PRODUCTS"); st != "Uploaded" {
				t.Errorf("tracker = %q", st)
			}
			if jobsAtKill == 0 {
				t.Errorf("the kill came before any job existed: the point was not reached")
			}
			h.checkOneJobPerBatch("k", "Product2")
			if !strings.Contains(stderr, "resuming run k") {
				t.Errorf("rerun did not say it resumes:\n%s", stderr)
			}
		})
	}
}

// TestSIGTERMStopsCleanly: SIGTERM mid-run exits 1 saying how to resume,
// leaves a manifest whose recorded jobs match the org, and the rerun
// finishes with the same result as an uninterrupted run.
func TestSIGTERMStopsCleanly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 800, prices: 0}, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	cmd := h.command("run", "--table", "PRODUCTS", "--run-id", "term", "--conf", `{"batch_size": 100, "parallel": 2}`, "--stop-grace", "5s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitManifest("term", "jobs in flight", func(m *pipeline.Manifest) bool { return len(h.heldJobs()) >= 2 }, cmd, &out)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, &out, 30*time.Second, "sfmigrate did not stop within 30s of SIGTERM")
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d after SIGTERM, want 1\n%s", code, out.String())
	}
	// The hint is the command as given (a `go test` binary counts as
	// `go run`), every flag kept and quoted for the shell.
	if !strings.Contains(out.String(), "Continue it with: go run ./cmd/sfmigrate run --tables-config ") ||
		!strings.Contains(out.String(), `--run-id term --conf '{"batch_size": 100, "parallel": 2}' --stop-grace 5s`) {
		t.Errorf("no exact resume hint:\n%s", out.String())
	}
	// Said once, as a stop: not as a step failure, not with a context error.
	for _, bad := range []string{"step extract failed", "step upload failed", "context canceled"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("output says %q after SIGTERM:\n%s", bad, out.String())
		}
	}
	// The manifest knows every job the org has.
	m := h.manifest("term")
	recorded := map[string]bool{}
	for _, b := range m.Batches {
		if b.JobID != "" {
			recorded[b.JobID] = true
		}
		for _, p := range b.PreviousJobs {
			recorded[p] = true
		}
	}
	for _, j := range h.emu.Jobs() {
		if !recorded[j.ID] {
			t.Errorf("org job %s (%s) is not in the manifest", j.ID, j.State)
		}
	}
	code, stdout, stderr := h.mainProcessing("run", "--run-id", "term", "--json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	h.checkAllLanded(stdout, 800)
	// No batch was loaded by two jobs that both processed records.
	processedBy := map[string]int{}
	for _, j := range h.emu.Jobs() {
		if j.NumberRecordsProcessed > 0 {
			processedBy[j.ID]++
		}
	}
	m = h.manifest("term")
	for _, b := range m.Batches {
		for _, p := range b.PreviousJobs {
			if processedBy[p] > 0 {
				t.Errorf("batch %d: replaced job %s had processed records", b.Index, p)
			}
		}
	}
}
