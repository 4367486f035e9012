package sfemu_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// tc is a tiny HTTP client for the emulator: it logs in with the test
// client and keeps the token. Every request goes over real HTTP.
type tc struct {
	t     *testing.T
	emu   *sfemu.Server
	srv   *httptest.Server
	token string
	v     string // "/services/data/v66.0"
}

func newTC(t *testing.T, opts ...sfemu.Option) *tc {
	t.Helper()
	emu := sfemu.New(opts...)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	t.Cleanup(emu.Close)
	c := &tc{t: t, emu: emu, srv: srv, v: "/services/data/v66.0"}
	c.login()
	return c
}

func (c *tc) login() {
	c.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	resp := c.do("POST", "/services/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), false)
	if resp.status != 200 {
		c.t.Fatalf("login: %d %s", resp.status, resp.body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	resp.json(&tok)
	c.token = tok.AccessToken
}

type resp struct {
	t      *testing.T
	status int
	header http.Header
	body   string
}

func (r resp) json(v any) {
	r.t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		r.t.Fatalf("decode %q: %v", r.body, err)
	}
}

// errs decodes the REST error envelope.
func (r resp) errs() []map[string]any {
	r.t.Helper()
	var out []map[string]any
	r.json(&out)
	return out
}

func (r resp) errorCode() string {
	r.t.Helper()
	e := r.errs()
	if len(e) == 0 {
		r.t.Fatalf("empty error array: %s", r.body)
	}
	s, _ := e[0]["errorCode"].(string)
	return s
}

func (r resp) errorMessage() string {
	e := r.errs()
	s, _ := e[0]["message"].(string)
	return s
}

func (c *tc) do(method, path, ctype, body string, auth bool) resp {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp{t: c.t, status: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *tc) get(path string) resp { return c.do("GET", c.v+path, "", "", true) }
func (c *tc) post(path, body string) resp {
	return c.do("POST", c.v+path, "application/json", body, true)
}
func (c *tc) patch(path, body string) resp {
	return c.do("PATCH", c.v+path, "application/json", body, true)
}

// createJob creates an ingest job and returns its id.
func (c *tc) createJob(body string) string {
	c.t.Helper()
	r := c.post("/jobs/ingest", body)
	if r.status != 200 {
		c.t.Fatalf("create job: %d %s", r.status, r.body)
	}
	var info map[string]any
	r.json(&info)
	return info["id"].(string)
}

func (c *tc) upload(id, data string) resp {
	return c.do("PUT", c.v+"/jobs/ingest/"+id+"/batches", "text/csv", data, true)
}

// runJob creates, uploads, closes and waits for a job; returns its info.
func (c *tc) runJob(create, data string) (string, map[string]any) {
	c.t.Helper()
	id := c.createJob(create)
	if r := c.upload(id, data); r.status != 201 {
		c.t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`); r.status != 200 {
		c.t.Fatalf("close: %d %s", r.status, r.body)
	}
	if _, err := c.emu.AwaitJob(c.t.Context(), id); err != nil {
		c.t.Fatal(err)
	}
	return id, c.jobInfo(id)
}

func (c *tc) jobInfo(id string) map[string]any {
	c.t.Helper()
	r := c.get("/jobs/ingest/" + id)
	if r.status != 200 {
		c.t.Fatalf("job info: %d %s", r.status, r.body)
	}
	var info map[string]any
	r.json(&info)
	return info
}

// results fetches a result set and parses it with encoding/csv.
func (c *tc) results(id, kind string) (raw string, rows [][]string) {
	c.t.Helper()
	r := c.get("/jobs/ingest/" + id + "/" + kind + "/")
	if r.status != 200 {
		c.t.Fatalf("%s: %d %s", kind, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=UTF-8" {
		c.t.Errorf("%s Content-Type = %q", kind, ct)
	}
	rd := csv.NewReader(strings.NewReader(r.body))
	rd.FieldsPerRecord = -1
	all, err := rd.ReadAll()
	if err != nil {
		c.t.Fatalf("%s is not valid CSV: %v\n%s", kind, err, r.body)
	}
	return r.body, all
}

// byColumn maps rows (after the header) by the value of the named column.
func byColumn(t *testing.T, rows [][]string, col string) map[string]map[string]string {
	t.Helper()
	if len(rows) == 0 {
		t.Fatal("no header")
	}
	out := map[string]map[string]string{}
	for _, row := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			if i < len(row) {
				m[h] = row[i]
			}
		}
		out[m[col]] = m
	}
	return out
}

// query runs SOQL and returns the records.
func (c *tc) query(q string) []map[string]any {
	c.t.Helper()
	r := c.get("/query?q=" + url.QueryEscape(q))
	if r.status != 200 {
		c.t.Fatalf("query %q: %d %s", q, r.status, r.body)
	}
	var out struct {
		TotalSize int              `json:"totalSize"`
		Records   []map[string]any `json:"records"`
	}
	r.json(&out)
	return out.Records
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newRequest(t *testing.T, method, u, body string) (*http.Request, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req, nil
}

func (c *tc) send(req *http.Request) resp {
	c.t.Helper()
	res, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp{t: c.t, status: res.StatusCode, header: res.Header, body: string(b)}
}

func newServer(t *testing.T, emu *sfemu.Server) *httptest.Server {
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	t.Cleanup(emu.Close)
	return srv
}

func ioNopCloser(r io.Reader) io.ReadCloser { return io.NopCloser(r) }
