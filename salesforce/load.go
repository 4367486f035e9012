package salesforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// DefaultParallel is how many jobs LoadFiles runs at once by default.
const DefaultParallel = 4

// cleanupTimeout bounds the abort a cancelled load still sends for its
// unclosed jobs.
const cleanupTimeout = 30 * time.Second

// LoadFile is one CSV file to load in its own ingest job.
type LoadFile struct {
	// Path is the CSV file (header of field API names, the spec's line
	// ending and delimiter, at most Config.MaxUploadBytes).
	Path string
	// JobID, when set, is a job that already exists for this file (one
	// recorded from OnJobCreated by an earlier run). The loader follows it;
	// it creates another job for the file only when the recorded one is
	// still Open and its upload fails in a transient way (the job is
	// aborted first: it never processed a row), as for a new file.
	JobID string
	// NotBefore, when set with JobID, is when the job's creation was
	// started: a job that Salesforce says was created earlier (less
	// MaxClockSkew) cannot be the file's and is refused, as is a job on
	// another object, with another operation or another key field.
	NotBefore time.Time
	// Rows is the file's number of records, when known: the poller
	// expects a job to take time in proportion to it.
	Rows int64
}

// MaxClockSkew is how far this machine's clock and Salesforce's may
// differ when a followed job's creation time is compared with
// LoadFile.NotBefore.
const MaxClockSkew = 5 * time.Minute

// LoadOptions tunes LoadFiles and LoadStream.
type LoadOptions struct {
	// Parallel is how many files are being uploaded at once (create,
	// upload, close; default 4). A job whose data is uploaded and closed
	// no longer takes one of these: it waits in the Window while
	// Salesforce processes it.
	Parallel int
	// Window bounds the jobs in flight in the org, from their creation
	// until they end, and adapts it to the org (see Window). Nil: a fixed
	// window of Parallel jobs.
	Window *Window
	// OnCreateJob, when set, is called before each request to create a
	// job for a file. A job may exist from then on that the caller never
	// learns the id of (the answer is lost, or the process dies before
	// OnJobCreated): note the time, to say so later. Such a job is Open and
	// empty, and expires. An error stops the file before the request.
	OnCreateJob func(path string) error
	// OnCreateLost, when set, is called when a create request got no
	// answer (or a 5xx after which it may have worked, or ctx ended while
	// it was under way): Salesforce may hold an Open, empty job for the
	// file that nobody will use. The loader then creates another job for
	// the file (unless ctx ended).
	OnCreateLost func(path string)
	// OnJobCreated is called as soon as a job exists for a file, before
	// any data is uploaded: record the id, so a later run can resume the
	// job instead of creating a second one. If it returns an error, no
	// data goes to the job: the loader aborts it and the file fails with
	// that error (a job a later run cannot know of must never hold data).
	// It is called again for the same path if a failed upload made the
	// loader abandon the job (it was never closed, so it will never load
	// anything) and start a new one, up to Config.MaxAttempts jobs; the
	// last call names the job that counts. Callbacks never overlap.
	OnJobCreated func(path, jobID string) error
	// OnJobDone is called once per file when its outcome is known: its job
	// reached a final state, or the file failed or was not started.
	OnJobDone func(LoadResult)
}

// LoadResult is the outcome for one file.
type LoadResult struct {
	// Path is the file, as given.
	Path string
	// JobID is the file's job ("" if none was created).
	JobID string
	// State is the job's last known state ("" if none was seen). A job
	// that ran to its end is JobComplete, Failed or Aborted.
	State JobState
	// Processed and Failed are the job's numberRecordsProcessed (failed
	// rows included) and numberRecordsFailed.
	Processed, Failed int64
	// ErrorMessage is the job's errorMessage when it ended Failed.
	ErrorMessage string
	// Retries is the job's retries: how often Salesforce processed a part
	// of it again (lock contention, timeouts); a sign of strain.
	Retries int64
	// Resumed is true when the file came with a JobID.
	Resumed bool
	// Err says why the file's job could not be carried to a final state
	// (or why it was not started); nil when it got there, whatever the
	// state.
	Err error
}

// Succeeded reports whether the file's job completed and every record
// succeeded.
func (r LoadResult) Succeeded() bool {
	return r.Err == nil && r.State == JobComplete && r.Failed == 0
}

