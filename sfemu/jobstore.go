package sfemu

import (
	"net/http"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// The store's side of Bulk API 2.0 ingest jobs (salesforce-api.md §2):
// every change of a job's state is one orgStore method, taken under the
// store lock from start to end. The HTTP side is in ingest.go and
// results.go, the processing in processor.go.

// jobSpec is a validated create request (salesforce-api.md 2.2).
type jobSpec struct {
	obj        *object
	operation  string
	extField   *field
	lineEnding string
	delimiter  string
	delim      byte
	ruleID     string
	apiVersion string
}

// createJob opens a job and returns its create view.
func (st *orgStore) createJob(sp jobSpec, now time.Time) jobInfo {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.jobSeq++
	j := &job{
		id: makeID("750", st.jobIDBase+st.jobSeq), seq: st.jobSeq, jobSpec: sp, created: now, modstamp: now, state: StateOpen,
		done: make(chan struct{}),
	}
	st.jobs[id15(j.id)] = j
	st.jobList = append(st.jobList, j)
	st.broadcastLocked()
	return j.infoLocked(viewCreate)
}

// jobInfo renders a live job for one kind of call.
func (st *orgStore) jobInfo(id string, v jobView) (jobInfo, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	j, err := st.jobLocked(id)
	if err != nil {
		return jobInfo{}, err
	}
	return j.infoLocked(v), nil
}

// jobState returns a live job's state and a channel closed at the next
// change of any job (AwaitJob).
func (st *orgStore) jobState(id string) (string, <-chan struct{}, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	j, err := st.jobLocked(id)
	if err != nil {
		return "", nil, err
	}
	return j.state, st.changed, nil
}

// jobSnapshots returns every job not deleted, in creation order.
func (st *orgStore) jobSnapshots() []JobSnapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]JobSnapshot, 0, len(st.jobList))
	for _, j := range st.jobList {
		if j.deleted {
			continue
		}
		snap := JobSnapshot{ID: j.id, Object: j.obj.name, Operation: j.operation, State: j.state,
			NumberRecordsProcessed: j.processed, NumberRecordsFailed: j.failed, Retries: j.retries,
			ErrorMessage: j.errorMessage, UploadedBytes: len(j.data)}
		if j.extField != nil {
			snap.ExternalIDFieldName = j.extField.name
		}
		out = append(out, snap)
	}
	return out
}

// listJobs returns the list views of the live jobs from offset on, at
// most pageSize of them, with the index after the last one returned and
// the number of jobs listed in all. withIngest false lists none (a
// jobType filter no ingest job matches).
func (st *orgStore) listJobs(offset, pageSize int, withIngest bool) (page []jobInfo, end, total int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked()
	var all []*job
	if withIngest {
		for _, j := range st.jobList {
			if !j.deleted {
				all = append(all, j)
			}
		}
	}
	if offset > len(all) {
		offset = len(all)
	}
	end = min(offset+pageSize, len(all))
	for _, j := range all[offset:end] {
		page = append(page, j.infoLocked(viewList))
	}
	return page, end, len(all)
}

// setJobState applies a PATCH of the job's state: close (UploadComplete)
// or abort (salesforce-api.md 2.5, 2.6). For a close it returns the job
// to process; spawn says that an async processor was registered for it
// (async is true and the server is not closed), which the caller must
// start and which must call processorDone when it ends.
func (st *orgStore) setJobState(id, want string, async bool) (j *job, info jobInfo, spawn bool, _ *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	j, err := st.jobLocked(id)
	if err != nil {
		return nil, jobInfo{}, false, err
	}
	now := st.now()
	switch want {
	case StateUploadComplete:
		if j.state != StateOpen {
			// Wire body [I] (salesforce-api.md 2.6, §9 item 5).
			return nil, jobInfo{}, false, errJobState("Job with id " + j.id + " is not in Open state and can not be closed (current state: " + j.state + ")")
		}
		if j.uploading {
			return nil, jobInfo{}, false, errJobState("Job with id " + j.id + " is receiving its data; wait for the upload to finish")
		}
		j.state = StateUploadComplete
		j.modstamp = now
		st.broadcastLocked()
		if async && !st.closed {
			// Registered under the lock, so Close either sees it or
			// keeps it from starting.
			st.procs.Add(1)
			spawn = true
		}
		return j, j.infoLocked(viewPatch), spawn, nil
	case StateAborted:
		if terminal(j.state) {
			return nil, jobInfo{}, false, errJobState("Job with id " + j.id + " is already in a terminal state (" + j.state + ") and can not be aborted")
		}
		wasClaimed := j.claimed
		j.state = StateAborted
		j.modstamp = now
		if !wasClaimed {
			// Nothing processed yet: every uploaded row is unprocessed.
			finishUnprocessed(j)
		}
		// A running processor sees Aborted between chunks and stops (2.5:
		// rows already committed stay).
		st.broadcastLocked()
		return nil, j.infoLocked(viewPatch), false, nil
	default:
		// Documented only as InvalidJobState [D]; body [I].
		return nil, jobInfo{}, false, errJobState("Invalid state transition: '" + want + "' can not be set on a job in state " + j.state + "; use UploadComplete or Aborted")
	}
}

