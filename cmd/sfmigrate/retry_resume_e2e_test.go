//go:build unix

package main

import (
	"bytes"
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestKillDuringFollowUpsAndResume kills sfmigrate with SIGKILL while rows
// are being sent again in follow-up jobs: the rerun of the same run id
// lands every row with exactly one job per batch and per follow-up.
func TestKillDuringFollowUpsAndResume(t *testing.T) {
	t.Parallel()
	const products = 600
	points := []struct {
		name string
		// stall, when set, holds follow-up uploads once one is recorded.
		stall bool
		at    func(m *pipeline.Manifest) bool
	}{
		{
			name: "follow-up recorded, no job yet",
			at: func(m *pipeline.Manifest) bool {
				for _, b := range m.Batches {
					if b.IsFollowUp() && b.JobID == "" {
						return true
					}
				}
				return false
			},
		},
		{
			name:  "follow-up job created, its upload in flight",
			stall: true,
			at: func(m *pipeline.Manifest) bool {
				for _, b := range m.Batches {
					if b.IsFollowUp() && b.JobID != "" && b.JobState == "Open" {
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
			h.emu.LockRecordsFor("Product2", 1, demo.ProductKey(5), demo.ProductKey(250), demo.ProductKey(420))
			ctx, stop := context.WithCancel(t.Context())
			defer stop()
			h.processJobsWhile(ctx)
			if p.stall {
				go func() {
					for ctx.Err() == nil {
						if m, err := pipeline.ReadManifest(h.dir, "fk"); err == nil {
							for _, b := range m.Batches {
								if b.IsFollowUp() {
									h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 5 * time.Second})
									return
								}
							}
						}
						time.Sleep(time.Millisecond)
					}
				}()
			}
			cmd := h.command("run", "--table", "PRODUCTS", "--run-id", "fk", "--conf", `{"batch_size": 100, "parallel": 2}`)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			h.waitManifest("fk", p.name, p.at, cmd, &out)
			killAndWait(t, cmd, &out)
			stop()
			h.emu.ClearFaults()
			code, stdout, stderr := h.mainProcessing("run", "--run-id", "fk", "--json")
			if code != 0 {
				t.Fatalf("rerun: exit %d\nfirst run:\n%s\nrerun:\n%s", code, out.String(), stderr)
			}
			s := h.checkAllLanded(stdout, products)
			checkFinalOutcomes(t, s)
			if s.FollowUpJobs != 3 || s.Retried != 3 {
				t.Errorf("summary = %+v, want 3 follow-ups carrying 3 rows", s)
			}
			// The follow-up whose upload was cut off was Open: replaced by a
			// new job (recorded as an earlier job), never given data twice.
			h.checkJobs("fk", "Product2", p.stall)
		})
	}
}

// TestKillWithManyJobsInFlight: with one upload at a time but a window of
// six jobs in flight, several closed jobs wait in the org at once; a
// SIGKILL then and a rerun follow every one of them (none created twice,
// none forgotten).
func TestKillWithManyJobsInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1000, prices: 0}, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	cmd := h.command("run", "--table", "PRODUCTS", "--run-id", "wf", "--conf", `{"batch_size": 100, "parallel": 1, "max_jobs_in_flight": 6}`)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitManifest("wf", "five jobs held in the org", func(*pipeline.Manifest) bool { return len(h.heldJobs()) >= 5 }, cmd, &out)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	held := len(h.heldJobs())
	code, stdout, stderr := h.mainProcessing("run", "--run-id", "wf", "--json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\nfirst run:\n%s\nrerun:\n%s", code, out.String(), stderr)
	}
	s := h.checkAllLanded(stdout, 1000)
	// The rerun's window is the default maximum: the setting may change
	// between attempts.
	if held < 5 || s.Window == nil || s.Window.Max != pipeline.DefaultMaxJobsInFlight {
		t.Errorf("held %d jobs at the kill; summary window %+v", held, s.Window)
	}
	h.checkOneJobPerBatch("wf", "Product2")
}
