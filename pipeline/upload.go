package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
		if b.NeedsLoad() && r.store.Owns(b) {
			queue <- b.Index
		}
	}
	close(queue)
	return r.upload(ctx, queue)
}

// Batch-level retries: a batch whose job could not be carried to a final
// state for a transient reason (salesforce.Classify) after the client's own
// retries is loaded again in further rounds of the same upload, up to
// uploadRounds rounds in all, the n-th retry roundDelay·2ⁿ⁻¹ after the
// previous round ended (2s, 4s, 8s).
const (
	uploadRounds = 4
	roundDelay   = 2 * time.Second
)

// upload loads the queued batches through the client's parallel loader and
// records every job as soon as it exists, before any data goes to it. A
// batch whose job id is in the manifest is followed, never given a second
// job, unless that job never processed a record (aborted, or abandoned by
// the loader after a failed upload): that one is recorded in PreviousJobs
// and replaced. A job the manifest does not record is never adopted,
// closed or aborted. Batches left unfinished for a transient reason are
// loaded again in further rounds (uploadRounds).
func (r *Runner) upload(ctx context.Context, queue <-chan int) error {
	if _, err := r.newClient(); err != nil {
		return err
	}
	if err := r.noteUnrecordedCreates(); err != nil {
		return err
	}
	r.replaceAbandonedJobs()
	for round := 1; ; {
		if _, err := r.loadOnce(ctx, queue); err != nil {
			return err
		}
		if err := stopped(ctx, "upload"); err != nil {
			return err
		}
		if err := r.recordError(); err != nil {
			return err
		}
		redo := r.batchesToRedo()
		if round >= uploadRounds {
			redo = nil
		}
		// Rows that failed for a transient reason go into follow-up jobs
		// (followup.go); their attempt numbers bound how often.
		followUps, err := r.planFollowUps(ctx)
		if err != nil {
			return err
		}
		if len(redo)+len(followUps) == 0 {
			break
		}
		var wait time.Duration
		if len(redo) > 0 {
			wait = roundDelay << (round - 1)
			round++
			r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("%d batches did not reach a final state for a passing reason; loading them again in %s (round %d of %d)",
				len(redo), wait, round, uploadRounds)})
		}
		if len(followUps) > 0 {
			wait = max(wait, r.followUpDelay(r.store.Snapshot().Batch(followUps[0]).Attempt))
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return stopped(ctx, "upload")
		}
		queue = queueOf(append(redo, followUps...))
	}
	return r.checkUploaded()
}