// LoadFiles loads each file in its own ingest job (create, upload,
// close, wait), at most opts.Parallel jobs at a time, following every job
// to its final state. It returns one result per file, in input order,
// including the files that failed.
//
// The error is nil unless the load could not run as a whole: an invalid
// spec or options (nothing is sent then) or ctx ending (the results still
// say what became of each file). Per-file problems are in the results.
//
// When ctx ends, no new job is started, and jobs that were created but
// not yet closed are aborted (with a short timeout of their own, as ctx
// is gone): they never processed anything, and an Open job would linger
// for a day. Jobs already closed are left to finish: Salesforce is
// processing them, aborting keeps the rows already saved anyway, and a
// later run resumes them by id to collect a coherent result.
func (c *Client) LoadFiles(ctx context.Context, spec JobSpec, files []LoadFile, opts LoadOptions) ([]LoadResult, error) {
	i := 0
	return c.load(ctx, spec, opts, len(files), func(ctx context.Context) (LoadFile, bool) {
		if i >= len(files) {
			return LoadFile{}, false
		}
		i++
		return files[i-1], true
	}, func() []LoadFile { return files[i:] })
}

// LoadStream is LoadFiles for files that become ready while loading runs
// (upload batch 1 while batch 2 is extracted). It returns when files is
// closed and every job has ended, or once ctx ends (in-flight jobs wound
// down as LoadFiles describes); the sender should stop on ctx.Done() too.
// Results are in arrival order.
func (c *Client) LoadStream(ctx context.Context, spec JobSpec, files <-chan LoadFile, opts LoadOptions) ([]LoadResult, error) {
	return c.load(ctx, spec, opts, 0, func(ctx context.Context) (LoadFile, bool) {
		select {
		case f, ok := <-files:
			return f, ok
		case <-ctx.Done():
			return LoadFile{}, false
		}
	}, nil)
}

func (c *Client) load(ctx context.Context, spec JobSpec, opts LoadOptions, hint int,
	next func(context.Context) (LoadFile, bool), rest func() []LoadFile) ([]LoadResult, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if opts.Parallel < 0 {
		return nil, fmt.Errorf("salesforce: load: Parallel is negative (%d)", opts.Parallel)
	}
	parallel := opts.Parallel
	if parallel == 0 {
		parallel = DefaultParallel
	}
	window := opts.Window
	if window == nil {
		var err error
		if window, err = NewWindow(parallel, parallel); err != nil {
			return nil, err
		}
	}
	l := &loader{c: c, spec: spec, opts: opts, window: window, poller: newPoller(c)}
	c.addWindow(window)
	defer c.removeWindow(window)
	// The poller follows every closed job; it ends after the last one.
	pctx, stopPoller := context.WithCancel(ctx)
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		l.poller.run(pctx)
	}()
	results := l.run(ctx, parallel, hint, next)
	stopPoller()
	<-pollerDone
	if rest != nil {
		for _, f := range rest() {
			r := LoadResult{Path: f.Path, JobID: f.JobID, Resumed: f.JobID != "",
				Err: fmt.Errorf("load %s: not started: %w", f.Path, context.Cause(ctx))}
			l.done(r)
			results = append(results, r)
		}
	}
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("salesforce: load %s: %w", spec.Object, context.Cause(ctx))
	}
	return results, nil
}

// run takes files from next while the window has room and ctx lasts,
// uploads up to parallel of them at once, and returns once every job it
// started has ended: one result per file, in the order taken.
func (l *loader) run(ctx context.Context, parallel, hint int, next func(context.Context) (LoadFile, bool)) []LoadResult {
	var mu sync.Mutex
	results := make([]LoadResult, 0, hint) // guarded by mu once goroutines run
	finish := func(idx int, r LoadResult) {
		l.release(r)
		l.done(r)
		mu.Lock()
		results[idx] = r
		mu.Unlock()
	}
	var g errgroup.Group
	g.SetLimit(parallel)
	var waiters sync.WaitGroup
	for ctx.Err() == nil {
		// Room in the window first, then the next file: a file taken is
		// one on disk, so none is taken that could not go out.
		if err := l.window.Acquire(ctx); err != nil {
			break
		}
		f, ok := next(ctx)
		if !ok {
			l.window.Unacquire()
			break
		}
		mu.Lock()
		idx := len(results)
		results = append(results, LoadResult{Path: f.Path, JobID: f.JobID})
		mu.Unlock()
		// Go blocks while Parallel files are being uploaded. Per-file
		// failures are results, not group errors: one bad file must not
		// stop the others.
		g.Go(func() error {
			r, closed := l.start(ctx, f)
			if !closed {
				finish(idx, r)
				return nil
			}
			// Closed: Salesforce processes it. The upload slot is free for
			// the next file; the job stays in the window until it ends.
			closedAt := time.Now()
			waiters.Go(func() { finish(idx, l.await(r, f.Rows, closedAt)) })
			return nil
		})
	}
	_ = g.Wait() // the goroutines never return an error
	waiters.Wait()
	return results
}

