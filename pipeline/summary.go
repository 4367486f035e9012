package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
)

// Summary describes a run for people (the table at the end) and for
// orchestrators (--json, summary.json).
type Summary struct {
	RunID     string `json:"run_id"`
	Table     string `json:"table"`
	Object    string `json:"sf_object"`
	Operation string `json:"operation"`
	// Outcome is "succeeded" (every record succeeded), "no rows" (the
	// source returned none: nothing loaded, the tracker left as it was), "partial" (finished,
	// some records failed or were unprocessed), "failed" or "interrupted".
	Outcome string `json:"outcome"`
	// TrackerStatus is the status written to the tracker record ("" when
	// update-status has not run).
	TrackerStatus string `json:"tracker_status"`
	TrackerRef    string `json:"tracker_ref"`
	Totals
	// RetryRounds counts the `run --retry-failed` rounds of the run.
	RetryRounds int `json:"retry_rounds,omitempty"`
	// Batch is the extracted batch of a mapped upload (`task upload
	// --batch N`); the totals and files are then that batch's (with its
	// follow-ups) only.
	Batch int `json:"batch,omitempty"`
	// UploadBatches lists, once extraction is done, the extracted batches
	// with rows to upload: what an orchestrator maps `task upload --batch`
	// over.
	UploadBatches []int `json:"upload_batches,omitempty"`
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
	// FailedFile and UnprocessedFile hold all of the table's failed and
	// unprocessed records in one file each (written with summary.json;
	// "" when there are none).
	FailedFile      string `json:"failed_file,omitempty"`
	UnprocessedFile string `json:"unprocessed_file,omitempty"`
	// FailureReasons groups the failed records by Salesforce's error code,
	// most frequent first.
	FailureReasons []FailureReason `json:"failure_reasons"`
	Warnings       []string        `json:"warnings"`
	// Window is how many jobs this invocation kept in flight in the org
	// and why it changed (nil when it uploaded nothing).
	Window *WindowSummary `json:"jobs_in_flight,omitempty"`
	// PossiblyOpenJobs, when set, counts jobs Salesforce may hold for this
	// run whose ids the run never received (see Manifest.PossiblyOpenJobs).
	PossiblyOpenJobs *PossiblyOpenJobs `json:"possibly_open_jobs,omitempty"`
	Error            string            `json:"error,omitempty"`
	ExitCode         int               `json:"exit_code"`
}

// WindowSummary is the window of jobs in flight: its maximum, its limit
// at the end and every change with its reason (the last 200).
type WindowSummary struct {
	Max     int                       `json:"max"`
	Final   int                       `json:"final"`
	Changes []salesforce.WindowChange `json:"changes"`
}

