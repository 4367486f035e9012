package sfemu

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// The realistic org: a processing model for closed Bulk API 2.0 jobs that
// behaves like a busy production org rather than finishing jobs at once
// (docs/emulator.md, "A realistic org"). Without it (the default) jobs are
// processed as soon as they are closed, as fast as the machine allows.
//
// The model, for ProcessAsync:
//
//   - Queue wait: a closed job stays UploadComplete for QueueWait (plus
//     the WithProcessing delay) before it may start.
//   - Concurrency: at most ConcurrentJobs jobs are InProgress at once;
//     the others wait in UploadComplete and start in the order their
//     queue wait ended.
//   - Capacity: the org processes RecordsPerSecond records per second
//     when ConcurrentJobs jobs are in progress; each job in progress gets
//     an equal slot of RecordsPerSecond/ConcurrentJobs, so a job of n
//     records takes at least n / (RecordsPerSecond/ConcurrentJobs)
//     seconds, and an org with fewer jobs in progress sits partly idle.
//     Jobs are split into internal batches of 10,000 records and chunks
//     of 200, as always; records are committed chunk by chunk at the
//     slot's pace, so numberRecordsProcessed grows while a job runs.
//   - Lock contention: while a chunk is saved, each row that would
//     otherwise be saved fails UNABLE_TO_LOCK_ROW with probability
//     min(0.5, LockRate * k), where k is the number of other jobs in
//     progress on the same object or on an object one lookup away (its
//     parent or child objects, whose saves lock the same parent rows).
//     Draws come from the seed and the job, so runs repeat.
//
// The daily API allocation is the same with and without the model
// (WithAPILimit).

// OrgModel describes a realistic org's processing capacity. The zero
// value of a field turns that part off (no wait, no pacing, no lock
// failures); ConcurrentJobs below 1 means 1.
type OrgModel struct {
	// QueueWait is how long a closed job waits before it may start.
	QueueWait time.Duration
	// RecordsPerSecond is the org's capacity when ConcurrentJobs jobs are
	// in progress; 0 processes without pacing.
	RecordsPerSecond float64
	// ConcurrentJobs is how many jobs are processed at the same time.
	ConcurrentJobs int
	// LockRate is the share of rows per other related job in progress
	// that fail UNABLE_TO_LOCK_ROW (capped at 0.5 in total).
	LockRate float64
}

// maxLockShare caps the share of rows failing on locks: even a very
// contended org saves most rows.
const maxLockShare = 0.5

// DefaultOrgModel is the realistic org of `sfmigrate emulator --org-model`:
// 2 s queue wait, 10 jobs at a time, 20,000 records/s (2,000 per job,
// 5 s per internal batch of 10,000), 0.1 % of rows failing on locks per
// other related job in progress.
func DefaultOrgModel() OrgModel {
	return OrgModel{QueueWait: 2 * time.Second, RecordsPerSecond: 20_000, ConcurrentJobs: 10, LockRate: 0.001}
}

// Validate reports a model that cannot be used, naming the bad value.
func (m OrgModel) Validate() error {
	switch {
	case m.QueueWait < 0:
		return fmt.Errorf("queue wait %v must not be negative", m.QueueWait)
	case m.RecordsPerSecond < 0:
		return fmt.Errorf("records per second %v must not be negative", m.RecordsPerSecond)
	case m.ConcurrentJobs < 0:
		return fmt.Errorf("concurrent jobs %d must not be negative", m.ConcurrentJobs)
	case m.LockRate < 0 || m.LockRate > 1:
		return fmt.Errorf("lock rate %v is not a share between 0 and 1", m.LockRate)
	}
	return nil
}

// WithOrgModel processes closed jobs as a realistic org does (see
// OrgModel); it applies to ProcessAsync only. New panics if the model is
// invalid (OrgModel.Validate).
func WithOrgModel(m OrgModel) Option {
	return func(o *options) { o.model = &m }
}

// OrgStats is what the org model has seen so far.
type OrgStats struct {
	// PeakInProgress is the largest number of jobs in progress at once.
	PeakInProgress int
	// LockFailures is the number of rows failed UNABLE_TO_LOCK_ROW by the
	// model's contention (LockRecords failures not included).
	LockFailures int64
}