// release gives a finished job's place in the window back, halving the
// window first when Salesforce had to process parts of the job again
// (lock contention or timeouts, worse with more jobs at once) and at least
// lockShrinkShare of its rows failed (in a job of lockShrinkMinRows rows
// or more). Below that share the rows that met
// a lock are cheaper to send again (record-level retry) than the org's
// capacity a halved window leaves idle; such a job does not widen the
// window either.
func (l *loader) release(r LoadResult) {
	if r.Retries > 0 && r.Processed >= lockShrinkMinRows && float64(r.Failed) >= lockShrinkShare*float64(r.Processed) {
		l.window.Shrink(fmt.Sprintf("Salesforce processed parts of job %s again %d times and %d of its %d rows failed (lock contention or timeouts)",
			r.JobID, r.Retries, r.Failed, r.Processed))
	}
	l.window.Release(r.Err == nil && r.State == JobComplete && r.Retries == 0)
}

// lockShrinkShare is the share of a job's rows that must fail, with
// Salesforce re-processing parts of it, for the window to halve, in a job
// of at least lockShrinkMinRows rows (one chunk Salesforce saves at once):
// a follow-up of a few rows that met a lock again says little about the
// org's contention, and halving on it would slow the whole load.
const (
	lockShrinkShare   = 0.05
	lockShrinkMinRows = 200
)

// loader carries one LoadFiles call.
type loader struct {
	c      *Client
	spec   JobSpec
	opts   LoadOptions
	window *Window
	poller *poller
	cbMu   sync.Mutex // callbacks are called one at a time
}

func (l *loader) creating(path string) error {
	if l.opts.OnCreateJob == nil {
		return nil
	}
	l.cbMu.Lock()
	defer l.cbMu.Unlock()
	return l.opts.OnCreateJob(path)
}

func (l *loader) createLost(path string) {
	if l.opts.OnCreateLost == nil {
		return
	}
	l.cbMu.Lock()
	defer l.cbMu.Unlock()
	l.opts.OnCreateLost(path)
}

func (l *loader) created(path, id string) error {
	if l.opts.OnJobCreated == nil {
		return nil
	}
	l.cbMu.Lock()
	defer l.cbMu.Unlock()
	return l.opts.OnJobCreated(path, id)
}

func (l *loader) done(r LoadResult) {
	if l.opts.OnJobDone == nil {
		return
	}
	l.cbMu.Lock()
	defer l.cbMu.Unlock()
	l.opts.OnJobDone(r)
}

// start carries one file as far as it goes without waiting for
// Salesforce: created, uploaded and closed (closed is true: the job is
// processing, await follows it), or to a final state or failure.
func (l *loader) start(ctx context.Context, f LoadFile) (r LoadResult, closed bool) {
	if f.JobID != "" {
		return l.resume(ctx, f)
	}
	return l.fresh(ctx, f)
}

// await follows r's closed job to its end through the poller (which
// stops, and answers every job it follows, when the load's context ends).
func (l *loader) await(r LoadResult, rows int64, closedAt time.Time) LoadResult {
	res := <-l.poller.follow(r.JobID, rows, closedAt)
	r.take(res.info)
	if res.err != nil {
		r.Err = fmt.Errorf("load %s: %w", r.Path, res.err)
	}
	return r
}

func (r *LoadResult) take(info *JobInfo) {
	if info == nil {
		return
	}
	r.JobID, r.State = info.ID, info.State
	r.Processed, r.Failed, r.ErrorMessage = info.NumberRecordsProcessed, info.NumberRecordsFailed, info.ErrorMessage
	r.Retries = info.Retries
}

// fresh loads a file that has no job yet, as far as closing its job.
func (l *loader) fresh(ctx context.Context, f LoadFile) (LoadResult, bool) {
	r := LoadResult{Path: f.Path}
	if err := ctx.Err(); err != nil {
		r.Err = fmt.Errorf("load %s: not started: %w", f.Path, context.Cause(ctx))
		return r, false
	}
	if _, err := os.Stat(f.Path); err != nil {
		r.Err = fmt.Errorf("load %s: %w", f.Path, err)
		return r, false
	}
	return l.newJob(ctx, r)
}

