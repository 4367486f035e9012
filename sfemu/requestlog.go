package sfemu

import (
	"net/http"
	"strings"
	"sync"
)

// LoggedRequest is one request a RequestLog saw.
type LoggedRequest struct {
	Method string
	Path   string
}

// RequestLog is an http.Handler that records the method and path of every
// request before passing it to the handler it wraps, so that a test can
// tell exactly what a client asked of the emulated org (say, that a check
// wrote nothing).
type RequestLog struct {
	h    http.Handler
	mu   sync.Mutex
	reqs []LoggedRequest // guarded by mu
}

// LogRequests wraps h (usually a *Server) in a RequestLog.
func LogRequests(h http.Handler) *RequestLog { return &RequestLog{h: h} }

// ServeHTTP records the request and serves it.
func (l *RequestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, LoggedRequest{Method: r.Method, Path: r.URL.Path})
	l.mu.Unlock()
	l.h.ServeHTTP(w, r)
}

// Requests returns every request seen so far, in arrival order.
func (l *RequestLog) Requests() []LoggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LoggedRequest(nil), l.reqs...)
}

// Writes returns the requests that may change the org: every method other
// than GET and HEAD, except the OAuth token request (signing in changes no
// data).
func (l *RequestLog) Writes() []LoggedRequest {
	var out []LoggedRequest
	for _, r := range l.Requests() {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || strings.HasPrefix(r.Path, "/services/oauth2/token") {
			continue
		}
		out = append(out, r)
	}
	return out
}

// Reset forgets the requests seen so far.
func (l *RequestLog) Reset() {
	l.mu.Lock()
	l.reqs = nil
	l.mu.Unlock()
}
