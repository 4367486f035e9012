package sfemu

import (
	"strings"
	"sync"
	"time"
)

// orgStore is the org's mutable state: the record tables, the ingest jobs,
// the record locks and failures injected by tests, and the open query
// cursors. One mutex guards all of it, because a Bulk chunk, a REST write
// and a query page each need a consistent view across tables, jobs and
// locks at once.
//
// The rule of this type: every method without the Locked suffix takes mu
// and releases it before it returns; no method returns with mu held, and
// nothing outside the store's methods touches mu or the maps. Methods
// named ...Locked are the store's internals and expect mu held by the
// store method that calls them. Handlers parse the request, call one
// method per consistent change, and write the answer.
type orgStore struct {
	now   func() time.Time
	model *orgState // the realistic org's counters (guarded by mu); nil without WithOrgModel

	mu sync.Mutex
	// The fields below are guarded by mu.
	tables   map[*object]*table // one per object; the map is fixed after newOrgStore
	jobs     map[string]*job    // by 15-character job ID
	jobList  []*job             // creation order
	jobSeq   uint64
	changed  chan struct{}              // closed and replaced whenever a job changes state
	locks    map[*object]map[string]int // key -> writes left to fail (-1: until unlocked)
	failNext []string
	queries  map[string]*queryCursor
	querySeq uint64
	closed   bool // Close was called: no new async processors

	procs sync.WaitGroup // async job processors (setJobState, processorDone)

	// jobIDBase offsets job IDs so that a restarted emulator never hands
	// out an ID it gave before (newJobIDBase). Fixed after newOrgStore.
	jobIDBase uint64
}

func newOrgStore(g *org, now func() time.Time, model *orgState) *orgStore {
	st := &orgStore{now: now, model: model,
		tables: map[*object]*table{}, jobs: map[string]*job{},
		changed: make(chan struct{}), locks: map[*object]map[string]int{},
		queries:   map[string]*queryCursor{},
		jobIDBase: newJobIDBase(time.Now()),
	}
	for _, ob := range g.objects {
		st.tables[ob] = newTable(ob)
	}
	return st
}

// table returns the table of ob. The map never changes after
// newOrgStore, so this needs no lock; the table's contents do.
func (st *orgStore) table(ob *object) *table { return st.tables[ob] }

// lockKeys makes writes of ob whose External ID value is one of keys
// (case-insensitive) fail on a lock: attempts times, or until unlockKeys
// when attempts is -1 (LockRecords, LockRecordsFor).
func (st *orgStore) lockKeys(ob *object, attempts int, keys []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.locks[ob]
	if m == nil {
		m = map[string]int{}
		st.locks[ob] = m
	}
	for _, k := range keys {
		m[strings.ToLower(k)] = attempts
	}
}

// unlockKeys releases keys of ob locked by lockKeys; no keys releases all
// of ob's.
func (st *orgStore) unlockKeys(ob *object, keys []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(keys) == 0 {
		delete(st.locks, ob)
		return
	}
	for _, k := range keys {
		delete(st.locks[ob], strings.ToLower(k))
	}
}

// failNextJob queues a job-level failure for the next job claimed
// (claimJob).
func (st *orgStore) failNextJob(errorMessage string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failNext = append(st.failNext, errorMessage)
}

// orgStats returns the org model's counters (zero without a model).
func (st *orgStore) orgStats() OrgStats {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.model == nil {
		return OrgStats{}
	}
	return OrgStats{PeakInProgress: st.model.peak, LockFailures: st.model.lockFailures}
}