// newJob loads r's file in a new job and closes it. A job whose creation
// or upload failed in a transient way is abandoned and another one
// created, up to Config.MaxAttempts jobs. Only a job that was never closed
// is abandoned, so no row is ever loaded twice; the answer that proves a
// job exists (create) and the record of its id (OnJobCreated) both come
// before any data is sent to it.
func (l *loader) newJob(ctx context.Context, r LoadResult) (LoadResult, bool) {
	c := l.c
	for attempt := 1; ; attempt++ {
		err := l.attemptJob(ctx, &r)
		if err == nil {
			return l.closeJob(ctx, r)
		}
		if ctx.Err() != nil {
			if r.JobID != "" && r.State == JobOpen {
				l.windDown(ctx, &r, err)
			} else {
				r.Err = fmt.Errorf("load %s: %w", r.Path, err)
			}
			return r, false
		}
		if Classify(err) != ClassTransient || attempt >= c.cfg.MaxAttempts {
			r.Err = fmt.Errorf("load %s: %w", r.Path, err)
			return r, false
		}
		c.log.Warn("salesforce: creating or loading a job failed; starting a new job", "path", r.Path, "job", r.JobID,
			"attempt", attempt, "error", err.Error())
		if serr := sleep(ctx, c.backoff(attempt)); serr != nil {
			r.Err = fmt.Errorf("load %s: %w (after: %v)", r.Path, context.Cause(ctx), err)
			return r, false
		}
	}
}

// attemptJob creates a job for r's file, has it recorded and uploads the
// file. On success r names the job, Open with its data. On failure a job
// that was created is aborted (it is this load's and was never closed),
// except when ctx ended during the upload: newJob winds that one down.
func (l *loader) attemptJob(ctx context.Context, r *LoadResult) error {
	c := l.c
	if err := l.creating(r.Path); err != nil {
		return fmt.Errorf("no job created: %w", err)
	}
	info, err := c.CreateJob(ctx, l.spec)
	if err != nil {
		if errors.Is(err, ErrJobMayExist) || ctx.Err() != nil {
			// Also when ctx ended: the request may have been under way.
			l.createLost(r.Path)
		}
		return err
	}
	r.take(info)
	if err := l.created(r.Path, info.ID); err != nil {
		// A job whose id is not recorded must hold no data: a later run
		// could not know of it and would load the file again.
		l.abandon(ctx, r)
		return fmt.Errorf("job %s could not be recorded, so no data was sent to it (%s): %w", info.ID, r.State, err)
	}
	if err := c.UploadJobData(ctx, info.ID, r.Path); err != nil {
		if ctx.Err() == nil {
			l.abandon(ctx, r)
		}
		return err
	}
	return nil
}

// abandon aborts r's job, which was never closed and so never processed a
// row; left alone it would stay Open for a day.
func (l *loader) abandon(ctx context.Context, r *LoadResult) {
	if _, err := l.c.AbortJob(ctx, r.JobID); err != nil {
		l.c.log.Warn("salesforce: could not abort a job that will not be used; it stays Open, with no processed rows, until it expires",
			"job", r.JobID, "path", r.Path, "error", err.Error())
		return
	}
	r.State = JobAborted
}

// closeJob closes r's job. closed is true when Salesforce now processes
// it (await follows it); false when the job already ended or the close
// failed (r.Err).
func (l *loader) closeJob(ctx context.Context, r LoadResult) (LoadResult, bool) {
	c := l.c
	info, err := c.CloseJob(ctx, r.JobID)
	if err != nil {
		if ctx.Err() != nil {
			l.windDown(ctx, &r, err)
			return r, false
		}
		// The close failed for good. The job may be Open still; leave it:
		// a later run resumes it by id (upload refused as already done,
		// then close) rather than loading the file twice.
		if info != nil {
			r.State = info.State
		}
		r.Err = fmt.Errorf("load %s: %w", r.Path, err)
		return r, false
	}
	r.State = info.State
	if info.State.Terminal() {
		// The close's answer was lost and reading the job found it
		// already finished (setJobState): nothing to wait for.
		r.take(info)
		return r, false
	}
	return r, true
}

