//go:build unix

package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// stepManifest reads a plan step's manifest (nil when it does not exist yet).
func (h *harness) stepManifest(planID, step string) *pipeline.Manifest {
	m, err := pipeline.ReadManifest(pipeline.RunDir(h.dir, planID), step)
	if err != nil {
		return nil
	}
	return m
}

// waitFor polls cond until it holds; it fails the test when the process
// ends or a minute passes first.
func (h *harness) waitFor(what string, cond func() bool, proc *exec.Cmd, out *bytes.Buffer) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		if proc.ProcessState != nil {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	proc.Process.Kill()
	proc.Wait()
	h.t.Fatalf("never reached %q; process output:\n%s", what, out.String())
}

func withJob(m *pipeline.Manifest) int {
	n := 0
	if m != nil {
		for _, b := range m.Batches {
			if b.JobID != "" {
				n++
			}
		}
	}
	return n
}

func terminal(m *pipeline.Manifest) int {
	n := 0
	if m != nil {
		for _, b := range m.Batches {
			if b.Terminal() {
				n++
			}
		}
	}
	return n
}

// TestPlanKillAndResume kills a plan run with SIGKILL at several points and
// reruns its run id: every row lands with every lookup, and every batch of
// every step has exactly one job.
func TestPlanKillAndResume(t *testing.T) {
	t.Parallel()
	points := []struct {
		name  string
		setup func(h *harness)
		at    func(h *harness) bool
	}{
		{
			// Jobs are held: both tables of wave 1 have jobs in flight.
			name: "wave 1 in flight",
			at: func(h *harness) bool {
				return withJob(h.stepManifest("kp", "ACCOUNTS")) >= 1 && withJob(h.stepManifest("kp", "PRODUCTS")) >= 1 && len(h.heldJobs()) >= 2
			},
		},
		{
			// Jobs are processed, uploads are slow: wave 2 is half done.
			name: "wave 2 half done",
			setup: func(h *harness) {
				h.emu.AddFault(sfemu.Fault{Method: "PUT", Path: "/batches", Share: 1, Latency: 25 * time.Millisecond})
				ctx, stop := context.WithCancel(h.t.Context())
				h.t.Cleanup(stop)
				h.processJobsWhile(ctx)
			},
			at: func(h *harness) bool {
				m := h.stepManifest("kp", "CONTACTS")
				return terminal(m) >= 1 && terminal(m) < len(m.Batches)
			},
		},
		{
			// Jobs are processed until the accounts' second pass starts,
			// then held: pass 2 has jobs in flight.
			name: "pass 2 in flight",
			setup: func(h *harness) {
				go func() {
					for h.t.Context().Err() == nil && h.stepManifest("kp", "ACCOUNTS.pass2") == nil {
						h.emu.ProcessJobs()
						time.Sleep(time.Millisecond)
					}
				}()
			},
			at: func(h *harness) bool {
				return withJob(h.stepManifest("kp", "ACCOUNTS.pass2")) >= 1 && len(h.heldJobs()) >= 1
			},
		},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, planSample, sfemu.WithProcessing(sfemu.ProcessManual, 0))
			if p.setup != nil {
				p.setup(h)
			}
			cmd := h.command("run", "--all-tables", "--run-id", "kp", "--conf", `{"batch_size": 60, "parallel": 4}`)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			h.waitFor(p.name, func() bool { return p.at(h) }, cmd, &out)
			killAndWait(t, cmd, &out)
			h.emu.ClearFaults()
			code, stdout, stderr := h.mainProcessing("run", "--run-id", "kp", "--json")
			if code != 0 {
				t.Fatalf("rerun: exit %d\nfirst run:\n%s\nrerun:\n%s", code, out.String(), stderr)
			}
			if s := lastLinePlan(t, stdout); s.Outcome != "succeeded" {
				t.Errorf("summary after resume = %+v", s)
			}
			if !strings.Contains(stderr, "resuming plan run kp") {
				t.Errorf("rerun did not say it resumes:\n%s", stderr)
			}
			h.checkPlanLanded(planSample)
			h.checkPlanJobs("kp")
			if st := h.trackerStatus("DEMO_PLAN"); st != "Uploaded" {
				t.Errorf("plan tracker = %q", st)
			}
		})
	}
}

// TestPlanSIGTERM: SIGTERM during a plan stops it cleanly (exit 1) naming
// the command that continues it, and that command finishes the plan.
func TestPlanSIGTERM(t *testing.T) {
	t.Parallel()
	h := newHarness(t, planSample, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	cmd := h.command("run", "--all-tables", "--run-id", "tp", "--conf", `{"batch_size": 60, "parallel": 4}`, "--stop-grace", "2s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitFor("jobs in flight", func() bool { return len(h.heldJobs()) >= 2 }, cmd, &out)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, &out, 30*time.Second, "sfmigrate did not stop within 30s of SIGTERM")
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d after SIGTERM, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "Continue it with: sfmigrate run --run-id tp") || !strings.Contains(out.String(), "ACCOUNTS interrupted") ||
		strings.Contains(out.String(), "context canceled") {
		t.Errorf("no resume hint:\n%s", out.String())
	}
	code, stdout, stderr := h.mainProcessing("run", "--run-id", "tp", "--json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	if s := lastLinePlan(t, stdout); s.Outcome != "succeeded" {
		t.Errorf("summary = %+v", s)
	}
	h.checkPlanLanded(planSample)
}