// deleteJob deletes a job that is not running (salesforce-api.md 2.8).
func (st *orgStore) deleteJob(id string) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()
	j, err := st.jobLocked(id)
	if err != nil {
		return err
	}
	if j.state == StateOpen || j.state == StateInProgress || (j.state == StateUploadComplete && j.claimed) {
		// Body [I] by analogy with the documented query-job case (2.8).
		return newAPIError(http.StatusBadRequest, "API_ERROR", "Error encountered when deleting the job because the job is not terminated")
	}
	st.deleteJobLocked(j)
	return nil
}

// beginUpload marks an Open job as receiving its one upload (2.4). The
// caller reads the body without the lock and then calls endUpload with
// the returned job.
func (st *orgStore) beginUpload(id string) (*job, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	j, err := st.jobLocked(id)
	if err != nil {
		return nil, err
	}
	if j.state == StateOpen && (j.uploaded || j.uploading) {
		// Text [O] with its typo; status 400 [I] (2.4). The ID is shown in
		// its 15-character form as in the observed message.
		return nil, newAPIError(http.StatusBadRequest, "BULK_API_ERROR",
			"Found multipe contents for job: <"+id15(j.id)+">, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.")
	}
	if j.state != StateOpen {
		return nil, errJobState("Job is not in Open state") // [I] (2.4)
	}
	j.uploading = true
	return j, nil
}

// endUpload ends an upload begun with beginUpload: it keeps data unless
// reading it failed (readErr, returned as is) or the job left Open
// meanwhile.
func (st *orgStore) endUpload(j *job, data []byte, readErr error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	j.uploading = false
	if readErr != nil {
		return readErr
	}
	if j.deleted || j.state != StateOpen {
		return errJobState("Job is not in Open state")
	}
	j.data = data
	j.uploaded = true
	j.modstamp = st.now()
	return nil
}

// jobResultsReady finds a terminal job for a results call and returns it
// with a channel closed once its results are published (an aborted job's
// processor may still be finishing its chunk).
func (st *orgStore) jobResultsReady(id string) (*job, <-chan struct{}, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	j, err := st.jobLocked(id)
	if err != nil {
		return nil, nil, err
	}
	if !terminal(j.state) {
		return nil, nil, errJobState("Job is not in a terminal state") // [I: 3.4]
	}
	return j, j.done, nil
}

// jobResults returns a job's published results (nil once the job was
// deleted). They never change again.
func (st *orgStore) jobResults(j *job) *jobResults {
	st.mu.Lock()
	defer st.mu.Unlock()
	return j.res
}

// waitingJobs returns the closed jobs no processor took yet.
func (st *orgStore) waitingJobs() []*job {
	st.mu.Lock()
	defer st.mu.Unlock()
	var todo []*job
	for _, j := range st.jobList {
		if !j.deleted && j.state == StateUploadComplete && !j.claimed {
			todo = append(todo, j)
		}
	}
	return todo
}

// claimJob takes a closed job for processing and returns its upload;
// ok is false when the job is gone, not closed or already taken, or when
// a failure injected with FailNextJob ended it. paced counts the job as
// in progress in the org model (endJob with paced ends it).
func (st *orgStore) claimJob(j *job, paced bool) (data []byte, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if j.deleted || j.state != StateUploadComplete || j.claimed {
		return nil, false
	}
	j.claimed = true
	now := st.now()
	if len(st.failNext) > 0 {
		msg := st.failNext[0]
		st.failNext = st.failNext[1:]
		j.state = StateFailed
		j.errorMessage = msg
		j.modstamp = now
		finishUnprocessed(j)
		st.broadcastLocked()
		return nil, false
	}
	j.state = StateInProgress
	j.modstamp = now
	st.broadcastLocked()
	if paced {
		st.model.startLocked(j.obj)
	}
	return j.data, true
}

