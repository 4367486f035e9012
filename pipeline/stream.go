package pipeline

import (
	"sync"
	"time"
)

// Follow-ups join the running load. A batch whose job ended with rows
// worth sending again (followup.go) is settled as soon as the collector
// has saved its results, and its follow-up is handed to the loader that is
// still uploading the other batches, followUpDelay after. Without this,
// the rows of the first job waited for the last job of the whole upload
// before they were sent again.
//
// followStream tells the feeder when it may stop: when the queue of
// extracted batches has ended and nothing is owed to it any more, that
// is every file it handed to the loader is resolved (its job ended and,
// when it needed one, its follow-up was planned) and every follow-up
// planned was handed on. Settling that fails here is left to the round
// that follows the load (planFollowUps), which tries it again and reports
// the error.
type followStream struct {
	mu      sync.Mutex
	owed    int   // files handed and not resolved, follow-ups planned and not handed on
	due     []int // follow-ups whose delay has passed
	timers  []*time.Timer
	stopped bool
	wake    chan struct{} // cap 1: owed or due changed
}

func newFollowStream() *followStream { return &followStream{wake: make(chan struct{}, 1)} }

func (s *followStream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// handed counts a file given to the loader; resolved must follow.
func (s *followStream) handed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owed++
}

// resolved says a handed file needs nothing more from the feeder.
func (s *followStream) resolved() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owed--
	s.signal()
}

// later hands follow-up idx to the feeder after delay. Called before the
// file that led to it is resolved, so the feeder does not stop in between.
func (s *followStream) later(idx int, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return // recorded in the manifest: the next round or run loads it
	}
	s.owed++
	s.timers = append(s.timers, time.AfterFunc(delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.stopped {
			s.due = append(s.due, idx)
			s.signal()
		}
	}))
}

// take returns the follow-ups due and whether nothing else is owed.
func (s *followStream) take() (due []int, idle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	due, s.due = s.due, nil
	s.owed -= len(due)
	return due, s.owed == 0
}

// stop ends the stream: follow-ups not handed on yet stay recorded for
// the next round or run.
func (s *followStream) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for _, t := range s.timers {
		t.Stop()
	}
}
