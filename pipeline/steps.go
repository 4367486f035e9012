package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/salesforce"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// extract is the extract step: it writes the batch files that are not
// written yet, continuing after the last batch in the manifest. feed, when
// not nil, is called with each new batch as soon as it is recorded (run
// uses it to upload while extraction goes on; it may block).
func (r *Runner) extract(ctx context.Context, feed func(ctx context.Context, idx int) error) error {
	m := r.store.Snapshot()
	if m.Extract.Done {
		return nil
	}
	s := r.settings
	start := r.extractStart(m)
	fields, err := r.targetFields(m)
	if err != nil {
		return err
	}
	src, err := r.openSource(ctx)
	if err != nil {
		return err
	}
	tc := s.TableConfig
	t := extract.Table{Name: s.Table, Query: tc.Query, From: tc.Table, OrderBy: tc.OrderBy, SourceTimeZone: tc.Location(), Fields: fields}
	if tc.Nulls == "clear" {
		t.NullAs = extract.NullClear
	}
	rejectedBefore := m.Totals().Rejected
	maxRejected := int64(-1)
	if s.MaxRejectedRows >= 0 {
		if rejectedBefore > s.MaxRejectedRows {
			return r.rejectLimitError(rejectedBefore, nil)
		}
		maxRejected = s.MaxRejectedRows - rejectedBefore
	}
	_, err = src.Extract(ctx, t, extract.Options{
		Dir:         filepath.Join(r.store.Dir(), "batches"),
		BatchSize:   s.BatchSize,
		MaxBytes:    r.opts.MaxBatchBytes, // 0: extract.DefaultMaxBytes, under the per-job upload limit
		Start:       start,
		RejectDir:   r.logsDir,
		MaxRejected: maxRejected,
		OnBatch: func(ctx context.Context, b extract.Batch) error {
			if err := r.recordExtracted(b); err != nil {
				return err
			}
			if feed != nil && b.Rows > 0 {
				return feed(ctx, b.Index) // to the upload, when run overlaps them
			}
			return nil
		},
		OnRows: func(n int64) { r.report.Report(Event{Kind: EventRows, Rows: n}) },
	})
	var limit *extract.RejectLimitError
	if errors.As(err, &limit) {
		return r.rejectLimitError(rejectedBefore+limit.Rejected, limit.Last)
	}
	if err != nil {
		return err // extract's messages name the table (and row, column, field)
	}
	var total int64
	if err := r.store.Update(func(m *Manifest) error {
		m.Extract.Done = true
		m.Extract.Rows = sumRows(m)
		total = m.Totals().Rows
		return nil
	}); err != nil {
		return err
	}
	if total == 0 {
		r.warn(fmt.Sprintf("the query for table %s returned no rows (from batch %d on): nothing to upload", s.Table, s.StartBatch))
	}
	return nil
}

// extractStart is where extraction starts: at start_batch, or after the
// last batch an earlier attempt wrote.
func (r *Runner) extractStart(m *Manifest) extract.Position {
	s := r.settings
	last := m.LastExtracted()
	if last == nil {
		return extract.Position{BatchIndex: s.StartBatch, Row: int64(s.StartBatch-1) * int64(s.BatchSize)}
	}
	start := extract.Position{BatchIndex: last.Index + 1, Row: last.FirstRow + last.Rows + last.Rejected, AfterKey: last.LastKey}
	r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("resuming extraction at batch %d (row %d); %d batches were written before",
		start.BatchIndex, start.Row, m.Totals().Batches)})
	return start
}

// recordExtracted records a batch file extraction has written, before it
// is handed on: a batch the manifest does not hold is never uploaded.
func (r *Runner) recordExtracted(b extract.Batch) error {
	rel := ""
	if b.Path != "" {
		var err error
		if rel, err = filepath.Rel(r.store.Dir(), b.Path); err != nil {
			rel = b.Path
		}
	}
	if err := r.store.Update(func(m *Manifest) error {
		bs := &BatchState{Index: b.Index, File: rel, Rows: b.Rows, Bytes: b.Bytes, SHA256: b.SHA256, FirstRow: b.FirstRow, LastKey: b.LastKey,
			Rejected: b.Rejected, RejectedFile: b.RejectedPath, Truncated: b.Truncated}
		if old := m.Batch(b.Index); old != nil {
			if old.JobID != "" {
				return fmt.Errorf("batch %d was extracted again although job %s exists for it", b.Index, old.JobID)
			}
			*old = *bs
		} else {
			m.Batches = append(m.Batches, bs)
		}
		m.Extract.Rows = sumRows(m)
		return nil
	}); err != nil {
		return fmt.Errorf("record batch %d: %w", b.Index, err)
	}
	r.wroteHere.Store(b.Index, true)
	r.report.Report(Event{Kind: EventBatchExtracted, Batch: b.Index, Rows: b.Rows, Bytes: b.Bytes, Path: b.Path})
	if b.Rejected > 0 {
		r.report.Report(Event{Kind: EventRejected, Batch: b.Index, Rows: b.Rejected, Path: b.RejectedPath})
	}
	return nil
}