// checkUploaded says which batch, if any, has no finished job.
func (r *Runner) checkUploaded() error {
	m := r.store.Snapshot()
	if !m.Extract.Done {
		return errors.New("upload finished before extraction: the extract step did not complete")
	}
	for _, b := range m.Batches {
		if !b.Terminal() && r.store.Owns(b) {
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

// queueOf makes a closed queue of the given batches.
func queueOf(idx []int) <-chan int {
	q := make(chan int, len(idx))
	for _, i := range idx {
		q <- i
	}
	close(q)
	return q
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// noteUnrecordedCreates runs before a process starts loading: a batch whose
// job creation was started (HandedAt) but no job recorded, and not settled
// since, belongs to a process that ended in between. Salesforce may hold a
// job it created then; it got no data (data goes only to recorded jobs), so
// it is left alone and only listed for the summary. The batch gets a new
// job.
func (r *Runner) noteUnrecordedCreates() error {
	now := r.opts.Now().UTC()
	n := 0
	err := r.store.Update(func(m *Manifest) error {
		for _, b := range m.Batches {
			if b.JobID == "" && b.HandedAt != nil && !b.Terminal() && r.store.Owns(b) {
				m.notePossiblyOpen(b, now, "the process ended before the job id was recorded")
				n++
			}
		}
		return nil
	})
	if n > 0 {
		r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("%d batches had a job creation under way when the last attempt ended; "+
			"any job created then holds no data and is left alone (see the summary); they get new jobs", n)})
	}
	return err
}

// batchFailed notes how batch idx's last load attempt ended, for
// batchesToRedo and replaceAbandonedJobs.
func (r *Runner) batchFailed(idx int, err error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failClass == nil {
		r.failClass = map[int]salesforce.Class{}
	}
	r.failClass[idx] = salesforce.Classify(err)
}

// failedAs reports the class of batch idx's last load failure.
func (r *Runner) failedAs(idx int) salesforce.Class {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.failClass[idx]
}

// refusedForGood reports whether Salesforce refused batch idx's data with
// an answer that a new job would get again.
func (r *Runner) refusedForGood(idx int) bool {
	return r.failedAs(idx) == salesforce.ClassRefused
}

// recordError returns the first failure to record a job in the manifest;
// the run must stop then, as the manifest could not say what exists.
func (r *Runner) recordError() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.recordErr
}

func (r *Runner) setRecordError(err error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.recordErr == nil {
		r.recordErr = err
	}
}

// batchesToRedo lists the batches to load again in this run: those whose
// job was abandoned before it processed a record (unless Salesforce refused
// their data for good), and those left without a final state by a
// transient failure.
func (r *Runner) batchesToRedo() []int {
	redo := slices.DeleteFunc(r.replaceAbandonedJobs(), r.refusedForGood)
	m := r.store.Snapshot()
	for _, b := range m.Batches {
		if !b.Terminal() && r.store.Owns(b) && !slices.Contains(redo, b.Index) && r.failedAs(b.Index) == salesforce.ClassTransient {
			redo = append(redo, b.Index)
		}
	}
	slices.Sort(redo)
	return redo
}

// replaceAbandonedJobs moves the job of every batch whose job was aborted
// before processing any record to PreviousJobs, so the batch gets a new
// job. It returns those batches.
func (r *Runner) replaceAbandonedJobs() []int {
	var redo []int
	_ = r.store.Update(func(m *Manifest) error { // a failed write surfaces on the next Update
		for _, b := range m.Batches {
			if b.Abandoned() && r.store.Owns(b) {
				b.PreviousJobs = append(b.PreviousJobs, b.JobID)
				// ErrorMessage stays: why the job was given up, until the
				// next job of the batch says otherwise.
				b.JobID, b.JobState, b.Failed, b.HandedAt = "", "", 0, nil
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

// batchPaths maps the files handed to the loader to their batches.
type batchPaths struct {
	mu sync.Mutex
	m  map[string]int // guarded by mu
}

func (p *batchPaths) add(path string, idx int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]int{}
	}
	p.m[path] = idx
}

func (p *batchPaths) index(path string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	idx, ok := p.m[path]
	return idx, ok
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
	drained := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(drained)
		r.drainThenCancel(ctx, loadCtx, cancelLoad)
	})
	defer func() {
		// The watcher, once started, ends with loadCtx (cancelled by the
		// deferred cancelLoad, which runs first): wait for it.
		cancelLoad()
		if !stopWatch() {
			<-drained
		}
	}()

	var paths batchPaths
	files := make(chan salesforce.LoadFile)
	loadDone := make(chan struct{})
	var feedErr error
	sent := 0
	// Follow-ups join this load when the collector saves results as jobs
	// end (the run's upload; a step run alone plans them after the load).
	var st *followStream
	if r.collector != nil {
		st = newFollowStream()
		defer st.stop()
	}
	r.stream.Store(st)
	defer r.stream.Store(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(files)
		sent, feedErr = r.feed(ctx, queue, files, loadDone, &paths, st)
		if feedErr != nil {
			cancelLoad()
		}
	})
	on := func(path string, fn func(idx int) error) error {
		if idx, ok := paths.index(path); ok {
			return fn(idx)
		}
		return nil
	}
	window, err := r.jobWindow()
	if err != nil {
		return 0, err
	}
	_, err = r.client.LoadStream(loadCtx, spec, files, salesforce.LoadOptions{
		Parallel:     s.Parallel,
		Window:       window,
		OnCreateJob:  func(path string) error { return on(path, r.onCreateJob) },
		OnCreateLost: func(path string) { _ = on(path, r.onCreateLost) }, // onCreateLost has no error to give
		OnJobCreated: func(path, jobID string) error {
			return on(path, func(idx int) error { return r.onJobCreated(idx, jobID) })
		},
		OnJobDone: func(res salesforce.LoadResult) {
			_ = on(res.Path, func(idx int) error { r.onJobDone(idx, res); return nil }) // see onJobDone
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

// feed hands the batches from queue to the loader until the queue ends,
// ctx ends or the loader is done, and returns how many it handed over.
// With a follow-up stream (st), follow-ups planned while the load runs are
// handed over too, and the feed ends only when the queue has ended and
// the stream owes nothing (stream.go).
func (r *Runner) feed(ctx context.Context, queue <-chan int, files chan<- salesforce.LoadFile, loadDone <-chan struct{}, paths *batchPaths, st *followStream) (int, error) {
	sent := 0
	// send hands batch idx over; stop says the feed must end.
	send := func(idx int) (stop bool, err error) {
		lf, skip, err := r.loadFile(idx)
		if err != nil {
			return true, err
		}
		if skip {
			return false, nil
		}
		paths.add(lf.Path, idx)
		if st != nil {
			st.handed()
		}
		select {
		case files <- lf:
			sent++
			return false, nil
		case <-ctx.Done():
		case <-loadDone:
		}
		if st != nil {
			st.resolved() // never handed
		}
		return true, nil
	}
	var wake <-chan struct{}
	if st != nil {
		wake = st.wake
	}
	for {
		if queue == nil {
			// The queue has ended: only the stream can give more.
			if st == nil {
				return sent, nil
			}
			due, idle := st.take()
			for _, idx := range due {
				if stop, err := send(idx); stop {
					return sent, err
				}
			}
			if len(due) > 0 {
				continue
			}
			if idle {
				return sent, nil
			}
		}
		select {
		case idx, ok := <-queue:
			if !ok {
				queue = nil
				continue
			}
			if stop, err := send(idx); stop {
				return sent, err
			}
		case <-wake:
			due, _ := st.take()
			for _, idx := range due {
				if stop, err := send(idx); stop {
					return sent, err
				}
			}
		case <-ctx.Done():
			return sent, nil
		case <-loadDone:
			return sent, nil
		}
	}
}

// onCreateJob records that a job is about to be created for batch idx: from
// now on Salesforce may hold a job for it whose id the run might not learn.
func (r *Runner) onCreateJob(idx int) error {
	now := r.opts.Now().UTC()
	err := r.store.Update(func(m *Manifest) error {
		if b := m.Batch(idx); b != nil {
			b.HandedAt = &now
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("batch %d: record that its job is being created: %w", idx, err)
		r.setRecordError(err)
	}
	return err
}

// onCreateLost notes a create request for batch idx that got no answer:
// Salesforce may hold an empty job for it; the loader creates another.
func (r *Runner) onCreateLost(idx int) error {
	now := r.opts.Now().UTC()
	_ = r.store.Update(func(m *Manifest) error { // a failed write surfaces on the next Update
		if b := m.Batch(idx); b != nil && b.HandedAt != nil {
			m.notePossiblyOpen(b, now, "the answer to the create request was lost")
		}
		return nil
	})
	r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("batch %d: no answer to a job creation; "+
		"a job created then holds no data and is left alone (listed in the summary)", idx)})
	return nil
}

// onJobCreated records batch idx's new job before any data goes to it. A
// failed write means no upload to that job (the loader aborts it) and the
// run stops: the manifest must know every job that holds data.
func (r *Runner) onJobCreated(idx int, jobID string) error {
	if h := r.opts.BeforeRecordJob; h != nil {
		h(idx, jobID)
	}
	err := r.store.Update(func(m *Manifest) error {
		if b := m.Batch(idx); b != nil {
			if b.JobID != "" && b.JobID != jobID {
				// The loader abandoned (aborted) a job whose upload
				// failed, before it could process anything.
				b.PreviousJobs = append(b.PreviousJobs, b.JobID)
			}
			b.JobID, b.JobState = jobID, string(salesforce.JobOpen)
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("batch %d: record job %s in the manifest: %w", idx, jobID, err)
		r.setRecordError(err)
		return err
	}
	r.report.Report(Event{Kind: EventJobCreated, Batch: idx, JobID: jobID})
	return nil
}

// onJobDone records the outcome of batch idx's load. A failed manifest
// write is not reported here: it surfaces on the next Update.
func (r *Runner) onJobDone(idx int, res salesforce.LoadResult) {
	msg := res.ErrorMessage
	if res.Err != nil && msg == "" {
		msg = res.Err.Error()
	}
	_ = r.store.Update(func(m *Manifest) error {
		if b := m.Batch(idx); b != nil {
			if res.JobID != "" {
				b.JobID = res.JobID
			} else {
				// No job was created; lost answers were noted as they came.
				b.HandedAt = nil
			}
			if res.State != "" {
				b.JobState = string(res.State)
			}
			b.Processed, b.Failed, b.ErrorMessage = res.Processed, res.Failed, msg
		}
		return nil
	})
	r.batchFailed(idx, res.Err)
	r.report.Report(Event{Kind: EventJobDone, Batch: idx, JobID: res.JobID, State: string(res.State),
		Processed: res.Processed, Failed: res.Failed, Message: msg, Err: res.Err})
	st := r.stream.Load()
	if c := r.collector; c != nil && res.Err == nil && res.State.Terminal() && res.JobID != "" {
		var then func(saved bool)
		if st != nil {
			then = func(saved bool) { r.settleNow(c.ctx, idx, saved, st) }
		}
		c.add(idx, res.JobID, then)
		return
	}
	if st != nil {
		st.resolved()
	}
}

// loadFile describes batch idx for the loader; skip is true when its job
// already finished. A batch without a job must still have the file the
// manifest describes; a batch with one passes the time its creation was
// started, so the loader refuses a recorded job created before.
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
	// A file this process wrote moments ago was hashed as it was written;
	// one from an earlier process is read again to see it is unchanged.
	if _, fresh := r.wroteHere.Load(idx); b.JobID == "" && !fresh {
		sum, err := fileSHA256(path)
		if err != nil {
			return lf, false, fmt.Errorf("batch %d: file %s is missing or unreadable (%v); batch files must stay in place until uploaded (use the same --work-dir for every step)", idx, path, err)
		}
		if b.SHA256 != "" && sum != b.SHA256 {
			return lf, false, fmt.Errorf("batch %d: file %s changed since it was extracted (sha256 %s, manifest %s); start a new run", idx, path, sum, b.SHA256)
		}
	}
	lf = salesforce.LoadFile{Path: path, JobID: b.JobID, Rows: b.Rows}
	if b.JobID != "" && b.HandedAt != nil {
		lf.NotBefore = *b.HandedAt
	}
	return lf, false, nil
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
				if b.JobID != "" && b.JobState == string(salesforce.JobOpen) && r.store.Owns(b) {
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

// stepRounds bounds how often retrying runs a step in all.
const stepRounds = 3

// retrying runs an idempotent step (authenticate, collect-results,
// update-status: each repeats harmlessly what was done) again when it
// failed for a transient reason (salesforce.Classify), up to stepRounds
// times in all, roundDelay·2ⁿ⁻¹ apart (2s, 4s): a blip at the end of a
// long run must not fail it after every client retry of one call ran out.
func (r *Runner) retrying(name string, fn stepFunc) stepFunc {
	return func(ctx context.Context) error {
		for round := 1; ; round++ {
			err := fn(ctx)
			var ce interface{ ConfigError() bool }
			if err == nil || round >= stepRounds || ctx.Err() != nil || salesforce.Classify(err) != salesforce.ClassTransient ||
				errors.As(err, &ce) && ce.ConfigError() {
				return err
			}
			wait := roundDelay << (round - 1)
			r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("step %s failed for a passing reason (%v); running it again in %s (round %d of %d)",
				name, err, wait, round+1, stepRounds)})
			if err := sleepCtx(ctx, wait); err != nil {
				return stopped(ctx, name)
			}
		}
	}
}

// jobWindow is the run's window of jobs in flight, made on first use and
// kept across upload rounds: it starts at max_jobs_in_flight, halves under
// strain and grows back while jobs end cleanly (salesforce.Window); each
// change is reported.
func (r *Runner) jobWindow() (*salesforce.Window, error) {
	r.windowMu.Lock()
	defer r.windowMu.Unlock()
	if r.window != nil {
		return r.window, nil
	}
	s := r.settings
	// It starts at its maximum: a job waiting in the org's queue costs only
	// a poll now and then, and strain halves the window soon enough.
	w, err := salesforce.NewWindow(s.MaxJobsInFlight, s.MaxJobsInFlight)
	if err != nil {
		return nil, err
	}
	w.OnChange(func(c salesforce.WindowChange) {
		r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("jobs in flight: %d -> %d (%s)", c.From, c.To, c.Reason)})
	})
	r.window = w
	return w, nil
}
