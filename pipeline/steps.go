package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/salesforce"
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
	start := extract.Position{BatchIndex: s.StartBatch, Row: int64(s.StartBatch-1) * int64(s.BatchSize)}
	if last := m.LastExtracted(); last != nil {
		n := m.Totals().Batches
		start = extract.Position{BatchIndex: last.Index + 1, Row: last.FirstRow + last.Rows + last.Rejected, AfterKey: last.LastKey}
		r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("resuming extraction at batch %d (row %d); %d batches were written before", start.BatchIndex, start.Row, n)})
	}
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
		Start:       start,
		RejectDir:   r.logsDir,
		MaxRejected: maxRejected,
		OnBatch: func(ctx context.Context, b extract.Batch) error {
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
			r.report.Report(Event{Kind: EventBatchExtracted, Batch: b.Index, Rows: b.Rows, Bytes: b.Bytes, Path: b.Path})
			if b.Rejected > 0 {
				r.report.Report(Event{Kind: EventRejected, Batch: b.Index, Rows: b.Rejected, Path: b.RejectedPath})
			}
			if feed != nil && b.Rows > 0 {
				return feed(ctx, b.Index)
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
// fall behind, so the batch files on disk stay bounded: `parallel` in
// flight, one taken by the loader waiting for a slot, one in the feeder,
// one in the queue and the one just written (parallel+4; TestBoundedFilesWaiting).
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
		// Batches written by an earlier attempt whose job did not finish go first.
		for _, b := range m.Batches {
			if b.Terminal() {
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
	r.collector.wait()
	r.collector = nil
	return err
}

// collector downloads the results of finished jobs while the upload goes
// on. Failures are left for the collect-results step, which retries them.
type collector struct {
	ctx context.Context
	r   *Runner
	sem chan struct{}
	wg  sync.WaitGroup
}

func newCollector(ctx context.Context, r *Runner) *collector {
	return &collector{ctx: ctx, r: r, sem: make(chan struct{}, r.settings.Parallel)}
}

// add fetches batch idx's results in the background.
func (c *collector) add(idx int, jobID string) {
	c.wg.Go(func() {
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		defer func() { <-c.sem }()
		if err := os.MkdirAll(c.r.logsDir, 0o755); err != nil {
			return // collect-results reports it
		}
		//nolint:errcheck // collect-results retries what failed here and reports it
		c.r.saveResults(c.ctx, idx, jobID)
	})
}

func (c *collector) wait() { c.wg.Wait() }

// uploadAll is the upload task: every extracted batch whose job has not
// finished is uploaded (or its existing job followed).
func (r *Runner) uploadAll(ctx context.Context) error {
	m := r.store.Snapshot()
	queue := make(chan int, len(m.Batches))
	for _, b := range m.Batches {
		if !b.Terminal() {
			queue <- b.Index
		}
	}
	close(queue)
	return r.upload(ctx, queue)
}

// upload loads the queued batches through the client's parallel loader and
// records every job as soon as it exists. A batch whose job id is in the
// manifest is followed, never given a second job; the one exception is a
// job that was aborted before it processed anything (an interrupted
// upload), which is recorded in PreviousJobs and replaced.
func (r *Runner) upload(ctx context.Context, queue <-chan int) error {
	if _, err := r.newClient(); err != nil {
		return err
	}
	if err := r.adoptUnrecordedJobs(ctx); err != nil {
		return err
	}
	r.replaceAbandonedJobs()
	for round := 0; ; round++ {
		if _, err := r.loadOnce(ctx, queue); err != nil {
			return err
		}
		if err := stopped(ctx, "upload"); err != nil {
			return err
		}
		// A job aborted because Salesforce refused its data for good (a 4xx
		// answer other than 429) would be refused again: not redone here.
		redo := slices.DeleteFunc(r.replaceAbandonedJobs(), r.refusedForGood)
		if round >= 2 {
			redo = nil
		}
		// Rows that failed for a transient reason go into follow-up jobs
		// (followup.go); the attempt numbers bound how often.
		followUps, err := r.planFollowUps(ctx)
		if err != nil {
			return err
		}
		if len(redo)+len(followUps) == 0 {
			break
		}
		if len(followUps) > 0 {
			if err := sleepCtx(ctx, r.followUpDelay(r.store.Snapshot().Batch(followUps[0]).Attempt)); err != nil {
				return stopped(ctx, "upload")
			}
		}
		queue = queueOf(append(redo, followUps...))
	}
	m := r.store.Snapshot()
	if !m.Extract.Done {
		return errors.New("upload finished before extraction: the extract step did not complete")
	}
	for _, b := range m.Batches {
		if !b.Terminal() {
			msg := b.ErrorMessage
			if msg == "" {
				msg = "job state " + b.JobState
			}
			if b.JobID == "" {
				return fmt.Errorf("batch %d got no job: %s", b.Index, msg)
			}
			return fmt.Errorf("batch %d (job %s) did not finish: %s", b.Index, b.JobID, msg)
		}
	}
	if len(m.Batches) == 0 {
		r.warn("no rows were extracted: upload skipped")
	}
	return nil
}

// adoptUnrecordedJobs finds jobs an earlier process created but could not
// record: it died between the create call's answer and the manifest write.
// The loader uploads only after the job is recorded, so such a job is Open
// and empty, and any of them can carry any batch: each batch that was handed
// to the loader without a recorded job adopts one (oldest first) instead of
// creating a second job. Jobs of other runs are told apart by object,
// operation, key field, state and creation time.
func (r *Runner) adoptUnrecordedJobs(ctx context.Context) error {
	m := r.store.Snapshot()
	var waiting []*BatchState
	known := map[string]bool{}
	var since time.Time
	for _, b := range m.Batches {
		if b.JobID != "" {
			known[b.JobID] = true
		}
		for _, p := range b.PreviousJobs {
			known[p] = true
		}
		if b.JobID == "" && b.HandedAt != nil && !b.Terminal() {
			waiting = append(waiting, b)
			if since.IsZero() || b.HandedAt.Before(since) {
				since = *b.HandedAt
			}
		}
	}
	if len(waiting) == 0 {
		return nil
	}
	if _, err := r.authenticateOnly(ctx); err != nil {
		return err
	}
	jobs, err := r.client.ListJobs(ctx)
	if err != nil {
		return fmt.Errorf("look for jobs created but not recorded by the interrupted run: %w", err)
	}
	s := r.settings
	// Allow for the clock difference between this machine and Salesforce.
	since = since.Add(-5 * time.Minute)
	var orphans []salesforce.JobInfo
	for _, j := range jobs {
		if known[j.ID] || j.State != salesforce.JobOpen || !strings.EqualFold(j.Object, s.SFObject) ||
			string(j.Operation) != s.Operation || (!j.CreatedDate.IsZero() && j.CreatedDate.Before(since)) {
			continue
		}
		if s.Operation == "upsert" && j.ExternalIDField == "" {
			// The list's records leave externalIdFieldName out (salesforce-api.md
			// §2.9); the job's own info has it.
			info, err := r.client.GetJob(ctx, j.ID)
			if err != nil {
				return fmt.Errorf("look at job %s, perhaps created but not recorded by the interrupted run: %w", j.ID, err)
			}
			j.ExternalIDField = info.ExternalIDField
		}
		if s.Operation == "upsert" && !strings.EqualFold(j.ExternalIDField, s.ExternalIDField) {
			continue
		}
		orphans = append(orphans, j)
	}
	if len(orphans) == 0 {
		return nil
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].CreatedDate.Before(orphans[j].CreatedDate) })
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].HandedAt.Before(*waiting[j].HandedAt) })
	n := min(len(orphans), len(waiting))
	if err := r.store.Update(func(m *Manifest) error {
		for i := 0; i < n; i++ {
			if b := m.Batch(waiting[i].Index); b != nil {
				b.JobID, b.JobState, b.Adopted = orphans[i].ID, string(salesforce.JobOpen), true
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("batch %d: adopting job %s, created by the interrupted run but not recorded", waiting[i].Index, orphans[i].ID)})
	}
	return nil
}