// applyChunk saves up to 200 rows of p's job in one hold of the store
// lock. It returns false when the job was aborted or deleted before the
// chunk. lockRetry is set when a row failed on a lock.
func (st *orgStore) applyChunk(p *processor, chunk []prow, lockRetry *bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if p.j.state != StateInProgress || p.j.deleted {
		return false
	}
	now := st.now().UnixMilli()
	res := p.res
	var failed int64
	if p.model != nil {
		p.lockP = p.model.lockShareLocked(p.ob)
	}
	p.warmKeys(chunk)
	for i := range chunk {
		r := &chunk[i]
		seq, created, e := p.applyLocked(r, now)
		res.rowStart = append(res.rowStart, r.start)
		res.rec = append(res.rec, seq)
		switch {
		case e != nil:
			res.status = append(res.status, rowFailed)
			res.failRow = append(res.failRow, uint32(len(res.status)-1))
			res.failErr = append(res.failErr, e.bulkText())
			failed++
			if e.code == "UNABLE_TO_LOCK_ROW" {
				*lockRetry = true
			}
		case created:
			res.status = append(res.status, rowCreated)
		default:
			res.status = append(res.status, rowUpdated)
		}
	}
	p.j.processed += int64(len(chunk))
	p.j.failed += failed
	return true
}

// countRetry counts one retry of a job's internal batch (rows failed on
// locks are retried by Salesforce, 4.4).
func (st *orgStore) countRetry(j *job) {
	st.mu.Lock()
	defer st.mu.Unlock()
	j.retries++
}

// endJob ends a claimed job's processing: JobComplete, or Failed with
// failMsg, unless it was aborted meanwhile; then publishes its results.
func (st *orgStore) endJob(j *job, res *jobResults, failMsg string, started time.Time, paced bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if paced {
		st.model.endLocked(j.obj)
	}
	j.totalMs = time.Since(started).Milliseconds()
	j.modstamp = st.now()
	if j.state == StateInProgress {
		if failMsg != "" {
			j.state = StateFailed
			j.errorMessage = excerpt.N(failMsg, maxErrorMessage) // may quote a header name
		} else {
			j.state = StateJobComplete
		}
	}
	setResults(j, res)
	st.broadcastLocked()
}

// stop keeps closeJob from registering new async processors (Close).
func (st *orgStore) stop() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
}

// processorDone ends an async processor registered by setJobState.
func (st *orgStore) processorDone() { st.procs.Done() }

// waitProcessors waits for every registered async processor (Close,
// after stop).
func (st *orgStore) waitProcessors() { st.procs.Wait() }

// jobLocked finds a live job by 15- or 18-character ID.
func (st *orgStore) jobLocked(id string) (*job, *apiError) {
	st.expireLocked()
	prefix, _, ok := parseID(id)
	if !ok || prefix != "750" {
		return nil, errNotFound()
	}
	j := st.jobs[id15(id)]
	if j == nil || j.deleted {
		return nil, errNotFound()
	}
	return j, nil
}

// expireLocked applies the documented lifetimes lazily: an Open job not
// closed within 24 h is aborted [D/I: fate not documented, 2.6], terminal
// jobs and their results are deleted after 7 days [D].
func (st *orgStore) expireLocked() {
	now := st.now()
	for _, j := range st.jobList {
		switch {
		case j.deleted:
		case j.state == StateOpen && now.Sub(j.created) >= 24*time.Hour:
			j.state = StateAborted
			j.modstamp = j.created.Add(24 * time.Hour)
			finishUnprocessed(j)
			st.broadcastLocked()
		case terminal(j.state) && now.Sub(j.modstamp) >= 7*24*time.Hour:
			st.deleteJobLocked(j)
		}
	}
}

func (st *orgStore) deleteJobLocked(j *job) {
	j.deleted = true
	j.data = nil
	j.res = nil
	delete(st.jobs, id15(j.id))
	st.broadcastLocked()
}

// broadcastLocked wakes AwaitJob callers.
func (st *orgStore) broadcastLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// setResults publishes a job's results (under the store lock); readers
// waiting on done may then stream them (they never change again).
func setResults(j *job, res *jobResults) {
	if j.res != nil {
		return
	}
	j.res = res
	close(j.done)
}

// finishUnprocessed ends a job that processed nothing (under the store
// lock): every uploaded row is unprocessed.
func finishUnprocessed(j *job) {
	res := &jobResults{data: j.data, delim: j.delim, crlf: j.lineEnding == "CRLF", prefix: j.obj.prefix}
	res.setUnprocessedHeader()
	setResults(j, res)
}

// reserveIndexes sizes the empty indexes of t for a first big load of
// about rows records; later loads grow them as they go, so an upsert that
// only updates does not reserve twice. (Records are stored in pages,
// which never move.)
func (st *orgStore) reserveIndexes(t *table, rows int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range t.idx {
		if t.idx[i].n == 0 {
			t.idx[i].reserve(rows)
		}
	}
}