// targetFields pairs the mapping with the field types and lengths the
// authenticate step recorded from describe, so that values are written in
// the form each field needs and over-long text fails before any upload.
func (r *Runner) targetFields(m *Manifest) ([]extract.Field, error) {
	s := r.settings
	tc := s.TableConfig
	if m.Target == nil {
		return nil, &OrderError{Step: StepExtract, Needs: StepAuthenticate, RunID: r.runID,
			What: "extract writes each value in the form its Salesforce field needs, and the field types come from describing " + s.SFObject}
	}
	same := strings.EqualFold(m.Target.Object, s.SFObject) && len(m.Target.Fields) == len(tc.Fields)
	for i := 0; same && i < len(tc.Fields); i++ {
		same = m.Target.Fields[i].Column == tc.Fields[i].Column && strings.EqualFold(m.Target.Fields[i].Name, tc.Fields[i].Name)
	}
	if !same {
		return nil, &ConfigError{Setting: "tables." + s.Table + ".fields", Source: r.tablesSource(),
			Problem: fmt.Sprintf("sf_object or the field mapping changed since the authenticate step of run %s described %s", r.runID, m.Target.Object),
			Fix:     fmt.Sprintf("run 'sfmigrate task authenticate --run-id %s' again with the settings extract uses", r.runID)}
	}
	fields := make([]extract.Field, len(tc.Fields))
	for i, f := range tc.Fields {
		tf := m.Target.Fields[i]
		fields[i] = extract.Field{Column: f.Column, Name: f.Name, Type: tf.Type, Length: tf.Length, Truncate: tc.Truncate.Applies(f.Column)}
	}
	return fields, nil
}

