package main

import (
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// abandonBatch records, as a stopped attempt can leave it, that batch idx
// of run runID had a job that was aborted before it processed a record: a
// real job in the org, created and aborted.
func (h *harness) abandonBatch(runID string, idx int) string {
	h.t.Helper()
	c, err := salesforce.New(salesforce.Config{LoginURL: h.srv.URL, ClientID: sfemu.TestClientID, ClientSecret: sfemu.TestClientSecret})
	if err != nil {
		h.t.Fatal(err)
	}
	handed := time.Now().UTC()
	job, err := c.CreateJob(h.t.Context(), salesforce.JobSpec{Object: "Product2", Operation: salesforce.OpUpsert, ExternalIDField: "External_Id__c"})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := c.AbortJob(h.t.Context(), job.ID); err != nil {
		h.t.Fatal(err)
	}
	s, err := pipeline.OpenRun(h.dir, runID, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(m *pipeline.Manifest) error {
		b := m.Batch(idx)
		b.JobID, b.JobState, b.HandedAt = job.ID, string(salesforce.JobAborted), &handed
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return job.ID
}

// A batch whose recorded job was aborted before processing a record (a
// stop during its upload) gets a new job when the run resumes, whether
// the upload is a task or part of run; the aborted one stays in the
// batch's previous jobs.
func TestResumeReplacesAbandonedJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	for _, how := range []string{"task", "run"} {
		t.Run(how, func(t *testing.T) {
			runID := "ab-" + how
			for _, step := range []string{"authenticate", "extract"} {
				if code, _, stderr := h.main("task", step, "--table", "PRODUCTS", "--run-id", runID, "--conf", `{"batch_size": 100}`); code != 0 {
					t.Fatalf("%s: exit %d\n%s", step, code, stderr)
				}
			}
			aborted := h.abandonBatch(runID, 2)
			var code int
			var stderr string
			if how == "task" {
				code, _, stderr = h.main("task", "upload", "--run-id", runID)
			} else {
				code, _, stderr = h.main("run", "--run-id", runID)
			}
			if code != 0 {
				t.Fatalf("resumed upload: exit %d\n%s", code, stderr)
			}
			b := h.manifest(runID).Batch(2)
			if b.JobID == aborted || b.JobState != "JobComplete" || len(b.PreviousJobs) != 1 || b.PreviousJobs[0] != aborted {
				t.Errorf("batch 2 after resume: %+v, want a new completed job and %s in its previous jobs", b, aborted)
			}
		})
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 300 {
		t.Errorf("org holds %d products, want 300", n)
	}
}
