package salesforce

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLimitInfo(t *testing.T) {
	cases := []struct {
		in   string
		want Usage
		ok   bool
	}{
		{"api-usage=18/5000", Usage{18, 5000}, true},
		{"api-usage=10018/100000;api-bursts=1/750", Usage{10018, 100000}, true},
		{"per-app-api-usage=17/250(appName=sfmigrate); api-usage=25/15000", Usage{25, 15000}, true},
		{" API-Usage = 3 / 9 ", Usage{3, 9}, true},
		{"", Usage{}, false},
		{"api-usage=abc/100", Usage{}, false},
		{"api-usage=5", Usage{}, false},
		{"api-usage=-1/5", Usage{}, false},
		{"garbage;;;", Usage{}, false},
	}
	for _, tc := range cases {
		got, ok := parseLimitInfo(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseLimitInfo(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		items []ErrorItem
		text  string
	}{
		{"array", `[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]`,
			[]ErrorItem{{ErrorCode: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [Name]", Fields: []string{"Name"}}}, ""},
		{"two items", `[{"errorCode":"A","message":"a"},{"errorCode":"B","message":"b"}]`,
			[]ErrorItem{{ErrorCode: "A", Message: "a"}, {ErrorCode: "B", Message: "b"}}, ""},
		{"object", `{"errorCode":"NOT_FOUND","message":"gone"}`, []ErrorItem{{ErrorCode: "NOT_FOUND", Message: "gone"}}, ""},
		{"oauth shape", `{"error":"invalid_grant","error_description":"expired"}`, []ErrorItem{{ErrorCode: "invalid_grant", Message: "expired"}}, ""},
		{"html", "<html><h1>503 Service Unavailable</h1></html>", nil, "<html><h1>503 Service Unavailable</h1></html>"},
		{"array of urls (300)", `["/services/data/v66.0/sobjects/X/a0B1","/services/data/v66.0/sobjects/X/a0B2"]`, nil,
			`["/services/data/v66.0/sobjects/X/a0B1","/services/data/v66.0/sobjects/X/a0B2"]`},
		{"empty", "  ", nil, ""},
		{"binary", "\xff\xfe oops", nil, "\uFFFD oops"},
	}
	for _, tc := range cases {
		items, text := parseErrorBody([]byte(tc.in))
		if diff := cmp.Diff(tc.items, items); diff != "" || text != tc.text {
			t.Errorf("%s: items (-want +got):\n%s text = %q, want %q", tc.name, diff, text, tc.text)
		}
	}
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`[{"errorCode":"X","message":"y","fields":["a"]}]`))
	f.Add([]byte(`{"error":"e"}`))
	f.Add([]byte("<html>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, text := parseErrorBody(b)
		if len(items) > 0 && text != "" {
			t.Fatalf("both items and text for %q", b)
		}
		e := &APIError{Status: 400, Method: "GET", Path: "/p", Errors: items, Body: text}
		if msg := e.Error(); !strings.HasPrefix(msg, "salesforce: GET /p: 400") {
			t.Fatalf("message %q", msg)
		}
	})
}

// TestShouldRetry is the retry decision table (salesforce-api.md 6.4, 1.4).
func TestShouldRetry(t *testing.T) {
	c := &Client{cfg: Config{MaxAttempts: 6, RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Second}}
	lost := &noAnswerError{method: "X", path: "/p", err: io.ErrUnexpectedEOF}
	api := func(status int, code, msg string) error {
		e := &APIError{Status: status}
		if code != "" {
			e.Errors = []ErrorItem{{ErrorCode: code, Message: msg}}
		}
		return e
	}
	errs := map[string]error{
		"lost":        lost,
		"429":         api(429, "", ""),
		"502":         api(502, "", ""),
		"503":         api(503, "SERVER_UNAVAILABLE", "Server too busy"),
		"500":         api(500, "UNKNOWN_EXCEPTION", "boom"),
		"504":         api(504, "", ""),
		"lock":        api(400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
		"concurrency": api(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
		"daily":       api(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
		"400":         api(400, "INVALID_FIELD", "No such column"),
		"404":         api(404, "NOT_FOUND", "The requested resource does not exist"),
		"multiple":    api(400, "BULK_API_ERROR", "Found multipe contents for job: <750>"),
		"other":       errors.New("json: cannot unmarshal"),
		// Without an answer, as net/http reports it (after stripURL).
		"nxdomain": &noAnswerError{method: "X", path: "/p", err: &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "acme.invalid", IsNotFound: true}}},
		"dns timeout": &noAnswerError{method: "X", path: "/p", err: &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "i/o timeout", Name: "acme.my.salesforce.com", IsTimeout: true}}},
		"refused": &noAnswerError{method: "X", path: "/p", err: &net.OpError{Op: "dial", Net: "tcp",
			Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
		"scheme mismatch": &noAnswerError{method: "X", path: "/p", err: http.ErrSchemeMismatch},
		"not tls":         &noAnswerError{method: "X", path: "/p", err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}},
		"untrusted cert": &noAnswerError{method: "X", path: "/p", err: &tls.CertificateVerificationError{
			Err: x509.UnknownAuthorityError{}}},
		// The token endpoint's answers (§1.3).
		"auth 400":        &AuthError{Status: 400, Code: "invalid_client", Description: "invalid client credentials"},
		"auth 503":        &AuthError{Status: 503},
		"auth rate limit": &AuthError{Status: 400, Code: "rate_limit_exceeded"},
	}
	want := map[repeat][]string{
		repeatIdempotent: {"lost", "429", "502", "503", "500", "504", "lock", "concurrency", "dns timeout", "refused", "auth 503", "auth rate limit"},
		repeatIfRefused:  {"429", "502", "503", "lock", "concurrency", "auth 503", "auth rate limit"},
		repeatIfNoAnswer: {"lost", "dns timeout", "refused", "auth 503", "auth rate limit"},
	}
	names := map[repeat]string{repeatIdempotent: "idempotent", repeatIfRefused: "if-refused", repeatIfNoAnswer: "if-no-answer"}
	for rep, retryable := range want {
		for name, err := range errs {
			got, wait := c.shouldRetry(t.Context(), &request{repeat: rep}, err, 1)
			exp := false
			for _, r := range retryable {
				exp = exp || r == name
			}
			if got != exp {
				t.Errorf("%s, %s: retry = %v, want %v", names[rep], name, got, exp)
			}
			if got && (wait <= 0 || wait > time.Second) {
				t.Errorf("%s, %s: wait %s", names[rep], name, wait)
			}
		}
	}
	if ok, _ := c.shouldRetry(t.Context(), &request{}, lost, 6); ok {
		t.Error("retried past MaxAttempts")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if ok, _ := c.shouldRetry(ctx, &request{}, lost, 1); ok {
		t.Error("retried with a cancelled context")
	}
	// Retry-After is honoured up to the cap.
	ra := &APIError{Status: 429, RetryAfter: "1"}
	if _, wait := c.shouldRetry(t.Context(), &request{}, ra, 1); wait != time.Second {
		t.Errorf("Retry-After 1: wait %s, want 1s", wait)
	}
	ra.RetryAfter = "3600"
	if _, wait := c.shouldRetry(t.Context(), &request{}, ra, 1); wait != time.Second {
		t.Errorf("Retry-After 3600: wait %s, want the 1s cap", wait)
	}
	if !isMultipleContents(errs["multiple"]) || isMultipleContents(errs["400"]) {
		t.Error("isMultipleContents")
	}
	// Classify, which WaitJob, the loader and the pipeline read, agrees.
	classes := map[string]Class{
		"lost": ClassTransient, "429": ClassTransient, "502": ClassTransient, "503": ClassTransient, "500": ClassTransient,
		"504": ClassTransient, "lock": ClassTransient, "concurrency": ClassTransient, "dns timeout": ClassTransient,
		"refused": ClassTransient, "auth 503": ClassTransient, "auth rate limit": ClassTransient,
		"daily": ClassRefused, "400": ClassRefused, "404": ClassRefused, "multiple": ClassRefused,
		"nxdomain": ClassConfig, "scheme mismatch": ClassConfig, "not tls": ClassConfig, "untrusted cert": ClassConfig,
		"auth 400": ClassConfig, "other": ClassOther,
	}
	for name, err := range errs {
		want, ok := classes[name]
		if !ok {
			t.Errorf("no class given for %s", name)
			continue
		}
		if got := Classify(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("Classify(%s) = %s, want %s", name, got, want)
		}
	}
	for err, want := range map[error]Class{
		nil: ClassNone,
		api(401, "INVALID_SESSION_ID", "Session expired or invalid"):        ClassTransient,
		fmt.Errorf("load: %w", context.Canceled):                            ClassOther,
		fmt.Errorf("wait: %w", ErrJobTimeout):                               ClassOther,
		&ConfigError{Connection: "c", Problems: []string{"x"}}:              ClassConfig,
		fmt.Errorf("%w (last failure: %v)", context.DeadlineExceeded, lost): ClassOther,
	} {
		if got := Classify(err); got != want {
			t.Errorf("Classify(%v) = %s, want %s", err, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{cfg: Config{RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 2 * time.Second}}
	for attempt, full := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		5: 1600 * time.Millisecond, 6: 2 * time.Second, 60: 2 * time.Second} {
		for range 200 {
			d := c.backoff(attempt)
			if d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, d, full/2, full)
			}
		}
	}
}

func TestCSVRecordCounter(t *testing.T) {
	cases := map[string]int64{
		"":                                     0,
		"a,b\n":                                0,
		"a,b":                                  0,
		"a,b\n1,2\n":                           1,
		"a,b\n1,2":                             1,
		"a,b\r\n1,2\r\n3,4\r\n":                2,
		"\"sf__Id\",x\n\"1\",\"a\nb\"\n":       1,
		"x\n\"he said \"\"hi\"\"\n\"\n2\n":     2,
		"x\n\n\n1\n":                           1,
		"\"h\"\n\"multi\nline\nvalue\"\n\"2\"": 2,
	}
	for in, want := range cases {
		var c csvRecordCounter
		// Feed byte by byte: state must survive chunk boundaries.
		for i := range len(in) {
			c.Write([]byte{in[i]})
		}
		if got := c.rows(); got != want {
			t.Errorf("rows(%q) = %d, want %d", in, got, want)
		}
	}
}

// The counter agrees with a plain byte-by-byte reading of the same rules
// on random CSV-ish input (quotes, doubled quotes, CR, LF, empty lines)
// fed in random pieces.
func TestCSVRecordCounterAgreesWithByteLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab,\"\"\n\n\r")
	for range 2000 {
		in := make([]byte, rng.IntN(200))
		for i := range in {
			in[i] = alphabet[rng.IntN(len(alphabet))]
		}
		var want byteLoopCounter
		want.write(in)
		var c csvRecordCounter
		for rest := in; len(rest) > 0; {
			k := 1 + rng.IntN(len(rest))
			c.Write(rest[:k])
			rest = rest[k:]
		}
		if c.records != want.records || c.inQuotes != want.inQuotes || c.lineBytes != want.lineBytes || c.rows() != want.rows() {
			t.Fatalf("%q: counter %+v, byte loop %+v", in, c, want)
		}
	}
}

// byteLoopCounter is the counter's rules read one byte at a time.
type byteLoopCounter struct{ csvRecordCounter }

func (c *byteLoopCounter) write(p []byte) {
	for _, b := range p {
		switch b {
		case '"':
			c.inQuotes = !c.inQuotes
			c.lineBytes = true
		case '\n':
			if c.inQuotes {
				continue
			}
			if c.lineBytes {
				c.records++
			}
			c.lineBytes = false
		case '\r':
		default:
			c.lineBytes = true
		}
	}
}

func BenchmarkCSVRecordCounter(b *testing.B) {
	var buf bytes.Buffer
	for i := range 10000 {
		fmt.Fprintf(&buf, "\"01t5g%013dAAA\",\"true\",\"P-%06d\",\"Sensor M6-%d\",\"PC-%05d-B\",\"Valve for food-grade applications, item %d\",\"Hardware\",\"true\",\"2975.68\",\"2026-10-25\",\"2016-05-10T12:50:20.000Z\"\n", i, i, i, i, i)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var c csvRecordCounter
		for rest := data; len(rest) > 0; {
			k := min(32*1024, len(rest))
			c.Write(rest[:k])
			rest = rest[k:]
		}
		if c.rows() != 9999 {
			b.Fatal(c.rows())
		}
	}
}

func TestCheckRefAndEscape(t *testing.T) {
	for _, bad := range []string{"", " ", "a/b", "x.inc", "HR.EMP", "a\nb", "trailing."} {
		if checkRef(bad) == nil {
			t.Errorf("checkRef(%q) accepted", bad)
		}
	}
	for _, good := range []string{"PRODUCT_PRICE", "a-b", "A B", "ü", "50%"} {
		if err := checkRef(good); err != nil {
			t.Errorf("checkRef(%q): %v", good, err)
		}
	}
	for in, want := range map[string]string{
		"PRODUCT_PRICE": "PRODUCT_PRICE",
		"A B":           "A%20B",
		"a+b&c=d":       "a%2Bb%26c%3Dd",
		"50%?#":         "50%25%3F%23",
		"ü":             "%C3%BC",
	} {
		if got := escapeSegment(in); got != want {
			t.Errorf("escapeSegment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJobInfoUnmarshal(t *testing.T) {
	var j JobInfo
	in := `{"id":"7505g00000AbCdEAAV","operation":"upsert","object":"Product2","createdById":"0055g00000XYZ12AAA",
	"createdDate":"2025-03-04T10:15:02.000+0000","systemModstamp":"bogus","state":"JobComplete","apiVersion":66.0,
	"numberRecordsProcessed":1200,"numberRecordsFailed":"3","retries":0,"totalProcessingTime":1500,"unknownField":{"x":1}}`
	if err := json.Unmarshal([]byte(in), &j); err != nil {
		t.Fatal(err)
	}
	want := JobInfo{ID: "7505g00000AbCdEAAV", State: JobComplete, Object: "Product2", Operation: OpUpsert, CreatedByID: "0055g00000XYZ12AAA",
		CreatedDate: time.Date(2025, 3, 4, 10, 15, 2, 0, time.UTC), APIVersion: "66.0",
		NumberRecordsProcessed: 1200, NumberRecordsFailed: 3, TotalProcessingTime: 1500 * time.Millisecond}
	if diff := cmp.Diff(want, j, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := json.Unmarshal([]byte(`{"state":"Open"}`), &j); err == nil {
		t.Error("a JobInfo without id was accepted")
	}
}

func TestAuthHints(t *testing.T) {
	for _, tc := range []struct{ code, desc, want string }{
		{"invalid_client_id", "client identifier invalid", "Consumer Key"},
		{"invalid_client", "invalid client credentials", "Consumer Secret"},
		{"invalid_grant", "request not supported on this domain", "My Domain"},
		{"invalid_grant", "no client credentials user enabled", "Run As"},
		{"invalid_grant", "client credentials flow not enabled", "Enable Client Credentials Flow"},
		{"unsupported_grant_type", "grant type not supported", "Enable Client Credentials Flow"},
		{"inactive_user", "", "inactive"},
	} {
		if got := authHint(400, tc.code, tc.desc); !strings.Contains(got, tc.want) {
			t.Errorf("authHint(%s, %s) = %q, want %q in it", tc.code, tc.desc, got, tc.want)
		}
	}
}

// TestScrub: a network error whose text contains the client secret is
// printed with the secret redacted, its cause kept for errors.As and the
// retry decision; any other error is returned as it is.
func TestScrub(t *testing.T) {
	c := &Client{secret: secret("s3cr3t")}
	dnsErr := &net.DNSError{Err: "no such host", Name: "s3cr3t.invalid", IsNotFound: true}
	got := c.scrub(&net.OpError{Op: "dial", Net: "tcp", Err: dnsErr})
	if strings.Contains(got.Error(), "s3cr3t") || !strings.Contains(got.Error(), redacted) {
		t.Errorf("scrub: message %q, want the secret redacted", got)
	}
	var found *net.DNSError
	if !errors.As(got, &found) || found != dnsErr || !permanentNetError(got) {
		t.Errorf("scrub lost the cause: %#v", got)
	}
	plain := errors.New("connection reset by peer")
	if got := c.scrub(plain); got != plain {
		t.Errorf("scrub(plain) = %v, want the same error", got)
	}
}

// A job followed after the poller stopped (an upload that closed its job
// while the load was being stopped) is answered at once: the load waits
// for every job it follows, so an unanswered one would hang it.
func TestPollerAnswersJobsFollowedAfterStop(t *testing.T) {
	p := newPoller(&Client{cfg: Config{PollInterval: time.Millisecond, JobTimeout: time.Minute}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	cancel()
	<-done
	select {
	case res := <-p.follow("750000000000001AAA", 10, time.Now()):
		if !errors.Is(res.err, context.Canceled) {
			t.Errorf("answer = %v, want the stop's cause", res.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a job followed after the poller stopped was never answered")
	}
}

// How long jobs take is learnt as seconds over records, each a decayed
// sum: a job under a tenth of the usual size, whose time is mostly the
// org's queue, teaches nothing, and a smaller job that is learnt moves the
// estimate by its share of the records. (Taken as a pace of its own, a 3-record follow-up
// of 2 s made the next 10,000-record job expected to take over an hour,
// and first polled that late.)
func TestPollerLearnsSecondsOverRecords(t *testing.T) {
	p := newPoller(&Client{cfg: Config{PollInterval: time.Second, JobTimeout: time.Hour}})
	t0 := time.Now()
	learn := func(records int64, took time.Duration) {
		f := &followed{records: records, closedAt: t0}
		p.mu.Lock()
		p.learnLocked(f, t0.Add(2*took)) // seen done at twice its run: its end is taken half way
		p.mu.Unlock()
	}
	for range 3 {
		learn(10_000, 5*time.Second)
	}
	if got := p.expected(10_000); got < 4900*time.Millisecond || got > 5100*time.Millisecond {
		t.Fatalf("after three 5 s jobs of 10,000 records: expected %s", got)
	}
	learn(3, 2*time.Second)
	if got := p.expected(10_000); got < 4900*time.Millisecond || got > 5100*time.Millisecond {
		t.Errorf("after a 3-record job of 2 s, a 10,000-record job is expected to take %s, want 5 s", got)
	}
	learn(2_000, 3*time.Second) // 2 s in the queue, 1 s of work
	if got := p.expected(10_000); got < 5*time.Second || got > 7*time.Second {
		t.Errorf("after a 2,000-record job of 3 s, a 10,000-record job is expected to take %s, want 5-7 s (a mean of paces gives 8 s)", got)
	}
}
