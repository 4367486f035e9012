package salesforce_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// The tests here put a small proxy in front of the emulator that answers
// some requests itself, the way the edge in front of a Salesforce instance
// (or a corporate proxy) does: HTML error pages, bodies cut short, answers
// the emulator has no fault for. Everything still goes over real HTTP.

// edgeEnv starts an emulator behind a proxy. intercept sees each request
// first and returns true when it answered it.
func edgeEnv(t *testing.T, cfg func(*salesforce.Config), intercept func(w http.ResponseWriter, r *http.Request, emu http.Handler) bool) *testEnv {
	t.Helper()
	if realOrg {
		t.Skip("needs an emulated org behind a test proxy")
	}
	emu := sfemu.New()
	t.Cleanup(emu.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" || !intercept(w, r, emu) {
			emu.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	env := &testEnv{emu: emu, url: srv.URL, baseHTTP: srv.Client()}
	env.client = env.newClient(t, salesforce.Config{LoginURL: srv.URL, ClientID: sfemu.TestClientID, ClientSecret: sfemu.TestClientSecret}, cfg)
	return env
}

// firstN answers the first n requests whose path contains sub with status,
// content type and body.
func firstN(n int64, sub string, status int, ctype, body string, header ...string) func(http.ResponseWriter, *http.Request, http.Handler) bool {
	var seen atomic.Int64
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		if !strings.Contains(r.URL.Path, sub) || seen.Add(1) > n {
			return false
		}
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		w.Write([]byte(body))
		return true
	}
}

// TestEdgeErrorPages: an HTML 502 from the edge is retried; a huge error
// page is kept as text, cut to 1 MiB, and shortened in the message.
func TestEdgeErrorPages(t *testing.T) {
	env := edgeEnv(t, nil, firstN(1, "/describe", 502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"))
	if _, err := env.client.Describe(t.Context(), "Product2"); err != nil {
		t.Fatalf("a single 502 from the edge was not retried: %v", err)
	}
	if n := env.requests.count("GET", "/describe"); n != 2 {
		t.Errorf("describe requests = %d, want 2", n)
	}

	env = edgeEnv(t, nil, firstN(1, "/describe", 404, "text/html", strings.Repeat("x", 3<<20)))
	_, err := env.client.Describe(t.Context(), "Product2")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || len(apiErr.Errors) != 0 {
		t.Fatalf("err = %v", err)
	}
	if len(apiErr.Body) != 1<<20 {
		t.Errorf("kept %d bytes of the body, want 1 MiB", len(apiErr.Body))
	}
	if len(err.Error()) > 1000 {
		t.Errorf("error message is %d bytes long", len(err.Error()))
	}
}

// TestConcurrencyLimitRetried: the concurrent-request limit (403
// REQUEST_LIMIT_EXCEEDED naming ConcurrentPerOrgLongTxn) is retried after
// a pause, even for job creation: the request was refused.
func TestConcurrencyLimitRetried(t *testing.T) {
	body := `[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`
	env := edgeEnv(t, nil, firstN(2, "/jobs/ingest", 403, "application/json", body))
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	if n := env.requests.count("POST", "/jobs/ingest"); n != 3 {
		t.Errorf("create requests = %d, want 3", n)
	}
	if jobs := env.emu.Jobs(); len(jobs) != 1 || jobs[0].ID != job.ID {
		t.Errorf("jobs = %+v", jobs)
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After waits that long (capped
// at RetryMaxDelay) rather than the short backoff.
func TestRetryAfterHonoured(t *testing.T) {
	env := edgeEnv(t, func(c *salesforce.Config) { c.RetryMaxDelay = 300 * time.Millisecond },
		firstN(1, "/describe", 429, "application/json", `[{"message":"slow down","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, "Retry-After", "2"))
	start := time.Now()
	if _, err := env.client.Describe(t.Context(), "Product2"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("took %s, want the Retry-After capped at 300ms", d)
	}
}

// TestDownloadBrokenBody: the result body breaks off half-way; the
// download starts over and the file on disk is the complete result, once.
func TestDownloadBrokenBody(t *testing.T) {
	var cut atomic.Int64
	env := edgeEnv(t, nil, func(w http.ResponseWriter, r *http.Request, emu http.Handler) bool {
		if !strings.Contains(r.URL.Path, "/successfulResults") || cut.Add(1) > 2 {
			return false
		}
		// Ask the emulator for plain bytes, so half of them is half the CSV.
		plain := r.Clone(r.Context())
		plain.Header.Del("Accept-Encoding")
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, plain)
		full := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(full)))
		w.WriteHeader(rec.Code)
		w.Write(full[:len(full)/2])
		panic(http.ErrAbortHandler) // cut the connection mid-body
	})
	dir := t.TempDir()
	final := runJob(t, env.client, upsertProducts, writeProducts(t, dir, "p.csv", "BB", 500))
	out := filepath.Join(dir, "ok.csv")
	n, err := env.client.DownloadResults(t.Context(), final.ID, salesforce.ResultSuccessful, out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 500 || len(readCSV(t, out)) != 501 {
		t.Errorf("rows = %d, file records = %d; want 500 and header+500", n, len(readCSV(t, out)))
	}
	if got := env.requests.count("GET", "/successfulResults"); got != 3 {
		t.Errorf("result requests = %d, want 3 (two cut, one whole)", got)
	}
	if !strings.Contains(env.logs.String(), "starting again") {
		t.Error("restart not logged")
	}
}

// TestDownloadEmptyBody: Salesforce may answer an empty result set with an
// empty body rather than a header line (3.2); that is 0 rows, not an error.
func TestDownloadEmptyBody(t *testing.T) {
	env := edgeEnv(t, nil, firstN(1, "/failedResults", 200, "text/csv", ""))
	dir := t.TempDir()
	final := runJob(t, env.client, upsertProducts, writeProducts(t, dir, "p.csv", "EB", 3))
	out := filepath.Join(dir, "failed.csv")
	n, err := env.client.DownloadResults(t.Context(), final.ID, salesforce.ResultFailed, out)
	if err != nil || n != 0 {
		t.Fatalf("rows %d, err %v; want 0, nil", n, err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 0 {
		t.Errorf("file: %v %v, want an empty file", fi, err)
	}
}
