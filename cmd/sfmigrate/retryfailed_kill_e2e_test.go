//go:build unix

package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestKillDuringRetryFailedAndResume kills `run --retry-failed` with
// SIGKILL once its round is recorded: a plain `run --run-id`, or the same
// --retry-failed command, finishes that round (no second round) with every
// row landed and one job per batch and follow-up.
func TestKillDuringRetryFailedAndResume(t *testing.T) {
	t.Parallel()
	retryBatch := func(m *pipeline.Manifest, open bool) bool {
		for _, b := range m.Batches {
			if b.Via == pipeline.ViaRetryFailed && (b.JobID == "") != open && (!open || b.JobState == "Open") {
				return true
			}
		}
		return false
	}
	points := []struct {
		name   string
		stall  bool     // hold the data uploads once the round is recorded
		resume []string // the command that resumes
		at     func(m *pipeline.Manifest) bool
	}{
		{name: "round recorded, no job yet", resume: []string{"--run-id", "pp", "--json"},
			at: func(m *pipeline.Manifest) bool { return m.RetryRounds == 1 && retryBatch(m, false) }},
		{name: "follow-up job created, its upload in flight", stall: true, resume: []string{"--run-id", "pp", "--retry-failed", "--json"},
			at: func(m *pipeline.Manifest) bool { return retryBatch(m, true) }},
		{name: "follow-up job created, resumed plainly", stall: true, resume: []string{"--run-id", "pp", "--json"},
			at: func(m *pipeline.Manifest) bool { return retryBatch(m, true) }},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			h := newRetryHarness(t, sfemu.WithProcessing(sfemu.ProcessManual, 0))
			h.fixSource("p2", 101, 102, 103)
			ctx, stop := context.WithCancel(t.Context())
			defer stop()
			h.processJobsWhile(ctx)
			if p.stall {
				go func() {
					for ctx.Err() == nil {
						if m, err := pipeline.ReadManifest(h.dir, "pp"); err == nil && m.RetryRounds == 1 {
							h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 5 * time.Second})
							return
						}
						time.Sleep(time.Millisecond)
					}
				}()
			}
			cmd := h.command("run", "--run-id", "pp", "--retry-failed")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			h.waitManifest("pp", p.name, p.at, cmd, &out)
			killAndWait(t, cmd, &out)
			stop()
			h.emu.ClearFaults()
			code, stdout, stderr := h.mainProcessing("run", p.resume...)
			if code != 0 {
				t.Fatalf("resume: exit %d\nkilled run:\n%s\nresume:\n%s", code, out.String(), stderr)
			}
			s := lastLineSummary(t, stdout)
			checkFinalOutcomes(t, s)
			if s.Rows != 103 || s.Successful != 103 || s.Rejected != 0 || s.TrackerStatus != "Uploaded" || s.RetryRounds != 1 {
				t.Errorf("summary = %+v", s)
			}
			if slices.Contains(p.resume, "--retry-failed") && !strings.Contains(stderr, "retry round 1 was interrupted: finishing it first") {
				t.Errorf("the repeated --retry-failed does not say it finishes the interrupted round:\n%s", stderr)
			}
			if n, _ := h.query("SELECT COUNT() FROM Product_Price__c"); n != 103 {
				t.Errorf("org holds %d prices, want 103", n)
			}
			// A follow-up whose upload was cut off was Open: replaced by a
			// new job (recorded as an earlier one), never given data twice.
			h.checkJobs("pp", "Product_Price__c", p.stall)
		})
	}
}
