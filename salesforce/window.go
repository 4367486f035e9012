package salesforce

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Window bounds how many ingest jobs a load keeps in flight in the org at
// once: from the create call until the job reached a final state, whatever
// the client is doing with it (uploading, or waiting for Salesforce).
// Uploading and waiting are separate, so with a window wider than the
// number of parallel uploads the org always has closed jobs to process
// while the client uploads the next ones.
//
// The window adapts to the org, additive increase and multiplicative
// decrease, with a slow start: until the first sign of strain every job
// that ends without trouble widens it by one (it doubles per window of
// clean jobs); after that by 1/limit (one job per window of clean jobs),
// up to its maximum in both cases; a sign of strain
// halves it, down to its minimum: lock contention in the rows of a job
// (Salesforce re-processed parts of it and at least 5 % of its rows failed;
// see loader.release), a 429 or a
// concurrency REQUEST_LIMIT_EXCEEDED, the daily API allocation running
// low. A halving counts once per window of jobs finished, so a burst of
// signals from one moment does not collapse it. Every change is logged and
// kept (Changes) for the run's summary.
//
// A Window is safe for concurrent use; one Window may be shared by the
// loads of a client (they then share the org's capacity).
type Window struct {
	min, max int

	mu        sync.Mutex
	limit     float64       // guarded by mu; the window is floor(limit)
	inFlight  int           // guarded by mu
	finished  int           // guarded by mu: jobs released so far
	shrunkAt  int           // guarded by mu: finished at the last halving (-1: never)
	changed   chan struct{} // guarded by mu: closed and replaced on every change
	changes   []WindowChange
	dropped   int // changes not kept (beyond maxWindowChanges)
	onChange  func(WindowChange)
	lastAlloc time.Time
}

// WindowChange is one change of a Window's limit and why.
type WindowChange struct {
	At       time.Time `json:"at"`
	From     int       `json:"from"`
	To       int       `json:"to"`
	Reason   string    `json:"reason"`
	InFlight int       `json:"in_flight"`
}

// maxWindowChanges bounds the changes a Window keeps for the summary.
const maxWindowChanges = 200

// DefaultMaxJobsInFlight is the default maximum of a Window: Salesforce
// processes the jobs of an org about ten at a time and queues the rest,
// and a job waiting in its queue costs nothing but a poll now and then.
const DefaultMaxJobsInFlight = 25

// NewWindow returns a window starting at initial jobs, adapting between 1
// and max. initial is clamped to [1, max].
func NewWindow(initial, most int) (*Window, error) {
	if most < 1 {
		return nil, fmt.Errorf("salesforce: window: the maximum of jobs in flight must be at least 1, not %d", most)
	}
	initial = min(max(initial, 1), most)
	return &Window{min: 1, max: most, limit: float64(initial), shrunkAt: -1, changed: make(chan struct{})}, nil
}

// OnChange sets a function called (outside the window's lock) with every
// change of the limit, for logs.
func (w *Window) OnChange(fn func(WindowChange)) {
	w.mu.Lock()
	w.onChange = fn
	w.mu.Unlock()
}

// Limit is the number of jobs the window allows in flight now.
func (w *Window) Limit() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int(w.limit)
}

// InFlight is the number of jobs in flight now.
func (w *Window) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inFlight
}

// Changes returns the changes of the limit so far (at most the last 200
// are kept; dropped says how many earlier ones were not).
func (w *Window) Changes() (changes []WindowChange, dropped int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]WindowChange(nil), w.changes...), w.dropped
}

// Acquire waits for room for one more job in flight, or for ctx to end.
func (w *Window) Acquire(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.inFlight < int(w.limit) {
			w.inFlight++
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// Unacquire gives back room taken by Acquire for a job that was never
// started (there was no file to load).
func (w *Window) Unacquire() {
	w.mu.Lock()
	w.inFlight--
	w.broadcastLocked()
	w.mu.Unlock()
}

// Release frees the room of a job that reached its end (or failed before
// it was created). clean says the job ended without trouble: it widens the window.
func (w *Window) Release(clean bool) {
	w.mu.Lock()
	w.inFlight--
	w.finished++
	var ch *WindowChange
	if clean && w.limit < float64(w.max) {
		from := int(w.limit)
		step := 1.0 // slow start: doubles per window until the first strain
		if w.shrunkAt >= 0 {
			step = 1 / w.limit
		}
		w.limit = math.Min(float64(w.max), w.limit+step)
		if to := int(w.limit); to != from {
			ch = w.recordLocked(from, to, "jobs finish without strain")
		}
	}
	w.broadcastLocked()
	fn := w.onChange
	w.mu.Unlock()
	if ch != nil && fn != nil {
		fn(*ch)
	}
}

// Shrink halves the window for the reason given, at most once per window of
// jobs finished since the last halving. It reports whether it shrank.
func (w *Window) Shrink(reason string) bool {
	w.mu.Lock()
	if w.shrunkAt >= 0 && w.finished-w.shrunkAt < int(w.limit) || int(w.limit) <= w.min {
		w.mu.Unlock()
		return false
	}
	from := int(w.limit)
	w.limit = math.Max(float64(w.min), math.Floor(w.limit/2))
	w.shrunkAt = w.finished
	ch := w.recordLocked(from, int(w.limit), reason)
	w.broadcastLocked()
	fn := w.onChange
	w.mu.Unlock()
	if fn != nil {
		fn(*ch)
	}
	return true
}

// NoteAPIUsage shrinks the window when the org's daily API allocation runs
// low (90 % used or more), at most once a minute.
func (w *Window) NoteAPIUsage(u Usage) {
	if u.Max <= 0 || u.Used*10 < u.Max*9 {
		return
	}
	w.mu.Lock()
	recent := time.Since(w.lastAlloc) < time.Minute
	if !recent {
		w.lastAlloc = time.Now()
	}
	w.mu.Unlock()
	if !recent {
		w.Shrink(fmt.Sprintf("the org has used %d of its %d daily API calls", u.Used, u.Max))
	}
}

func (w *Window) recordLocked(from, to int, reason string) *WindowChange {
	c := WindowChange{At: time.Now().UTC(), From: from, To: to, Reason: reason, InFlight: w.inFlight}
	if len(w.changes) == maxWindowChanges {
		w.changes = w.changes[1:]
		w.dropped++
	}
	w.changes = append(w.changes, c)
	return &c
}

func (w *Window) broadcastLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}