// extractAndUpload runs extract and upload together: each batch is queued
// for upload as soon as its file is complete. Extraction waits when uploads
// fall behind, so the batch files on disk stay bounded: max_jobs_in_flight
// in the org (uploading or processing), one taken by the loader waiting
// for an upload slot, one in the feeder, one in the queue and the one just
// written (max_jobs_in_flight+4; TestBoundedFilesWaiting).
// Extraction is far faster than Salesforce's processing, so a longer queue
// would only hold more files, not speed anything up.
func (r *Runner) extractAndUpload(ctx context.Context) error {
	m := r.store.Snapshot()
	queue := make(chan int, 1)
	// The collector below keeps ctx: results of jobs that finished are
	// worth saving even when extraction failed.
	stepsCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g, gctx := errgroup.WithContext(stepsCtx)
	g.Go(func() (err error) {
		defer func() {
			// Cancel before the upload sees the queue end, so that it
			// knows extraction failed rather than finished.
			if err != nil {
				cancel(err)
			}
			close(queue)
		}()
		// Batches written by an earlier attempt whose job did not finish
		// (or was abandoned: upload gives it a new one) go first.
		for _, b := range m.Batches {
			if !b.NeedsLoad() {
				continue
			}
			select {
			case queue <- b.Index:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		if m.StepDone(StepExtract) {
			return nil
		}
		return r.step(gctx, StepExtract, func(ctx context.Context) error {
			return r.extract(ctx, func(ctx context.Context, idx int) error {
				select {
				case queue <- idx:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		})
	})
	// Results are fetched as soon as each job finishes, and the batch file
	// removed, so disk use stays bounded by the files waiting and in flight.
	r.collector = newCollector(ctx, r)
	g.Go(func() error {
		return r.step(gctx, StepUpload, func(ctx context.Context) error { return r.upload(ctx, queue) })
	})
	err := g.Wait()
	r.collector.close()
	r.collector = nil
	return err
}

// collector downloads the results of finished jobs while the upload goes
// on, with a fixed number of workers (parallel). add blocks while every
// worker is busy and the queue is full: the loaders wait (back-pressure)
// rather than goroutines piling up. Failures are left for the
// collect-results step, which retries them.
type collector struct {
	ctx     context.Context
	r       *Runner
	queue   chan collectJob
	pending sync.WaitGroup // jobs added and not yet handled
	workers sync.WaitGroup
	stop    sync.Once
}

type collectJob struct {
	idx   int
	jobID string
	then  func(saved bool) // if set, called after the download (saved: it succeeded)
}

func newCollector(ctx context.Context, r *Runner) *collector {
	n := max(r.settings.Parallel, 1)
	c := &collector{ctx: ctx, r: r, queue: make(chan collectJob, n)}
	for range n {
		c.workers.Go(c.work)
	}
	return c
}

func (c *collector) work() {
	for j := range c.queue {
		saved := false
		if c.ctx.Err() == nil {
			if err := os.MkdirAll(c.r.logsDir, 0o755); err == nil { // else collect-results reports it
				// collect-results retries what failed here and reports it.
				saved = c.r.saveResults(c.ctx, j.idx, j.jobID) == nil
			}
		}
		if j.then != nil {
			j.then(saved)
		}
		c.pending.Done()
	}
}

// add queues batch idx's results for download; then, if set, is called
// once afterwards, also when the download does not happen.
func (c *collector) add(idx int, jobID string, then func(saved bool)) {
	c.pending.Add(1)
	select {
	case c.queue <- collectJob{idx, jobID, then}:
	case <-c.ctx.Done():
		if then != nil {
			then(false)
		}
		c.pending.Done()
	}
}

// wait returns once every download added so far is done.
func (c *collector) wait() { c.pending.Wait() }

// close stops the workers after the downloads added so far, and waits for them.
func (c *collector) close() {
	c.stop.Do(func() { close(c.queue) })
	c.workers.Wait()
}

// collectResults is the collect-results step: it saves the successful,
// failed and unprocessed records of every finished job under the logs dir
// and removes batch files that are no longer needed.
func (r *Runner) collectResults(ctx context.Context) error {
	if err := os.MkdirAll(r.logsDir, 0o755); err != nil {
		return fmt.Errorf("create logs directory: %w", err)
	}
	if _, err := r.newClient(); err != nil {
		return err
	}
	m := r.store.Snapshot()
	for _, b := range m.Batches {
		if !b.Terminal() {
			return fmt.Errorf("batch %d has no finished job (state %q): run the upload step first", b.Index, b.JobState)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.settings.Parallel)
	for _, b := range m.Batches {
		if gctx.Err() != nil {
			break
		}
		if b.Empty() {
			continue // every row rejected: no job, no results
		}
		idx, jobID := b.Index, b.JobID
		g.Go(func() error { return r.saveResults(gctx, idx, jobID) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := r.finalResults(); err != nil {
		return err
	}
	return r.writeSummary()
}

// saveResults downloads the result sets of batch idx's finished job that
// are not saved yet and removes the batch file once it is no longer needed
// (its job completed and every result set is saved), then records all of
// it in one manifest write: a manifest write costs more the more batches a
// run has, so each batch's results take one, not one per result set and
// one for the file.
func (r *Runner) saveResults(ctx context.Context, idx int, jobID string) error {
	var missing []string
	var name string
	var clean, complete bool
	r.store.View(func(m *Manifest) {
		if b := m.Batch(idx); b != nil {
			name = r.batchName(b)
			complete = b.JobState == string(salesforce.JobComplete)
			clean = complete && b.Failed == 0
			for _, kind := range ResultKinds {
				if b.Results[kind] == nil {
					missing = append(missing, kind)
				}
			}
		}
	})
	got := map[string]*ResultFile{}
	var derr error
	for _, kind := range missing {
		path := filepath.Join(r.logsDir, fmt.Sprintf("%s_%s.csv", name, kind))
		// A job that completed has no unprocessed rows, and one that
		// completed without failures no failed rows (docs/salesforce-api.md
		// §3.1): two API calls a job saved, nothing to download. The
		// record says 0 rows, and no file is written (empty ones are not
		// kept anyway).
		if kind == ResultUnprocessed && complete || kind == ResultFailed && clean {
			got[kind] = &ResultFile{Path: path, Rows: 0}
			continue
		}
		if derr = r.downloadResults(ctx, idx, jobID, kind, path, got); derr != nil {
			break
		}
	}
	// The file goes before the manifest says so: should the process die in
	// between, the next run downloads the results again and finds the file
	// gone, which is all right for a job that completed.
	removed := derr == nil && !r.opts.KeepBatches && r.removeFinishedFile(idx)
	if len(got) == 0 && !removed {
		return derr
	}
	err := r.store.Update(func(m *Manifest) error {
		b := m.Batch(idx)
		if b == nil {
			return fmt.Errorf("batch %d vanished from the manifest", idx)
		}
		if b.Results == nil {
			b.Results = map[string]*ResultFile{}
		}
		maps.Copy(b.Results, got)
		b.FileRemoved = b.FileRemoved || removed
		return nil
	})
	if err != nil {
		return errors.Join(derr, err)
	}
	for _, kind := range ResultKinds {
		if f := got[kind]; f != nil {
			r.report.Report(Event{Kind: EventResults, Batch: idx, JobID: jobID, State: kind, Rows: f.Rows, Path: f.Path})
		}
	}
	return derr
}

// downloadResults saves one result set of batch idx's job to path and
// notes it in got.
func (r *Runner) downloadResults(ctx context.Context, idx int, jobID, kind, path string, got map[string]*ResultFile) error {
	if err := safefile.RefuseLink(path); err != nil {
		return fmt.Errorf("batch %d: save %s results: %w", idx, kind, err)
	}
	rows, err := r.client.DownloadResults(ctx, jobID, resultKind(kind), path)
	if err != nil {
		return fmt.Errorf("batch %d: %w", idx, err) // the client's message names the job, the result set and the file
	}
	got[kind] = &ResultFile{Path: path, Rows: rows}
	return nil
}

// removeFinishedFile removes batch idx's file once its job completed and
// the file is no longer needed, and reports whether it did.
func (r *Runner) removeFinishedFile(idx int) bool {
	var path string
	r.store.View(func(m *Manifest) {
		// A batch with failed rows keeps its file until settle has taken
		// the rows to send again from it.
		if b := m.Batch(idx); b != nil && !b.FileRemoved && b.JobState == string(salesforce.JobComplete) && (b.Failed == 0 || b.Settled) {
			path = r.batchPath(b)
		}
	})
	if path == "" {
		return false
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.warn(fmt.Sprintf("cannot remove finished batch file %s: %v", path, err))
		return false
	}
	return true
}

// resultKind maps a result file kind to the API's result set.
func resultKind(kind string) salesforce.ResultKind {
	switch kind {
	case ResultSuccessful:
		return salesforce.ResultSuccessful
	case ResultFailed:
		return salesforce.ResultFailed
	}
	return salesforce.ResultUnprocessed
}

// updateStatus is the update-status step: "Uploaded" when every extracted
// record succeeded, "In Progress" otherwise, written with updateOnly=true
// as the original DAG did. With some records not succeeding it returns a
// *PartialError (exit code 3).
func (r *Runner) updateStatus(ctx context.Context) error {
	m := r.store.Snapshot()
	t := m.Totals()
	for _, b := range m.Batches {
		if len(b.Results) < len(ResultKinds) && !b.Empty() {
			return fmt.Errorf("batch %d has no collected results: run the collect-results step first", b.Index)
		}
	}
	if m.Extract.Done && t.Rows == 0 {
		// Nothing was loaded: "Uploaded" would claim a migration that did
		// not happen. The tracker keeps the status authenticate gave it.
		r.warn(fmt.Sprintf("no rows: the source returned no rows for table %s from batch %d on; the tracker %s stays %q",
			r.settings.Table, r.settings.StartBatch, r.settings.StatusRef, m.Tracker.Status))
		return r.writeSummary()
	}
	status := StatusInProgress
	if m.Extract.Done && t.Failed == 0 && t.Unprocessed == 0 && t.JobsFailed == 0 && t.Rejected == 0 && t.Successful == t.Rows {
		status = StatusUploaded
	}
	if _, err := r.newClient(); err != nil {
		return err
	}
	ref := r.settings.StatusRef
	tr := r.settings.Tracker
	fields := map[string]any{}
	// Rows counts every source row read, rejected ones included.
	if tr.RecordsTotalField != "" {
		fields[tr.RecordsTotalField] = t.Rows
	}
	if tr.RecordsFailedField != "" {
		fields[tr.RecordsFailedField] = t.Rows - t.Successful
	}
	if tr.RunIDField != "" {
		fields[tr.RunIDField] = r.runID
	}
	if tr.MessageField != "" {
		msg := fmt.Sprintf("sfmigrate run %s: %d of %d records succeeded, %d failed, %d unprocessed",
			r.runID, t.Successful, t.Rows, t.Failed, t.Unprocessed)
		if t.Rejected > 0 {
			msg += fmt.Sprintf(", %d rejected before upload", t.Rejected)
		}
		fields[tr.MessageField] = msg
	}
	// One PATCH with updateOnly=true: the status and the detail fields
	// land together or not at all, and the record is never created here.
	if err := r.client.UpdateStatusFields(ctx, ref, status, fields); err != nil {
		return fmt.Errorf("tracker status %q: %w", status, err) // the client's message names the record
	}
	if err := r.store.Update(func(m *Manifest) error {
		m.Tracker.Status, m.Tracker.UpdatedAt = status, r.opts.Now().UTC()
		return nil
	}); err != nil {
		return err
	}
	r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("tracker %s %s set to %q", tr.SFObject, ref, status)})
	if err := r.writeSummary(); err != nil {
		return err
	}
	if status != StatusUploaded {
		return r.outcome()
	}
	return nil
}
