package salesforce_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// testEnv is one org (emulated unless built with -tags sforg) and a client
// for it. Requests go over real HTTP; requests counts them on the way.
type testEnv struct {
	client   *salesforce.Client
	emu      *sfemu.Server // nil against a real org
	url      string
	baseHTTP *http.Client
	requests *requestLog
	logs     *syncBuffer
}

// needEmu skips a test that needs the emulator's hooks (faults, clock,
// processing control) when the suite runs against a real org.
func (e *testEnv) needEmu(t testing.TB) {
	t.Helper()
	if e.emu == nil {
		t.Skip("needs the emulator's fault hooks; not available against a real org")
	}
}

// newClient builds a client with test-speed defaults, adjusted by cfg,
// sending through a request-counting transport and logging to e.logs.
func (e *testEnv) newClient(t testing.TB, base salesforce.Config, cfg func(*salesforce.Config)) *salesforce.Client {
	t.Helper()
	base.PollInterval = time.Millisecond
	base.PollMaxInterval = 10 * time.Millisecond
	base.RetryBaseDelay = time.Millisecond
	base.RetryMaxDelay = 5 * time.Millisecond
	if cfg != nil {
		cfg(&base)
	}
	if e.requests == nil {
		e.requests = &requestLog{}
		e.logs = &syncBuffer{}
	}
	hc := *e.baseHTTP
	inner := hc.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	hc.Transport = &countingTransport{next: inner, log: e.requests}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := salesforce.New(base, salesforce.WithHTTPClient(&hc), salesforce.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requestLog records "METHOD path" of every request sent, and every
// bearer token sent, so tests can check none leaks.
type requestLog struct {
	mu     sync.Mutex
	reqs   []string
	tokens map[string]bool
}

func (l *requestLog) add(s string) {
	l.mu.Lock()
	l.reqs = append(l.reqs, s)
	l.mu.Unlock()
}

// count returns how many requests had this method and a path containing sub.
func (l *requestLog) count(method, sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		m, p, _ := strings.Cut(r, " ")
		if (method == "" || m == method) && strings.Contains(p, sub) {
			n++
		}
	}
	return n
}

func (l *requestLog) reset() {
	l.mu.Lock()
	l.reqs = nil
	l.mu.Unlock()
}

// countingTransport is a real transport that also notes each request.
type countingTransport struct {
	next http.RoundTripper
	log  *requestLog
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.log.add(r.Method + " " + r.URL.Path)
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		t.log.mu.Lock()
		if t.log.tokens == nil {
			t.log.tokens = map[string]bool{}
		}
		t.log.tokens[tok] = true
		t.log.mu.Unlock()
	}
	return t.next.RoundTrip(r)
}

// assertNoSecrets checks that no bearer token sent so far, and no client
// secret, appears in the client's log or in the given texts.
func (e *testEnv) assertNoSecrets(t testing.TB, texts ...string) {
	t.Helper()
	e.requests.mu.Lock()
	secrets := []string{sfemu.TestClientSecret}
	for tok := range e.requests.tokens {
		secrets = append(secrets, tok)
	}
	e.requests.mu.Unlock()
	if len(secrets) < 2 && !realOrg {
		t.Error("no bearer token was seen; the check checks nothing")
	}
	all := e.logs.String() + strings.Join(texts, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a secret or token appears in the log or an error")
		}
	}
}

// resultTexts renders results the way a caller would print them.
func resultTexts(res []salesforce.LoadResult) []string {
	var out []string
	for _, r := range res {
		out = append(out, fmt.Sprintf("%+v %#v", r, r))
		if r.Err != nil {
			out = append(out, r.Err.Error())
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent log writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// upsertProducts is the job spec most tests use.
var upsertProducts = salesforce.JobSpec{Object: "Product2", Operation: salesforce.OpUpsert, ExternalIDField: "External_Id__c"}

// writeProducts writes a Product2 CSV with rows keyed prefix-00000... and
// returns its path.
func writeProducts(t testing.TB, dir, name, prefix string, rows int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "External_Id__c,Name,ProductCode,Description")
	for i := range rows {
		fmt.Fprintf(w, "%s-%05d,Product %s %d,PC-%d,\"line one, with comma\nline \"\"two\"\"\"\n", prefix, i, prefix, i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// countRecords asks the org how many records of object match where
// (a SOQL condition, or "" for all).
func (e *testEnv) countRecords(t testing.TB, object, where string) int64 {
	t.Helper()
	q := "SELECT COUNT() FROM " + object
	if where != "" {
		q += " WHERE " + where
	}
	n, err := e.client.Query(t.Context(), q, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countProducts counts the Product2 records whose External_Id__c starts
// with prefix. The emulator's SOQL subset has no LIKE, so it reads the
// keys (page by page) and counts here.
func (e *testEnv) countProducts(t testing.TB, prefix string) int64 {
	t.Helper()
	if realOrg {
		return e.countRecords(t, "Product2", "External_Id__c LIKE '"+prefix+"%'")
	}
	var n int64
	_, err := e.client.Query(t.Context(), "SELECT External_Id__c FROM Product2", func(rec map[string]any) error {
		if k, _ := rec["External_Id__c"].(string); strings.HasPrefix(k, prefix) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// field reads one field of the record with the given external id.
func (e *testEnv) field(t testing.TB, object, keyField, key, field string) (string, bool) {
	t.Helper()
	var val string
	found := false
	_, err := e.client.Query(t.Context(), fmt.Sprintf("SELECT %s FROM %s WHERE %s = '%s'", field, object, keyField, key),
		func(rec map[string]any) error {
			found = true
			if v, ok := rec[field]; ok && v != nil {
				val = fmt.Sprint(v)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return val, found
}

// readCSV parses a result file with a real CSV reader.
func readCSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil && err != io.EOF {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// column returns the values of the named column (header row excluded).
func column(t testing.TB, recs [][]string, name string) []string {
	t.Helper()
	if len(recs) == 0 {
		return nil
	}
	idx := -1
	for i, h := range recs[0] {
		if h == name {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("no column %q in header %q", name, recs[0])
	}
	var out []string
	for _, r := range recs[1:] {
		out = append(out, r[idx])
	}
	return out
}

// jobsByState counts the emulator's jobs per state.
func (e *testEnv) jobsByState() map[string]int {
	m := map[string]int{}
	for _, j := range e.emu.Jobs() {
		m[string(j.State)]++
	}
	return m
}