// refusedForGood reports whether Salesforce refused batch idx's data with
// an answer that a new job would get again.
func (r *Runner) refusedForGood(idx int) bool {
	r.refusedMu.Lock()
	defer r.refusedMu.Unlock()
	return r.refused[idx]
}

// replaceAbandonedJobs moves the job of every batch whose job was aborted
// before processing any record to PreviousJobs, so the batch gets a new
// job. It returns those batches.
func (r *Runner) replaceAbandonedJobs() []int {
	var redo []int
	_ = r.store.Update(func(m *Manifest) error { // a failed write surfaces on the next Update
		for _, b := range m.Batches {
			if b.JobID != "" && b.JobState == string(salesforce.JobAborted) && b.Processed == 0 {
				b.PreviousJobs = append(b.PreviousJobs, b.JobID)
				// ErrorMessage stays: why the job was given up, until the
				// next job of the batch says otherwise.
				b.JobID, b.JobState, b.Failed = "", "", 0
				redo = append(redo, b.Index)
			}
		}
		return nil
	})
	for _, idx := range redo {
		msg := fmt.Sprintf("batch %d: its job was aborted before processing any record; creating a new one", idx)
		if r.refusedForGood(idx) {
			msg = fmt.Sprintf("batch %d: its job was aborted: Salesforce refused the data (see below); not retried in this run", idx)
		}
		r.report.Report(Event{Kind: EventInfo, Message: msg})
	}
	return redo
}

