package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// createTracker creates a tracker record through the REST sObject create
// endpoint, as an admin would.
func createTracker(t *testing.T, baseURL, ref, status string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, baseURL+"/services/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := doJSON(req, &tok); err != nil {
		t.Fatal(err)
	}
	body := `{"External_Ref__c": "` + ref + `", "Status__c": "` + status + `"}`
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, tok.InstanceURL+"/services/data/v66.0/sobjects/Migration_Status__c/", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	var res map[string]any
	if err := doJSON(req, &res); err != nil {
		t.Fatal(err)
	}
}

// waitManifest polls the run's manifest until cond holds (or fails the test).
func (h *harness) waitManifest(runID string, what string, cond func(*pipeline.Manifest) bool, proc *exec.Cmd, out *bytes.Buffer) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := pipeline.ReadManifest(h.dir, runID); err == nil && cond(m) {
			return
		}
		if proc.ProcessState != nil {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	proc.Process.Kill()
	proc.Wait()
	h.t.Fatalf("manifest never reached %q; process output:\n%s", what, out.String())
}

// processJobsWhile keeps processing the emulator's held jobs until stop is
// closed (for ProcessManual orgs).
func (h *harness) processJobsWhile(ctx context.Context) {
	go func() {
		t := time.NewTicker(3 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.emu.ProcessJobs()
			}
		}
	}()
}

// mainProcessing is main with the emulator's held jobs processed while it
// runs (for ProcessManual orgs).
func (h *harness) mainProcessing(cmd string, args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	ctx, stop := context.WithCancel(h.t.Context())
	defer stop()
	h.processJobsWhile(ctx)
	return h.main(cmd, args...)
}

// heldJobs lists jobs waiting in UploadComplete (ProcessManual).
func (h *harness) heldJobs() []string {
	var ids []string
	for _, j := range h.emu.Jobs() {
		if j.State == "UploadComplete" {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// checkAllLanded asserts a run whose --json summary is the last line of
// stdout loaded every one of n products: the summary says so and the org
// holds exactly n Product2 records.
func (h *harness) checkAllLanded(stdout string, n int) pipeline.Summary {
	h.t.Helper()
	s := lastLineSummary(h.t, stdout)
	if s.Successful != int64(n) || s.Failed != 0 || s.TrackerStatus != "Uploaded" {
		h.t.Errorf("summary = %+v, want %d records succeeded and tracker Uploaded", s, n)
	}
	if got, _ := h.query("SELECT COUNT() FROM Product2"); got != n {
		h.t.Errorf("org holds %d products, want %d", got, n)
	}
	return s
}
