package sfemu_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// loadLongProducts upserts n products whose Description is 4,000 'a's
// (the field's length), for queries that are slow on purpose.
func loadLongProducts(c *tc, n int) {
	c.t.Helper()
	var b strings.Builder
	b.WriteString("External_Id__c,Name,Description\n")
	desc := strings.Repeat("a", 4000)
	for i := range n {
		fmt.Fprintf(&b, "L-%05d,Long product number %d with a name of about sixty characters,%s\n", i, i, desc)
	}
	if _, info := c.runJob(upsertProduct, b.String()); info["numberRecordsFailed"] != float64(0) {
		c.t.Fatalf("load: %v", info)
	}
}

// slowLike is a LIKE pattern that costs about 8 million character
// steps on each 4,000-character Description: linear matching keeps it
// polynomial, but on a few hundred records it still runs for seconds.
var slowLike = "%" + strings.Repeat("a_", 1900) + "b%"

// TestLikeFromTheIssueIsFast: the pattern that froze the emulator (8 and
// more % against a 60-character name: exponential backtracking before)
// answers at once, with the right count.
func TestLikeFromTheIssueIsFast(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	loadLongProducts(c, 20)
	for _, tt := range []struct {
		pat  string
		want int
	}{
		{strings.Repeat("%a", 8) + "%b", 0},
		{strings.Repeat("%o", 12) + "%z", 0},
		{strings.Repeat("%", 40) + "x", 0},
		{"%l%o%n%g%p%r%o%d%u%c%t%n%u%m%b%e%r%", 20},
		{"%" + strings.Repeat("_%", 30) + "characters", 20},
		{"long product number 1_ with%", 10},
	} {
		start := time.Now()
		r := c.get("/query?q=" + url.QueryEscape("SELECT COUNT() FROM Product2 WHERE Name LIKE '"+tt.pat+"'"))
		var got struct{ TotalSize int }
		if r.status == 200 {
			r.json(&got)
		}
		if r.status != 200 || got.TotalSize != tt.want {
			t.Errorf("LIKE '%s': %d %s, want totalSize %d", tt.pat, r.status, r.body, tt.want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("LIKE '%s' took %v", tt.pat, d)
		}
	}
}

// TestSlowQueryDoesNotBlockOthers: while a query runs for seconds, other
// clients' requests (reads and writes of the same object) are answered
// within a second, and the query ends at the request deadline with
// QUERY_TIMEOUT.
func TestSlowQueryDoesNotBlockOthers(t *testing.T) {
	const deadline = 3 * time.Second
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithRequestTimeout(deadline), sfemu.WithLogger(t.Logf))
	loadLongProducts(c, 1000)
	type result struct {
		status int
		body   string
		err    error
		took   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		req, _ := http.NewRequest("GET", c.srv.URL+c.v+"/query?q="+url.QueryEscape("SELECT Id FROM Product2 WHERE Description LIKE '"+slowLike+"'"), nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		res, err := c.srv.Client().Do(req)
		if err != nil {
			done <- result{err: err, took: time.Since(start)}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{status: res.StatusCode, body: string(b), err: err, took: time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond) // the query is scanning by now
	other := &tc{t: t, emu: c.emu, srv: c.srv, v: c.v}
	for i := range 6 {
		start := time.Now()
		other.login()
		if r := other.post("/sobjects/Product2", fmt.Sprintf(`{"Name":"During the slow query %d"}`, i)); r.status != 201 {
			t.Fatalf("create during the query: %d %s", r.status, r.body)
		}
		if n := len(other.query("SELECT Id FROM Product2 WHERE Name LIKE 'During the slow%'")); n != i+1 {
			t.Errorf("query during the slow query found %d records, want %d", n, i+1)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("request %d waited %v behind the slow query", i, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case res := <-done:
		if res.err != nil || res.status != 400 || !strings.Contains(res.body, `"errorCode":"QUERY_TIMEOUT"`) {
			t.Errorf("slow query: %d %s %v, want 400 QUERY_TIMEOUT", res.status, res.body, res.err)
		}
		if res.took < deadline || res.took > deadline+2*time.Second {
			t.Errorf("slow query answered after %v; its deadline was %v", res.took, deadline)
		}
	case <-time.After(deadline + 10*time.Second):
		t.Fatal("the slow query did not stop at its deadline")
	}
}

// TestMalformedQueries: every malformed query is a 400 in the REST
// envelope (MALFORMED_QUERY unless a name is unknown), never a panic, and
// its message quotes at most an excerpt of what was sent.
func TestMalformedQueries(t *testing.T) {
	c := newTC(t)
	long := strings.Repeat("x", 10_000)
	for q, code := range map[string]string{
		"SELECT Id FROM Product2 ORDER BY":                     "MALFORMED_QUERY",
		"SELECT Id FROM Product2 ORDER":                        "MALFORMED_QUERY",
		"SELECT Id FROM Product2 ORDER BY Name DESC LIMIT":     "MALFORMED_QUERY",
		"SELECT Id FROM Product2 LIMIT -1":                     "MALFORMED_QUERY",
		"SELECT Id FROM Product2 OFFSET x":                     "MALFORMED_QUERY",
		"SELECT":                                               "MALFORMED_QUERY",
		"SELECT Id":                                            "MALFORMED_QUERY",
		"SELECT Id FROM":                                       "MALFORMED_QUERY",
		"SELECT Id,":                                           "MALFORMED_QUERY",
		"SELECT COUNT(":                                        "MALFORMED_QUERY",
		"SELECT COUNT(), Id FROM Product2":                     "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE":                        "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name":                   "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name =":                 "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name LIKE 5":            "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name LIKE null":         "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name IN":                "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name IN ('a'":           "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name IN ('a' 'b')":      "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE (Name = 'a'":            "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name = 'a' AND":         "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE NOT":                    "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name = 'unterminated":   "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name = bare":            "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name = 'a' )":           "MALFORMED_QUERY",
		"SELECT Id FROM Product2 extra":                        "MALFORMED_QUERY",
		"UPDATE Product2":                                      "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name = '" + long + "'x": "MALFORMED_QUERY",
		"SELECT Id FROM Product2 WHERE Name = " + long:         "MALFORMED_QUERY",
		"SELECT " + long + " FROM Product2":                    "INVALID_FIELD",
		"SELECT Id FROM " + long:                               "INVALID_TYPE",
		"SELECT Id FROM Product2 ORDER BY " + long:             "INVALID_FIELD",
		"SELECT Id FROM Product2 WHERE " + long + " = 1":       "INVALID_FIELD",
		"SELECT " + long + ".Name FROM Product2":               "INVALID_FIELD",
		"SELECT Id FROM Product2 WHERE Name " + long + " 'a'":  "MALFORMED_QUERY",
	} {
		r := c.get("/query?q=" + url.QueryEscape(q))
		if r.status != 400 || r.errorCode() != code {
			t.Errorf("%.80q: %d %.300s, want 400 %s", q, r.status, r.body, code)
			continue
		}
		if len(r.body) > 1000 {
			t.Errorf("%.80q: the error body is %d bytes long: %.300s", q, len(r.body), r.body)
		}
	}
}

// TestStalledBodyIsCut: a request body that stops arriving does not hold
// its connection (and goroutine) beyond the stall timeout.
func TestStalledBodyIsCut(t *testing.T) {
	c := newTC(t, sfemu.WithStallTimeout(300*time.Millisecond))
	id := c.createJob(upsertProduct)
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	head := "PUT " + c.v + "/jobs/ingest/" + id + "/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + c.token +
		"\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\nExternal_Id__c,Name\nP-1,A\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The client now sends nothing more, and never closes: the server must.
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || !strings.Contains(string(body), `"errorCode"`) {
			t.Errorf("stalled upload: %d %s, want a 400 in the REST envelope", res.StatusCode, body)
		}
		_, err = conn.Read(make([]byte, 1))
	}
	if err == nil {
		t.Fatal("the connection stayed open")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the stalled body held the connection for %v (stall timeout 300ms)", d)
	}
	if r := c.upload(id, "External_Id__c,Name\nP-1,A\n"); r.status != 201 {
		t.Errorf("upload after the stalled one: %d %s", r.status, r.body)
	}
}

// rawExchange sends bytes on a fresh connection and reads one answer.
func rawExchange(t *testing.T, c *tc, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%.60q: no answer: %v", req, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// TestMalformedRequests: malformed requests that reach the emulator are
// answered in the REST envelope; the ones net/http refuses while reading
// the request line and headers (before any handler runs) get its short
// plain-text answer and a closed connection, never a hang.
// docs/emulator.md lists both kinds.
func TestMalformedRequests(t *testing.T) {
	c := newTC(t)
	auth := "Authorization: Bearer " + c.token + "\r\n"
	for _, tt := range []struct {
		name, req string
		status    int
		code      string
	}{
		{"query with a bad escape", "GET " + c.v + "/query?q=SELECT+Id+FROM+Account+%zz HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400, "MALFORMED_QUERY"},
		{"NUL in a path", "GET " + c.v + "/sobjects/Acc%00ount HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 404, "NOT_FOUND"},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 404, "NOT_FOUND"},
		{"HTTP/2 preface on HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 404, "NOT_FOUND"},
		{"headers over Salesforce's 16 KiB", "GET /services/data/ HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n", 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"},
		{"URI over 16 KiB", "GET /services/data/" + strings.Repeat("a", 17000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"},
		{"JSON body that is not JSON", "POST " + c.v + "/sobjects/Account HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: application/json\r\nContent-Length: 3\r\n\r\n{{{", 400, "JSON_PARSER_ERROR"},
	} {
		res, body := rawExchange(t, c, tt.req)
		if res.StatusCode != tt.status || !strings.Contains(body, `"errorCode":"`+tt.code+`"`) ||
			res.Header.Get("Content-Type") != "application/json;charset=UTF-8" {
			t.Errorf("%s: %d %s %.200s, want %d %s in the envelope", tt.name, res.StatusCode, res.Header.Get("Content-Type"), body, tt.status, tt.code)
		}
	}
	// net/http answers these itself; the emulator never sees them.
	for _, tt := range []struct {
		name, req string
		status    int
	}{
		{"bad escape in the path", "GET " + c.v + "/sobjects/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"no Host", "GET /services/data/ HTTP/1.1\r\n\r\n", 400},
		{"bad Host", "GET /services/data/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"space in a header name", "GET /services/data/ HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400},
		{"control character in a header", "GET /services/data/ HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400},
		{"bad Content-Length", "POST " + c.v + "/sobjects/Account HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400},
		{"two Content-Lengths", "POST " + c.v + "/sobjects/Account HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"unknown Transfer-Encoding", "POST " + c.v + "/sobjects/Account HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"bad method", "G@T /services/data/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"relative request target", "GET services/data/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"HTTP/9.9", "GET /services/data/ HTTP/9.9\r\nHost: x\r\n\r\n", 505},
		{"not HTTP", "\x16\x03\x01\x00\x00\r\n\r\n", 400},
		{"headers over 1 MiB", "GET /services/data/ HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", 431},
	} {
		res, body := rawExchange(t, c, tt.req)
		if res.StatusCode != tt.status || len(body) > 200 || !res.Close {
			t.Errorf("%s: %d %q (close %v), want net/http's %d and a closed connection", tt.name, res.StatusCode, body, res.Close, tt.status)
		}
	}
}

// TestQueryWithSemicolon: a ';' in the q parameter is part of the query
// (Go's url.Values would drop the whole parameter).
func TestQueryWithSemicolon(t *testing.T) {
	c := newTC(t)
	if r := c.post("/sobjects/Account", `{"Name":"a;b"}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r := c.get("/query?q=SELECT+Name+FROM+Account+WHERE+Name+=+'a;b'")
	if r.status != 200 || !strings.Contains(r.body, `"Name":"a;b"`) {
		t.Errorf("query with ';': %d %s", r.status, r.body)
	}
}

// TestHugeValuesAreExcerpted: a REST error or a job error that quotes what
// the client sent quotes a bounded excerpt with its length.
func TestHugeValuesAreExcerpted(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	big := strings.Repeat("Z", 1<<20)
	r := c.post("/sobjects/Account", `{"`+big+`":"x"}`)
	if r.status != 400 || len(r.body) > 3000 || !strings.Contains(r.body, "(1048576 bytes)") {
		t.Errorf("unknown 1 MB field name: %d, %d-byte body %.300s", r.status, len(r.body), r.body)
	}
	_, info := c.runJob(upsertProduct, "External_Id__c,"+big+"\nP-1,x\n")
	msg, _ := info["errorMessage"].(string)
	if info["state"] != "Failed" || len(msg) > 3000 || !strings.Contains(msg, "Field name not found") {
		t.Errorf("job with a 1 MB header name: %v, message %.300s (%d bytes)", info["state"], msg, len(msg))
	}
}

// TestUnprocessedRecordsCamelCase: simple-salesforce and salesforcer ask
// for .../unprocessedRecords (camel case), which Salesforce serves as it
// does the documented .../unprocessedrecords (docs/emulator.md).
func TestUnprocessedRecordsCamelCase(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	id := c.createJob(upsertProduct)
	if r := c.upload(id, "External_Id__c,Name\nP-1,A\nP-2,B\n"); r.status != 201 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`); r.status != 200 {
		t.Fatalf("abort: %d %s", r.status, r.body)
	}
	lower, _ := c.results(id, "unprocessedrecords")
	camel, rows := c.results(id, "unprocessedRecords")
	if camel != lower || len(rows) != 3 {
		t.Errorf("unprocessedRecords = %q, unprocessedrecords = %q", camel, lower)
	}
	if r := c.get("/jobs/ingest/" + id + "/UNPROCESSEDRECORDS/"); r.status != 404 {
		t.Errorf("a spelling no client uses: %d, want 404", r.status)
	}
}

// TestOversizedJSONBodies: JSON bodies over their limit are refused, not
// read in part (a job body padded with 2 MB of spaces once passed).
func TestOversizedJSONBodies(t *testing.T) {
	c := newTC(t)
	pad := strings.Repeat(" ", 2<<20)
	if r := c.post("/jobs/ingest", `{"object":"Account","operation":"insert"}`+pad); r.status != 413 || r.errorCode() != "JSON_PARSER_ERROR" {
		t.Errorf("2 MB job body: %d %.200s", r.status, r.body)
	}
	if r := c.post("/sobjects/Account", `{"Name":"`+strings.Repeat("n", 51<<20)+`"}`); r.status != 400 || r.errorCode() != "JSON_PARSER_ERROR" {
		t.Errorf("51 MB record body: %d %.200s", r.status, r.body)
	}
}
