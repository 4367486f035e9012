package salesforce

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// poller follows closed jobs to their final state: one goroutine for all
// the jobs of a load, each polled near the moment it is expected to
// finish rather than on a fixed ladder.
//
// It learns how long the org takes: each job found finished tells the
// time from its close to its end, bracketed between the last poll that
// saw it running and the one that saw it done (the midpoint is taken, so
// the estimate does not drift up by the poll lag). The estimate is in
// seconds per record, an exponentially weighted mean over the jobs seen;
// a job of n records is first polled at its close + n·estimate, and each
// job found done brings forward the polls of the others the new estimate
// expects to be done already. Until the
// first job finished, and after a poll that found a job still running,
// polls follow a backoff from Config.PollInterval growing by half each time
// (doubling while under a sixteenth of the maximum) up to
// Config.PollMaxInterval: a 10-minute job costs about 25 polls with the
// defaults (2 s to 30 s), and the first jobs of a load, polled before
// anything is learnt, are noticed at most half their time late. So a steady load costs about two
// polls per job, the first of which usually finds it done.
//
// A job found InProgress says more: numberRecordsProcessed grows while it
// runs (docs/salesforce-api.md §2.3), so two polls of one job that saw it
// grow give the pace of a job in progress (records per second, also an
// exponentially weighted mean over the jobs), and with it the time the
// job still needs: it is polled again then, if that comes before its
// backoff would; a job found not yet started, once the pace is known, is
// left alone for at least half the time it needs to run (progress.go).
// This is what finds the jobs that waited in the org's queue behind
// others — their close says little about their end — within moments of
// their end, for a few polls each.
type poller struct {
	c *Client

	mu      sync.Mutex
	queue   pollQueue     // guarded by mu: by next poll time
	wake    chan struct{} // a job was added (buffered 1)
	perRec  float64       // guarded by mu: seconds per record (0: nothing learnt)
	secs    float64       // guarded by mu: decayed sum of learnt jobs' seconds
	recs    float64       // guarded by mu: decayed sum of their records
	jobs    float64       // guarded by mu: decayed count of them (recs/jobs: their usual size)
	learned int           // guarded by mu: jobs the estimate is made of
	pace    float64       // guarded by mu: records per second of a job in progress (0: not seen)
	polls   atomic.Int64  // GET job calls made
	// stopped is why run ended (nil while it runs): a job followed after
	// that is answered at once with it, never left waiting. Guarded by mu.
	stopped error
}

// followed is one job the poller follows.
type followed struct {
	id       string
	records  int64
	closedAt time.Time
	deadline time.Time
	next     time.Time     // when to poll next
	interval time.Duration // backoff after a poll that found it running (0: not started)
	running  time.Time     // the last poll that found it running (zero: none)
	runningN int64         // records processed at that poll
	progress progress      // what its polls saw of its processing (progress.go)
	last     *JobInfo
	lastErr  error
	done     chan pollResult
	index    int
}

type pollResult struct {
	info *JobInfo
	err  error
}

type pollQueue []*followed

func (q pollQueue) Len() int           { return len(q) }
func (q pollQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q pollQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *pollQueue) Push(x any)        { f := x.(*followed); f.index = len(*q); *q = append(*q, f) }
func (q *pollQueue) Pop() any {
	old := *q
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return f
}

// estimateWeight is the weight of the newest job in the estimate.
const estimateWeight = 0.3

// learnMinShare: the estimate does not learn from a job under this share
// of the size of the jobs it learnt from (a follow-up of a few rows next
// to jobs of thousands): its time is mostly the org's queue and overhead,
// which says nothing about how long those jobs take.
const learnMinShare = 10

func newPoller(c *Client) *poller {
	return &poller{c: c, wake: make(chan struct{}, 1)}
}

// follow adds a job closed at closedAt (with its number of records, 0 if
// unknown) and returns the channel its final state (or the reason it
// could not be had) arrives on.
func (p *poller) follow(id string, records int64, closedAt time.Time) <-chan pollResult {
	f := &followed{id: id, records: records, closedAt: closedAt, deadline: closedAt.Add(p.c.cfg.JobTimeout),
		done: make(chan pollResult, 1)}
	p.mu.Lock()
	if p.stopped != nil {
		// An upload that closed its job as the load was being stopped.
		p.mu.Unlock()
		f.done <- pollResult{err: fmt.Errorf("wait for job %s: %w", id, p.stopped)}
		return f.done
	}
	f.next = closedAt.Add(p.firstWaitLocked(records))
	heap.Push(&p.queue, f)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return f.done
}

// firstWaitLocked is the wait from a job's close to its first poll.
func (p *poller) firstWaitLocked(records int64) time.Duration {
	cfg := p.c.cfg
	if p.learned == 0 || records <= 0 {
		return cfg.PollInterval
	}
	d := time.Duration(p.perRec * float64(records) * float64(time.Second))
	return min(max(d, cfg.PollInterval), cfg.JobTimeout)
}

