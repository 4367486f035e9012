package salesforce

import "time"

// progress is what the polls of one job saw of its processing: a job in
// progress reports the records processed so far, which grow as it runs.
type progress struct {
	firstAt time.Time // the first poll that found records processed (zero: none yet)
	firstN  int64     // the records processed then
	pace    float64   // records per second since then (0: no growth seen yet)
	paced   bool      // its next poll is timed by its progress
	ending  bool      // and is meant to find it done
	early   int       // polls meant to find it done that found it still running
	queued  bool      // its last poll found it not started, with the pace known
}

// progressPollLocked returns when to poll f next, given that a poll at
// now found it still running (info) and its backoff would poll it at
// backoff.
//
// A job InProgress whose size is known is polled when it should end, if
// that is sooner: now + the records still to do / the pace, its own (from
// the growth since its first poll that found records processed) or else
// the pace learnt from the other jobs. Records are committed in chunks,
// so the count seen lags the true one and the time errs late by up to a
// chunk, never early at a steady pace. A job that far from its end (more
// than two poll intervals) is polled half a poll interval before it
// instead, where its own pace, measured over a longer stretch, times the
// end closely: one poll more per long job. A job found InProgress with
// records processed while no pace is known yet is polled again half a
// poll interval later, to measure one. A poll meant to find the job done
// that finds it still running (its pace slowed, or it is busy past its
// last record) is followed by one at least a twentieth of the poll
// interval later, and each further time at least twice as long: a job
// that stalls near its end costs a few polls more, not one per moment.
//
// A job still UploadComplete once the pace is known has not started: it
// cannot end before it has run its records, and even at twice the pace
// seen (an org runs a lone job faster) that takes n / (2·pace); it is not
// polled before then (nor later than twice the longest poll interval, in
// case the pace seen misleads), nor brought forward when other jobs end
// (they say nothing of when the org starts it). This is what keeps the jobs that
// wait in the org's queue, behind the ones it processes, from costing a
// poll at every turn.
func (p *poller) progressPollLocked(f *followed, info *JobInfo, now, backoff time.Time) time.Time {
	pr := &f.progress
	if pr.ending {
		pr.early++
	}
	pr.paced, pr.ending, pr.queued = false, false, false
	n, done := f.records, info.NumberRecordsProcessed
	if n <= 0 {
		return backoff
	}
	if info.State == JobUploadComplete {
		if p.pace == 0 {
			return backoff
		}
		pr.queued = true
		wait := min(time.Duration(float64(n)/(2*p.pace)*float64(time.Second)), 2*p.c.cfg.PollMaxInterval)
		at := now.Add(wait)
		if at.After(f.deadline) {
			at = f.deadline
		}
		if at.After(backoff) {
			return at
		}
		return backoff
	}
	if info.State != JobInProgress {
		return backoff
	}
	switch {
	case done <= 0:
	case pr.firstAt.IsZero():
		pr.firstAt, pr.firstN = now, done
	case done > pr.firstN:
		if secs := now.Sub(pr.firstAt).Seconds(); secs > 0 {
			pr.pace = float64(done-pr.firstN) / secs
			if p.pace == 0 {
				p.pace = pr.pace
			} else {
				p.pace = estimateWeight*pr.pace + (1-estimateWeight)*p.pace
			}
		}
	}
	pace := pr.pace
	if pace == 0 {
		pace = p.pace
	}
	gap := max(p.c.cfg.PollInterval/20, time.Millisecond) << min(max(pr.early-1, 0), 20)
	var at time.Time
	switch left := time.Duration(float64(max(n-done, 0)) / pace * float64(time.Second)); {
	case pace == 0 && done <= 0:
		return backoff
	case pace == 0:
		// Records processed, no pace known: look again soon to measure it.
		at = now.Add(max(p.c.cfg.PollInterval/2, gap))
	case left > 2*p.c.cfg.PollInterval:
		// Far from its end, where a pace a few percent off errs by more
		// than the poll is worth: look half a poll interval before,
		// with a longer stretch of its own progress to time the end by.
		pr.paced = true
		at = now.Add(left - p.c.cfg.PollInterval/2)
	default:
		pr.paced, pr.ending = true, true
		at = now.Add(max(left, gap))
	}
	if at.Before(backoff) {
		return at
	}
	pr.ending = false // the backoff comes first: not a poll timed to find it done
	return backoff
}

// endFromProgressLocked estimates when f, found done at seenDone, ended:
// from the records its last poll found processed and its pace, between
// that poll and seenDone. ok is false when that poll saw none processed
// or no pace is known.
func (p *poller) endFromProgressLocked(f *followed, seenDone time.Time) (time.Time, bool) {
	pace := f.progress.pace
	if pace == 0 {
		pace = p.pace
	}
	if f.running.IsZero() || f.runningN <= 0 || pace == 0 || f.records <= 0 {
		return time.Time{}, false
	}
	end := f.running.Add(time.Duration(float64(max(f.records-f.runningN, 0)) / pace * float64(time.Second)))
	if end.After(seenDone) {
		end = seenDone
	}
	return end, true
}
