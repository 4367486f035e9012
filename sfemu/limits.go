package sfemu

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Request limits. A hostile or broken client must not be able to hold a
// goroutine, a connection or the store for long: every request has a
// deadline, and a request body that stops arriving (or a client that stops
// reading its answer) is cut after the stall timeout. docs/emulator.md
// lists these with the limits of the http.Server that cmd/sfmigrate runs.

// DefaultRequestTimeout is how long one request may run: Salesforce lets a
// REST call run up to 10 minutes (salesforce-api.md §0).
const DefaultRequestTimeout = 10 * time.Minute

// DefaultStallTimeout is how long the emulator waits for the next bytes of
// a request body, or for the client to take the next bytes of an answer.
const DefaultStallTimeout = time.Minute

// WithRequestTimeout sets how long one request may run (default
// DefaultRequestTimeout). A query still scanning at the deadline answers
// 400 QUERY_TIMEOUT; a body still arriving is cut.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) { o.requestTimeout = d }
}

// WithStallTimeout sets how long a request body may pause, and how long a
// client may leave an answer unread, before the connection is cut (default
// DefaultStallTimeout).
func WithStallTimeout(d time.Duration) Option {
	return func(o *options) { o.stallTimeout = d }
}

// limitRequest gives r the request deadline and wraps its body and w so
// that every read and write has to make progress within the stall
// timeout. It needs the connection's deadlines (http.ResponseController);
// where a ResponseWriter has none (a test recorder), only the context
// deadline applies.
func (s *Server) limitRequest(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.requestTimeout)
	deadline, _ := ctx.Deadline()
	r = r.WithContext(ctx)
	rc := http.NewResponseController(w)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &stallReader{rc: rc, body: r.Body, stall: s.opts.stallTimeout, deadline: deadline}
	}
	return &stallWriter{ResponseWriter: w, rc: rc, stall: s.opts.stallTimeout}, r, cancel
}

// stallReader sets the connection's read deadline before every read: the
// next bytes must come within the stall timeout, and none after the
// request deadline.
type stallReader struct {
	rc       *http.ResponseController
	body     io.ReadCloser
	stall    time.Duration
	deadline time.Time
	last     time.Time // the deadline last set, to skip needless updates
}

func (b *stallReader) Read(p []byte) (int, error) {
	b.last = setDeadline(b.rc.SetReadDeadline, b.last, b.stall, b.deadline)
	n, err := b.body.Read(p)
	if err == io.EOF && !b.last.IsZero() {
		// net/http now reads the connection in the background to notice a
		// client that leaves, and would take a stall deadline for one and
		// cancel the request: wait until the request deadline instead.
		_ = b.rc.SetReadDeadline(b.deadline)
		b.last = b.deadline
	}
	return n, err
}

func (b *stallReader) Close() error { return b.body.Close() }

// stallWriter does the same for the answer: the client must take each
// write within the stall timeout. The request deadline does not cut the
// answer: a request that ran out of time still gets its error.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	last  time.Time
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.last = setDeadline(w.rc.SetWriteDeadline, w.last, w.stall, time.Time{})
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// setDeadline moves a connection deadline to now+stall (never past the
// request deadline) unless the one set last is still more than half the
// stall away, so that a fast stream of small reads costs no clock reads
// beyond one time.Now each. A zero limit means none. It returns the
// deadline now in force.
func setDeadline(set func(time.Time) error, last time.Time, stall time.Duration, limit time.Time) time.Time {
	now := time.Now()
	if !last.IsZero() && last.Sub(now) > stall/2 {
		return last
	}
	d := now.Add(stall)
	if !limit.IsZero() && d.After(limit) {
		d = limit
	}
	if set(d) != nil {
		return time.Time{} // not supported here: nothing to keep
	}
	return d
}