// resume takes up a job recorded earlier for the file: an Open one is
// uploaded (again) and closed; closed is true when the job is processing.
func (l *loader) resume(ctx context.Context, f LoadFile) (LoadResult, bool) {
	c := l.c
	r := LoadResult{Path: f.Path, JobID: f.JobID, Resumed: true}
	if err := ctx.Err(); err != nil {
		r.Err = fmt.Errorf("load %s: not started: %w", f.Path, context.Cause(ctx))
		return r, false
	}
	info, err := c.GetJob(ctx, f.JobID)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			r.Err = fmt.Errorf("load %s: resume job %s: the job no longer exists (deleted, or finished more than 7 days ago), so what it loaded is unknown; check the org before loading the file in a new job: %w", f.Path, f.JobID, err)
		} else {
			r.Err = fmt.Errorf("load %s: resume job %s: %w", f.Path, f.JobID, err)
		}
		return r, false
	}
	if err := l.checkFollowed(f, info); err != nil {
		// Nothing of that job is taken into the result: its state and
		// counts are not this file's.
		r.Err = err
		return r, false
	}
	r.take(info)
	switch info.State {
	case JobOpen:
		// Created, perhaps uploaded, not closed. A second upload is refused
		// in a known way, which proves the first arrived (§2.4).
		err := c.UploadJobData(ctx, f.JobID, f.Path)
		if errors.Is(err, ErrAlreadyUploaded) {
			c.log.Info("salesforce: resumed job already holds its data; closing it", "job", f.JobID, "path", f.Path)
			err = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				l.windDown(ctx, &r, err)
				return r, false
			}
			if Classify(err) != ClassTransient {
				r.Err = fmt.Errorf("load %s: resume job %s: %w", f.Path, f.JobID, err)
				return r, false
			}
			// As on a fresh load: the job is this load's and was never
			// closed, so it never processed a row; abandon it and load the
			// file in a new job.
			c.log.Warn("salesforce: upload to a resumed job failed; abandoning it and starting a new job",
				"job", f.JobID, "path", f.Path, "error", err.Error())
			l.abandon(ctx, &r)
			if serr := sleep(ctx, c.backoff(1)); serr != nil {
				r.Err = fmt.Errorf("load %s: %w (after: %v)", f.Path, context.Cause(ctx), err)
				return r, false
			}
			return l.newJob(ctx, r)
		}
		return l.closeJob(ctx, r)
	case JobUploadComplete, JobInProgress:
		return r, true
	}
	if !info.State.Terminal() {
		r.Err = fmt.Errorf("load %s: resume job %s: unknown state %q", f.Path, f.JobID, info.State)
	}
	return r, false
}

// checkFollowed refuses a recorded job that is not what the record says
// it is: a job on another object, with another operation or key field, or
// created before the file was handed over (less MaxClockSkew). Such a job
// is never uploaded to, closed or aborted: it is not this load's.
func (l *loader) checkFollowed(f LoadFile, info *JobInfo) error {
	var problems []string
	if info.Object != "" && !strings.EqualFold(info.Object, l.spec.Object) {
		problems = append(problems, fmt.Sprintf("it is on %s, not %s", info.Object, l.spec.Object))
	}
	if info.Operation != "" && info.Operation != l.spec.Operation {
		problems = append(problems, fmt.Sprintf("its operation is %s, not %s", info.Operation, l.spec.Operation))
	}
	if l.spec.Operation == OpUpsert && info.ExternalIDField != "" && !strings.EqualFold(info.ExternalIDField, l.spec.ExternalIDField) {
		problems = append(problems, fmt.Sprintf("its external id field is %s, not %s", info.ExternalIDField, l.spec.ExternalIDField))
	}
	if !f.NotBefore.IsZero() && !info.CreatedDate.IsZero() && info.CreatedDate.Before(f.NotBefore.Add(-MaxClockSkew)) {
		problems = append(problems, fmt.Sprintf("it was created at %s, before its creation was started (%s, allowing %s of clock difference)",
			info.CreatedDate.UTC().Format(time.RFC3339), f.NotBefore.UTC().Format(time.RFC3339), MaxClockSkew))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("load %s: the recorded job %s is not this file's job: %s; it is left untouched (check the record of the job id)",
		f.Path, f.JobID, strings.Join(problems, "; "))
}

// windDown handles a job whose load was interrupted by ctx before or
// while closing: if the job is still Open it is aborted; if the close had
// already taken effect the job is left to finish (see LoadFiles).
func (l *loader) windDown(ctx context.Context, r *LoadResult, cause error) {
	c := l.c
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	r.Err = fmt.Errorf("load %s: %w", r.Path, cause)
	info, err := c.GetJob(cctx, r.JobID)
	if err != nil {
		c.log.Warn("salesforce: load cancelled; could not read the job to wind it down", "job", r.JobID, "error", err.Error())
		return
	}
	r.take(info)
	if info.State != JobOpen {
		return // closed: Salesforce finishes it; a later run collects it
	}
	info, err = c.AbortJob(cctx, r.JobID)
	if err != nil {
		c.log.Warn("salesforce: load cancelled; could not abort the unclosed job", "job", r.JobID, "error", err.Error())
		return
	}
	r.take(info)
}