// loadOnce runs one LoadStream over the batches from queue and returns how
// many files it was given.
func (r *Runner) loadOnce(ctx context.Context, queue <-chan int) (int, error) {
	s := r.settings
	spec := salesforce.JobSpec{Object: s.SFObject, Operation: salesforce.Operation(s.Operation)}
	if s.Operation == "upsert" {
		spec.ExternalIDField = s.ExternalIDField
	}
	// The loader gets a context that outlives ctx by up to StopGrace: on
	// Ctrl-C/SIGTERM no new file is started, uploads in flight are finished
	// (their jobs are recorded and followed by the next run) and only then,
	// or when the grace runs out, the loader is stopped.
	loadCtx, cancelLoad := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLoad()
	stopWatch := context.AfterFunc(ctx, func() { r.drainThenCancel(ctx, loadCtx, cancelLoad) })
	defer stopWatch()

	var mu sync.Mutex
	byPath := map[string]int{} // guarded by mu
	files := make(chan salesforce.LoadFile)
	loadDone := make(chan struct{})
	var feedErr error
	sent := 0
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(files)
		for {
			var idx int
			var ok bool
			select {
			case idx, ok = <-queue:
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			case <-loadDone:
				return
			}
			lf, skip, err := r.loadFile(idx)
			if err != nil {
				feedErr = err
				cancelLoad()
				return
			}
			if skip {
				continue
			}
			mu.Lock()
			byPath[lf.Path] = idx
			mu.Unlock()
			if lf.JobID == "" {
				now := r.opts.Now().UTC()
				if err := r.store.Update(func(m *Manifest) error {
					if b := m.Batch(idx); b != nil {
						b.HandedAt = &now
					}
					return nil
				}); err != nil {
					feedErr = err
					cancelLoad()
					return
				}
			}
			select {
			case files <- lf:
				sent++
			case <-ctx.Done():
				return
			case <-loadDone:
				return
			}
		}
	})
	indexOf := func(path string) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		idx, ok := byPath[path]
		return idx, ok
	}
	_, err := r.client.LoadStream(loadCtx, spec, files, salesforce.LoadOptions{
		Parallel: s.Parallel,
		OnJobCreated: func(path, jobID string) {
			idx, ok := indexOf(path)
			if !ok {
				return
			}
			if uerr := r.store.Update(func(m *Manifest) error {
				if b := m.Batch(idx); b != nil {
					if b.JobID != "" && b.JobID != jobID {
						// The loader abandoned (aborted) a job whose upload was
						// refused, before it could process anything.
						b.PreviousJobs = append(b.PreviousJobs, b.JobID)
					}
					b.JobID, b.JobState = jobID, string(salesforce.JobOpen)
				}
				return nil
			}); uerr != nil {
				r.warn(fmt.Sprintf("cannot record job %s of batch %d: %v", jobID, idx, uerr))
			}
			r.report.Report(Event{Kind: EventJobCreated, Batch: idx, JobID: jobID})
		},
		OnJobDone: func(res salesforce.LoadResult) {
			idx, ok := indexOf(res.Path)
			if !ok {
				return
			}
			msg := res.ErrorMessage
			if res.Err != nil && msg == "" {
				msg = res.Err.Error()
			}
			_ = r.store.Update(func(m *Manifest) error { // a failed write surfaces on the next Update
				if b := m.Batch(idx); b != nil {
					if res.JobID != "" {
						b.JobID = res.JobID
					}
					if res.State != "" {
						b.JobState = string(res.State)
					}
					b.Processed, b.Failed, b.ErrorMessage = res.Processed, res.Failed, msg
				}
				return nil
			})
			var apiErr *salesforce.APIError
			if errors.As(res.Err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests &&
				!apiErr.HasCode("REQUEST_LIMIT_EXCEEDED") && !apiErr.HasCode("UNABLE_TO_LOCK_ROW") {
				r.refusedMu.Lock()
				if r.refused == nil {
					r.refused = map[int]bool{}
				}
				r.refused[idx] = true
				r.refusedMu.Unlock()
			}
			r.report.Report(Event{Kind: EventJobDone, Batch: idx, JobID: res.JobID, State: string(res.State),
				Processed: res.Processed, Failed: res.Failed, Message: msg, Err: res.Err})
			if c := r.collector; c != nil && res.Err == nil && res.State.Terminal() && res.JobID != "" {
				c.add(idx, res.JobID)
			}
		},
	})
	close(loadDone)
	wg.Wait()
	if feedErr != nil {
		return sent, feedErr
	}
	if err != nil {
		if serr := stopped(ctx, "upload"); serr != nil {
			return sent, serr
		}
		return sent, fmt.Errorf("upload %s batches: %w", s.Table, err)
	}
	return sent, nil
}

