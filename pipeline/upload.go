package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
)

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
	for attempt := 0; ; attempt++ {
		if _, err := r.loadOnce(ctx, queue); err != nil {
			return err
		}
		if err := stopped(ctx, "upload"); err != nil {
			return err
		}
		// A job aborted because Salesforce refused its data for good (a 4xx
		// answer other than 429) would be refused again: not redone here.
		redo := slices.DeleteFunc(r.replaceAbandonedJobs(), r.refusedForGood)
		if len(redo) == 0 || attempt >= 2 {
			break
		}
		q := make(chan int, len(redo))
		for _, idx := range redo {
			q <- idx
		}
		close(q)
		queue = q
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
			// The list's records leave externalIdFieldName out (api doc
			// 2.9); the job's own info has it.
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