// OrgStats returns the org model's counters (zero without a model).
func (s *Server) OrgStats() OrgStats {
	return s.store.orgStats()
}

// orgState is the model's run-time state.
type orgState struct {
	m      OrgModel
	perJob float64 // records per second of one job in progress (0: unpaced)

	slotMu  sync.Mutex
	free    int
	waiting []chan struct{} // FIFO of jobs waiting for a slot

	// Guarded by orgStore.mu.
	running      map[*object]int // jobs in progress per object
	inProgress   int
	peak         int
	lockFailures int64
}

func newOrgState(m *OrgModel) *orgState {
	if m == nil {
		return nil
	}
	if err := m.Validate(); err != nil {
		panic("sfemu: WithOrgModel: " + err.Error())
	}
	st := &orgState{m: *m, running: map[*object]int{}}
	st.m.ConcurrentJobs = max(st.m.ConcurrentJobs, 1)
	st.free = st.m.ConcurrentJobs
	if st.m.RecordsPerSecond > 0 {
		st.perJob = st.m.RecordsPerSecond / float64(st.m.ConcurrentJobs)
	}
	return st
}

// acquire waits for a processing slot; false when ctx ended first.
func (o *orgState) acquire(ctx context.Context) bool {
	o.slotMu.Lock()
	if o.free > 0 && len(o.waiting) == 0 {
		o.free--
		o.slotMu.Unlock()
		return true
	}
	ch := make(chan struct{})
	o.waiting = append(o.waiting, ch)
	o.slotMu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		o.slotMu.Lock()
		for i, w := range o.waiting {
			if w == ch {
				o.waiting = append(o.waiting[:i], o.waiting[i+1:]...)
				o.slotMu.Unlock()
				return false
			}
		}
		o.slotMu.Unlock()
		o.release() // granted while ctx ended: pass it on
		return false
	}
}

// release hands the slot to the longest-waiting job, or frees it.
func (o *orgState) release() {
	o.slotMu.Lock()
	defer o.slotMu.Unlock()
	if len(o.waiting) > 0 {
		ch := o.waiting[0]
		o.waiting = o.waiting[1:]
		close(ch)
		return
	}
	o.free++
}

// startLocked and endLocked count a job in progress.
func (o *orgState) startLocked(ob *object) {
	o.running[ob]++
	o.inProgress++
	o.peak = max(o.peak, o.inProgress)
}

func (o *orgState) endLocked(ob *object) {
	o.running[ob]--
	o.inProgress--
}

// lockShareLocked is the share of rows of a job on ob that fail on locks
// right now: LockRate per other job in progress on ob or on an object
// one lookup away, at most maxLockShare.
func (o *orgState) lockShareLocked(ob *object) float64 {
	if o.m.LockRate == 0 {
		return 0
	}
	k := -1 // the job itself
	for other, n := range o.running {
		if n > 0 && (other == ob || related(other, ob)) {
			k += n
		}
	}
	if k <= 0 {
		return 0
	}
	return min(maxLockShare, o.m.LockRate*float64(k))
}

// related reports whether a and b are parent and child by a lookup.
func related(a, b *object) bool {
	for _, f := range a.refs {
		if f.refObj == b {
			return true
		}
	}
	for _, f := range b.refs {
		if f.refObj == a {
			return true
		}
	}
	return false
}

// pacer holds a job to its slot's pace.
type pacer struct {
	perJob float64
	start  time.Time
	rows   int
}

// wait blocks until n more rows may be committed; false when ctx ended.
func (pc *pacer) wait(ctx context.Context, n int) bool {
	pc.rows += n
	due := pc.start.Add(time.Duration(float64(pc.rows) / pc.perJob * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// newLockRand is the lock-failure draw of one job: repeatable per seed and job.
func newLockRand(seed int64, jobSeq uint64) *mrand.Rand {
	return mrand.New(mrand.NewPCG(uint64(seed)^0x10c4, jobSeq))
}