// PossiblyOpenJobs says how many jobs on Object Salesforce may have
// created for the run between From and To without the run learning their
// ids: a lost answer to "create job", or a process that ended before it
// recorded the id. They hold no data (data goes only to recorded jobs),
// sfmigrate never touches them, and Salesforce removes them when they
// expire.
type PossiblyOpenJobs struct {
	Count  int       `json:"count"`
	Object string    `json:"sf_object"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// String says it in one line for people.
func (p *PossiblyOpenJobs) String() string {
	return fmt.Sprintf("Salesforce may hold %d empty Open %s job(s) created between %s and %s whose ids were never received "+
		"(lost answer or interrupted run); they hold no data, are left alone and expire by themselves",
		p.Count, p.Object, p.From.UTC().Format(time.RFC3339), p.To.UTC().Format(time.RFC3339))
}

func possiblyOpen(m *Manifest, object string) *PossiblyOpenJobs {
	if len(m.PossiblyOpenJobs) == 0 {
		return nil
	}
	p := &PossiblyOpenJobs{Count: len(m.PossiblyOpenJobs), Object: object, From: m.PossiblyOpenJobs[0].From, To: m.PossiblyOpenJobs[0].To}
	for _, j := range m.PossiblyOpenJobs[1:] {
		if j.From.Before(p.From) {
			p.From = j.From
		}
		if j.To.After(p.To) {
			p.To = j.To
		}
	}
	return p
}

// Summarize builds the summary of the run as the manifest says now.
func (r *Runner) Summarize(runErr error) *Summary {
	m := r.store.ownSnapshot() // a mapped upload reports its own batch; the others are other processes'
	var uploadBatches []int
	if r.store.MappedBatch() == 0 && m.Extract.Done {
		uploadBatches = UploadBatches(m)
	}
	s := &Summary{Batch: r.store.MappedBatch(), UploadBatches: uploadBatches,
		RunID: r.runID, Table: r.settings.Table, Object: r.settings.SFObject, Operation: r.settings.Operation,
		TrackerStatus: m.Tracker.Status, TrackerRef: r.settings.StatusRef, Totals: m.Totals(),
		RetryRounds: m.RetryRounds, Steps: map[string]string{}, StartedAt: m.CreatedAt, Manifest: r.ManifestPath(), ResultsDir: r.logsDir,
		FailedFiles: []string{}, UnprocessedFiles: []string{}, RejectedFiles: []string{}, Warnings: []string{}, FailureReasons: []FailureReason{},
		PossiblyOpenJobs: possiblyOpen(m, r.settings.SFObject),
	}
	r.windowMu.Lock()
	if w := r.window; w != nil {
		changes, _ := w.Changes()
		s.Window = &WindowSummary{Max: r.settings.MaxJobsInFlight, Final: w.Limit(), Changes: changes}
	}
	r.windowMu.Unlock()
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
	s.FailureReasons = failureReasons(s.FailedFiles)
	// Absolute paths: the summary is read from other directories (Airflow's
	// XCom, another shell).
	s.Manifest, s.ResultsDir = absPath(s.Manifest), absPath(s.ResultsDir)
	for _, list := range [][]string{s.FailedFiles, s.UnprocessedFiles, s.RejectedFiles} {
		for i := range list {
			list[i] = absPath(list[i])
		}
	}
	r.warnMu.Lock()
	s.Warnings = append(s.Warnings, r.warnings...)
	r.warnMu.Unlock()
	s.Seconds = r.opts.Now().Sub(r.started).Seconds()
	if s.Seconds > 0 {
		s.RowsPerSecond = float64(max(s.Processed-r.processedBefore, 0)) / s.Seconds
	}
	s.Outcome, s.ExitCode = Outcome(runErr)
	switch {
	case runErr == nil && m.StepDone(StepUpdateStatus) && noRows(m):
		s.Outcome = OutcomeNoRows
	case runErr == nil && !m.StepDone(StepUpdateStatus):
		s.Outcome = "step done"
	}
	if runErr != nil {
		s.Error = runErr.Error()
	}
	if _, err := os.Stat(filepath.Join(r.logsDir, "summary.json")); err == nil {
		s.SummaryFile = absPath(filepath.Join(r.logsDir, "summary.json"))
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
	r.removeEmptyResults()
	if p, err := mergeTableResults(r.logsDir, r.settings.Table, ResultFailed, s.FailedFiles); err == nil && p != "" {
		s.FailedFile = absPath(p)
	}
	if p, err := mergeTableResults(r.logsDir, r.settings.Table, ResultUnprocessed, s.UnprocessedFiles); err == nil && p != "" {
		s.UnprocessedFile = absPath(p)
	}
	s.SummaryFile = absPath(filepath.Join(r.logsDir, "summary.json"))
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
	if r.store.MappedBatch() != 0 {
		return s, err // summary.json is the run's, written by its later steps
	}
	if s.SummaryFile != "" || err == nil && s.Steps[StepCollectResults] == StateDone {
		if werr := r.writeSummaryOf(s); werr != nil && err == nil {
			err = werr
		}
	}
	return s, err
}
