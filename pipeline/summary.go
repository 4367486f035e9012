package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Summary describes a run for people (the table at the end) and for
// orchestrators (--json, summary.json).
type Summary struct {
	RunID     string `json:"run_id"`
	Table     string `json:"table"`
	Object    string `json:"sf_object"`
	Operation string `json:"operation"`
	// Outcome is "succeeded" (every record succeeded), "partial" (finished,
	// some records failed or were unprocessed), "failed" or "interrupted".
	Outcome string `json:"outcome"`
	// TrackerStatus is the status written to the tracker record ("" when
	// update-status has not run).
	TrackerStatus string `json:"tracker_status"`
	TrackerRef    string `json:"tracker_ref"`
	Totals
	// RetryRounds counts the `run --retry-failed` rounds of the run.
	RetryRounds int `json:"retry_rounds,omitempty"`
	// Steps maps each step to its state (running, done, failed).
	Steps map[string]string `json:"steps"`
	// Seconds is the time this invocation took; RowsPerSecond the records
	// processed by Salesforce in it.
	Seconds       float64   `json:"seconds"`
	RowsPerSecond float64   `json:"rows_per_second"`
	StartedAt     time.Time `json:"started_at"` // when the run was first started
	Manifest      string    `json:"manifest"`
	ResultsDir    string    `json:"results_dir"`
	SummaryFile   string    `json:"summary_file,omitempty"`
	// FailedFiles and UnprocessedFiles list the result files with rows.
	FailedFiles      []string `json:"failed_files"`
	UnprocessedFiles []string `json:"unprocessed_files"`
	// RejectedFiles lists the rejected files: rows whose values could not
	// be sent, never uploaded (Totals.Rejected counts them).
	RejectedFiles []string `json:"rejected_files"`
	Warnings      []string `json:"warnings"`
	Error         string   `json:"error,omitempty"`
	ExitCode      int      `json:"exit_code"`
}

// Summarize builds the summary of the run as the manifest says now.
func (r *Runner) Summarize(runErr error) *Summary {
	m := r.store.Snapshot()
	s := &Summary{
		RunID: r.runID, Table: r.settings.Table, Object: r.settings.SFObject, Operation: r.settings.Operation,
		TrackerStatus: m.Tracker.Status, TrackerRef: r.settings.StatusRef, Totals: m.Totals(),
		RetryRounds: m.RetryRounds, Steps: map[string]string{}, StartedAt: m.CreatedAt, Manifest: r.ManifestPath(), ResultsDir: r.logsDir,
		FailedFiles: []string{}, UnprocessedFiles: []string{}, RejectedFiles: []string{}, Warnings: []string{},
	}
	for name, st := range m.Steps {
		s.Steps[name] = st.State
	}
	if !m.StepDone(StepUpdateStatus) {
		s.TrackerStatus = ""
	}
	for _, b := range m.Batches {
		// A rejected file is listed while some of its rows were not found
		// again by a --retry-failed round.
		if b.Rejected > b.RetriedRejected && b.RejectedFile != "" {
			s.RejectedFiles = append(s.RejectedFiles, b.RejectedFile)
		}
		if b.IsFollowUp() {
			continue // its rows' final outcome is in its extracted batch's final files
		}
		results := b.Results
		if b.Final != nil {
			results = b.Final
		}
		if f := results[ResultFailed]; f != nil && f.Rows > 0 {
			s.FailedFiles = append(s.FailedFiles, f.Path)
		}
		if f := results[ResultUnprocessed]; f != nil && f.Rows > 0 {
			s.UnprocessedFiles = append(s.UnprocessedFiles, f.Path)
		}
	}
	sort.Strings(s.FailedFiles)
	sort.Strings(s.UnprocessedFiles)
	sort.Strings(s.RejectedFiles)
	r.warnMu.Lock()
	s.Warnings = append(s.Warnings, r.warnings...)
	r.warnMu.Unlock()
	s.Seconds = r.opts.Now().Sub(r.started).Seconds()
	if s.Seconds > 0 {
		s.RowsPerSecond = float64(s.Processed) / s.Seconds
	}
	s.Outcome, s.ExitCode = Outcome(runErr)
	if runErr == nil && !m.StepDone(StepUpdateStatus) {
		s.Outcome = "step done"
	}
	if runErr != nil {
		s.Error = runErr.Error()
	}
	if _, err := os.Stat(filepath.Join(r.logsDir, "summary.json")); err == nil {
		s.SummaryFile = filepath.Join(r.logsDir, "summary.json")
	}
	return s
}

// writeSummary writes <logs-dir>/<run-id>/summary.json.
func (r *Runner) writeSummary() error {
	return r.writeSummaryOf(r.Summarize(nil))
}

func (r *Runner) writeSummaryOf(s *Summary) error {
	if err := os.MkdirAll(r.logsDir, 0o755); err != nil {
		return fmt.Errorf("create logs directory: %w", err)
	}
	s.SummaryFile = filepath.Join(r.logsDir, "summary.json")
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	return writeFileAtomic(s.SummaryFile, append(data, '\n'))
}

// finish builds the summary for a step or run that ended with err, and
// rewrites summary.json when the run got as far as collecting results.
func (r *Runner) finish(err error) (*Summary, error) {
	s := r.Summarize(err)
	if s.SummaryFile != "" || err == nil && s.Steps[StepCollectResults] == StateDone {
		if werr := r.writeSummaryOf(s); werr != nil && err == nil {
			err = werr
		}
	}
	return s, err
}
