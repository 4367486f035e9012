package sfemu

import (
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault makes matching requests misbehave.
//
// A fault matches a request by Method and Path. Faults are considered in
// the order added; a matching fault fires when its Share draw succeeds
// (always, without Share). Only a fault that fires spends one of its
// Count, and it is removed once its Count is spent.
//
// A fault with an outcome (Status, Drop or DropAfterHandling) decides how
// the request is answered: the first outcome fault that fires decides, and
// later outcome faults are not considered for that request at all, so they
// neither draw nor spend. Faults with only Latency fire on every match;
// the latencies of all faults that fire add up.
type Fault struct {
	// Method matches the HTTP method; "" matches any.
	Method string
	// Path is a substring of the URL path to match ("/batches",
	// "/jobs/ingest/", "/oauth2/token"); "" matches any path.
	Path string
	// Count is how many times the fault fires before it is removed. With
	// Share > 0, Count 0 means no limit; without Share, Count 0 means once.
	Count int
	// Share fires the fault on this share (0..1) of the requests that
	// match it (drawn from the seed of WithShuffleResults).
	Share float64
	// Status answers this HTTP status with the real error body (429, 500,
	// 502, 503, ...) without handling the request.
	Status int
	// Drop cuts the connection before handling: nothing was done.
	Drop bool
	// DropAfterHandling handles the request fully, then cuts the connection
	// before the response: the work is done but the answer is lost.
	DropAfterHandling bool
	// Latency is added before handling.
	Latency time.Duration
}

type armedFault struct {
	f    Fault
	left int // remaining firings; -1 = unlimited
}

// faultState holds the injected faults.
type faultState struct {
	mu     sync.Mutex
	faults []*armedFault // guarded by mu
	rng    *mrand.Rand   // guarded by mu
}

type faultAction struct {
	latency   time.Duration
	status    int
	drop      bool
	dropAfter bool
}

// AddFault arms a fault; it takes effect for the next request.
func (s *Server) AddFault(f Fault) {
	left := f.Count
	if f.Share > 0 && f.Count == 0 {
		left = -1
	}
	if f.Share <= 0 && f.Count <= 0 {
		left = 1
	}
	s.faults.add(&armedFault{f: f, left: left})
}

// ClearFaults removes every fault added with AddFault.
func (s *Server) ClearFaults() { s.faults.clear() }

func (fs *faultState) add(af *armedFault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = append(fs.faults, af)
}

func (fs *faultState) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = nil
}

func (fs *faultState) match(r *http.Request) faultAction {
	var act faultAction
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.faults) == 0 {
		return act
	}
	decided := false
	kept := fs.faults[:0]
	for _, af := range fs.faults {
		kept = append(kept, af)
		f := af.f
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) || !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		outcome := f.Status != 0 || f.Drop || f.DropAfterHandling
		if outcome && decided {
			continue // another fault already answers this request
		}
		if f.Share > 0 && f.Share < 1 && fs.rng.Float64() >= f.Share {
			continue
		}
		act.latency += f.Latency
		if outcome {
			decided = true
			act.status, act.drop, act.dropAfter = f.Status, f.Drop, f.DropAfterHandling
		}
		if af.left > 0 {
			if af.left--; af.left == 0 {
				kept = kept[:len(kept)-1]
			}
		}
	}
	clear(fs.faults[len(kept):])
	fs.faults = kept
	return act
}

// writeFault answers an injected status with the body Salesforce (or its
// edge) sends for it (salesforce-api.md 6.3, 6.4).
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, status int) {
	if strings.HasPrefix(r.URL.Path, "/services/oauth2/") && status < 500 && status != http.StatusTooManyRequests {
		writeJSON(w, status, oauthErr("invalid_request", http.StatusText(status)))
		return
	}
	switch status {
	case http.StatusServiceUnavailable:
		writeError(w, newAPIError(status, "SERVER_UNAVAILABLE", "Server too busy"))
	case http.StatusTooManyRequests:
		// 429 is not a documented status of these APIs (6.4); the body is [I].
		w.Header().Set("Retry-After", "1")
		writeError(w, newAPIError(status, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."))
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		// The edge answers these, in HTML rather than the API envelope
		// (6.1), without the org's Sforce-Limit-Info.
		w.Header().Del("Sforce-Limit-Info")
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><head><title>" + http.StatusText(status) + "</title></head><body><h1>" + http.StatusText(status) + "</h1></body></html>\n"))
	case http.StatusForbidden:
		writeError(w, newAPIError(status, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
	case http.StatusUnauthorized:
		writeError(w, errSession())
	case http.StatusNotFound:
		writeError(w, errNotFound())
	default:
		if status >= 500 {
			writeError(w, errUnknown(newErrorID()))
			return
		}
		writeError(w, newAPIError(status, "API_ERROR", http.StatusText(status)))
	}
}

// LockRecords makes rows of object whose external-ID value is one of keys
// fail with UNABLE_TO_LOCK_ROW, in bulk jobs and REST upserts, until
// UnlockRecords. Keys match any External ID field of the object.
func (s *Server) LockRecords(object string, keys ...string) {
	s.lockRecords("LockRecords", object, -1, keys)
}

// LockRecordsFor is LockRecords for a contention that passes: each key's
// row fails with UNABLE_TO_LOCK_ROW on its first `attempts` writes, then
// saves normally, as a record locked by another transaction does once that
// transaction commits. attempts <= 0 locks until UnlockRecords.
func (s *Server) LockRecordsFor(object string, attempts int, keys ...string) {
	if attempts <= 0 {
		attempts = -1
	}
	s.lockRecords("LockRecordsFor", object, attempts, keys)
}

func (s *Server) lockRecords(caller, object string, attempts int, keys []string) {
	ob := s.org.object(object)
	if ob == nil {
		panic("sfemu: " + caller + ": unknown object " + object)
	}
	s.store.lockKeys(ob, attempts, keys)
}

// HasObject reports whether the org defines the object (case-insensitive).
func (s *Server) HasObject(name string) bool { return s.org.object(name) != nil }

// UnlockRecords releases keys locked by LockRecords; no keys releases all
// of the object's.
func (s *Server) UnlockRecords(object string, keys ...string) {
	ob := s.org.object(object)
	if ob == nil {
		return
	}
	s.store.unlockKeys(ob, keys)
}

// FailNextJob makes the next job to be processed end Failed with this
// errorMessage, without processing any of its rows (all unprocessed).
func (s *Server) FailNextJob(errorMessage string) {
	s.store.failNextJob(errorMessage)
}