// loadFile describes batch idx for the loader; skip is true when its job
// already finished. A batch without a job must still have the file the
// manifest describes.
func (r *Runner) loadFile(idx int) (lf salesforce.LoadFile, skip bool, err error) {
	var b BatchState
	found := false
	r.store.View(func(m *Manifest) {
		if p := m.Batch(idx); p != nil {
			b, found = *p, true
		}
	})
	if !found {
		return lf, false, fmt.Errorf("batch %d is not in the manifest", idx)
	}
	if b.Terminal() {
		return lf, true, nil
	}
	path := r.batchPath(&b)
	if b.JobID == "" {
		sum, err := fileSHA256(path)
		if err != nil {
			return lf, false, fmt.Errorf("batch %d: file %s is missing or unreadable (%v); batch files must stay in place until uploaded (use the same --work-dir for every step)", idx, path, err)
		}
		if b.SHA256 != "" && sum != b.SHA256 {
			return lf, false, fmt.Errorf("batch %d: file %s changed since it was extracted (sha256 %s, manifest %s); start a new run", idx, path, sum, b.SHA256)
		}
	}
	return salesforce.LoadFile{Path: path, JobID: b.JobID}, false, nil
}

// drainThenCancel runs when the run is interrupted. It waits until no job
// of this run is still Open (its data being uploaded), at most StopGrace,
// then stops the loader. Jobs past upload keep processing in Salesforce;
// their ids are in the manifest and the next run follows them.
func (r *Runner) drainThenCancel(ctx, loadCtx context.Context, cancel context.CancelFunc) {
	defer cancel()
	openJobs := func() []string {
		var open []string
		r.store.View(func(m *Manifest) {
			for _, b := range m.Batches {
				if b.JobID != "" && b.JobState == string(salesforce.JobOpen) {
					open = append(open, b.JobID)
				}
			}
		})
		return open
	}
	told := false
	deadline := time.NewTimer(r.opts.StopGrace)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-loadCtx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
		open := openJobs()
		if len(open) > 0 && !told {
			told = true
			why := "stopping"
			if !interrupted(ctx) {
				why = "a step failed"
			}
			r.report.Report(Event{Kind: EventWarning, Message: fmt.Sprintf("%s: finishing %d uploads in flight (at most %s)...", why, len(open), r.opts.StopGrace)})
		}
		stillOpen := false
		for _, id := range open {
			info, err := r.client.GetJob(loadCtx, id)
			if err != nil || info.State == salesforce.JobOpen {
				stillOpen = true
				break
			}
		}
		if !stillOpen {
			return
		}
	}
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
	r.store.View(func(m *Manifest) {
		if b := m.Batch(idx); b != nil {
			name = r.batchName(b)
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
		if err := refuseLink(path); err != nil {
			derr = fmt.Errorf("batch %d: save %s results: %w", idx, kind, err)
			break
		}
		rows, err := r.client.DownloadResults(ctx, jobID, resultKind(kind), path)
		if err != nil {
			derr = fmt.Errorf("batch %d: %w", idx, err) // the client's message names the job, the result set and the file
			break
		}
		got[kind] = &ResultFile{Path: path, Rows: rows}
	}
	// The file goes before the manifest says so: should the process die in
	// between, the next run downloads the results again and finds the file
	// gone, which is all right for a job that completed.
	removed := false
	if derr == nil && !r.opts.KeepBatches {
		var path string
		r.store.View(func(m *Manifest) {
			// A batch with failed rows keeps its file until settle has taken
			// the rows to send again from it.
			if b := m.Batch(idx); b != nil && !b.FileRemoved && b.JobState == string(salesforce.JobComplete) && (b.Failed == 0 || b.Settled) {
				path = r.batchPath(b)
			}
		})
		if path != "" {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				r.warn(fmt.Sprintf("cannot remove finished batch file %s: %v", path, err))
			} else {
				removed = true
			}
		}
	}
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

// queueOf is a closed queue holding idxs.
func queueOf(idxs []int) <-chan int {
	q := make(chan int, len(idxs))
	for _, idx := range idxs {
		q <- idx
	}
	close(q)
	return q
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
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