// learnLocked adds a finished job to the estimate.
func (p *poller) learnLocked(f *followed, seenDone time.Time) {
	if f.records <= 0 || p.learned > 0 && float64(f.records)*learnMinShare < p.recs/p.jobs {
		return
	}
	end := seenDone
	if e, ok := p.endFromProgressLocked(f, seenDone); ok {
		end = e
	} else if !f.running.IsZero() {
		end = f.running.Add(seenDone.Sub(f.running) / 2)
	} else {
		end = f.closedAt.Add(seenDone.Sub(f.closedAt) / 2)
	}
	// Seconds over records, each a decayed sum, rather than a mean of the
	// jobs' paces: a small job (a follow-up of a few rows) spends its time
	// mostly waiting in the org's queue, and taken as a pace it would make
	// every job after it look many times slower than it is.
	p.secs = (1-estimateWeight)*p.secs + end.Sub(f.closedAt).Seconds()
	p.recs = (1-estimateWeight)*p.recs + float64(f.records)
	p.jobs = (1-estimateWeight)*p.jobs + 1
	p.perRec = p.secs / p.recs
	p.learned++
}

// rescheduleLocked brings forward the next poll of every job the estimate
// now expects to be done sooner than its backoff would look: jobs closed
// before anything was learnt wait on a backoff that may overshoot their
// end by as much again.
func (p *poller) rescheduleLocked(now time.Time) {
	if p.learned == 0 {
		return
	}
	moved := false
	for _, f := range p.queue {
		if f.records <= 0 || f.progress.paced || f.progress.queued {
			continue // its progress, or its not having started, says better
		}
		due := f.closedAt.Add(time.Duration(p.perRec * float64(f.records) * float64(time.Second)))
		if due.Before(now) {
			due = now
		}
		if due.Before(f.next) {
			// Its backoff restarts from the estimate (see poll).
			f.next, f.interval, moved = due, 0, true
		}
	}
	if moved {
		heap.Init(&p.queue) // fixing entries one by one while walking them would skip some
	}
}

// expected is the estimated processing time of a job of n records (0:
// nothing learnt yet).
func (p *poller) expected(n int64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.learned == 0 {
		return 0
	}
	return time.Duration(p.perRec * float64(n) * float64(time.Second))
}

// run polls until ctx ends; the jobs still followed then get ctx's cause.
func (p *poller) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var f *followed
		wait := time.Hour
		if len(p.queue) > 0 {
			wait = time.Until(p.queue[0].next)
			if wait <= 0 {
				f = heap.Pop(&p.queue).(*followed)
			}
		}
		p.mu.Unlock()
		if f != nil {
			p.poll(ctx, f)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			p.stop(ctx)
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// stop ends every job still followed with ctx's cause.
func (p *poller) stop(ctx context.Context) {
	p.mu.Lock()
	p.stopped = context.Cause(ctx)
	q := p.queue
	p.queue = nil
	p.mu.Unlock()
	for _, f := range q {
		f.done <- pollResult{info: f.last, err: fmt.Errorf("wait for job %s: %w", f.id, context.Cause(ctx))}
	}
}

// poll makes one GET for f and delivers or reschedules it.
func (p *poller) poll(ctx context.Context, f *followed) {
	p.polls.Add(1)
	info, err := p.c.GetJob(ctx, f.id)
	now := time.Now()
	switch {
	case err == nil:
		f.last, f.lastErr = info, nil
		if info.State.Terminal() {
			p.mu.Lock()
			p.learnLocked(f, now)
			p.rescheduleLocked(now)
			p.mu.Unlock()
			f.done <- pollResult{info: info}
			return
		}
		f.running, f.runningN = now, info.NumberRecordsProcessed
	case ctx.Err() != nil:
		f.done <- pollResult{info: f.last, err: fmt.Errorf("wait for job %s: %w", f.id, context.Cause(ctx))}
		return
	case Classify(err) == ClassTransient:
		f.lastErr = err
		p.c.log.Warn("salesforce: polling a job failed; polling on", "job", f.id, "error", err.Error())
	default:
		f.done <- pollResult{info: f.last, err: fmt.Errorf("wait for job %s: %w", f.id, err)}
		return
	}
	if !now.Before(f.deadline) {
		state := JobState("unknown")
		if f.last != nil {
			state = f.last.State
		}
		err := fmt.Errorf("wait for job %s: %w: still %s after %s (JobTimeout %s)", f.id, ErrJobTimeout, state,
			now.Sub(f.closedAt).Round(time.Millisecond), p.c.cfg.JobTimeout)
		if f.lastErr != nil {
			err = fmt.Errorf("%w; last poll failed: %v", err, f.lastErr)
		}
		f.done <- pollResult{info: f.last, err: err}
		return
	}
	// Still running (or the poll failed): back off from the poll interval,
	// or, once the org's pace is known, from an eighth of the time the job
	// is expected to take (at least a quarter of the poll interval): a job
	// polled when it was due is usually a moment from its end.
	if f.interval == 0 {
		f.interval = p.c.cfg.PollInterval
		if e := p.expected(f.records); e > 0 {
			f.interval = max(e/8, p.c.cfg.PollInterval/4)
		}
	}
	f.next = now.Add(min(f.interval, time.Until(f.deadline)))
	if err == nil {
		// Its progress, or its not having started, may say better.
		p.mu.Lock()
		f.next = p.progressPollLocked(f, info, now, f.next)
		p.mu.Unlock()
	}
	if f.interval < p.c.cfg.PollMaxInterval/16 {
		f.interval *= 2 // a very short first interval: do not spend polls crawling up
	} else {
		f.interval += f.interval / 2
	}
	f.interval = min(f.interval, p.c.cfg.PollMaxInterval)
	p.mu.Lock()
	heap.Push(&p.queue, f)
	p.mu.Unlock()
}
