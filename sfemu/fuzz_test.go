package sfemu_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// fuzzServer is one emulator over real HTTP shared by the inputs of a fuzz
// target, with a token. Inputs clean up the jobs they create.
type fuzzServer struct {
	emu   *sfemu.Server
	srv   *httptest.Server
	token string
}

func newFuzzServer(f *testing.F) *fuzzServer {
	emu := sfemu.New(sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithMaxUploadBytes(1<<20), sfemu.WithAPILimit(1<<62))
	srv := httptest.NewServer(emu)
	f.Cleanup(srv.Close)
	f.Cleanup(emu.Close)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	res, err := srv.Client().PostForm(srv.URL+"/services/oauth2/token", form)
	if err != nil {
		f.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil {
		f.Fatal(err)
	}
	return &fuzzServer{emu: emu, srv: srv, token: tok.AccessToken}
}

// do sends one request and returns the status, headers and body. A
// transport error fails the test: the emulator must always answer.
func (fs *fuzzServer) do(t *testing.T, method, path, ctype string, body []byte, auth bool) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, fs.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+fs.token)
	}
	status, h, b, err := fs.send(t, req)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v", method, path, err)
	}
	return status, h, b
}

// send sends req and reads the whole answer; an answer cut short fails
// the test, a request the client refuses to send returns its error.
func (fs *fuzzServer) send(t *testing.T, req *http.Request) (int, http.Header, []byte, error) {
	t.Helper()
	res, err := fs.srv.Client().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: body cut: %v", req.Method, req.URL, err)
	}
	return res.StatusCode, res.Header, b, nil
}

// checkAnswer asserts what every emulator answer must be: no 5xx, and a
// body in one of the shapes Salesforce uses, never a Go error page.
func checkAnswer(t *testing.T, what string, status int, h http.Header, body []byte) {
	t.Helper()
	if status >= 500 {
		t.Fatalf("%s: %d %s", what, status, body)
	}
	ct := h.Get("Content-Type")
	switch {
	case len(body) == 0 && (status == 201 || status == 204 || status == 304):
	case ct == "text/csv; charset=UTF-8" && status == 200:
		rd := csv.NewReader(bytes.NewReader(body))
		rd.FieldsPerRecord = -1
		if _, err := rd.ReadAll(); err != nil {
			t.Fatalf("%s: result is not CSV: %v\n%s", what, err, body)
		}
	case ct == "application/json;charset=UTF-8":
		if !json.Valid(body) {
			t.Fatalf("%s: invalid JSON: %s", what, body)
		}
		if status >= 400 {
			var items []struct {
				Message   *string `json:"message"`
				ErrorCode *string `json:"errorCode"`
			}
			var oauth struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(body, &items); err == nil {
				if len(items) == 0 || items[0].Message == nil || items[0].ErrorCode == nil {
					t.Fatalf("%s: error array without message/errorCode: %s", what, body)
				}
			} else if json.Unmarshal(body, &oauth) != nil || oauth.Error == "" || oauth.Description == "" {
				t.Fatalf("%s: error body is neither the REST envelope nor an OAuth error: %s", what, body)
			}
		}
	default:
		t.Fatalf("%s: %d with Content-Type %q: %q", what, status, ct, body)
	}
}

func readCSV(t *testing.T, what string, body []byte, sameWidth bool) [][]string {
	t.Helper()
	rd := csv.NewReader(bytes.NewReader(body))
	if !sameWidth {
		rd.FieldsPerRecord = -1
	}
	rows, err := rd.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, body)
	}
	return rows
}

// FuzzUploadJob runs any bytes as the CSV of a Bulk API 2.0 job, with any
// operation, delimiter and line ending, through upload, processing, the
// three result sets and delete. The job must end JobComplete or Failed,
// every result set must be CSV that encoding/csv reads (successful and
// failed with one width), and the counters must match the results
// (salesforce-api.md 2.3, 3.1, 3.2).
func FuzzUploadJob(f *testing.F) {
	fs := newFuzzServer(f)
	seeds := []string{
		"External_Id__c,Name\nP-1,A\nP-2,\"B, \"\"b\"\"\"\n",
		"External_Id__c,Name,Price__c,IsActive,Launch_Date__c,Last_Changed__c,Family\nP-1,A,912260031,true,2025-03-04,2025-03-04T10:15:02Z,Hardware\nP-1,dup,1,false,,#N/A,toys\n",
		"Name,Account__r.External_Id__c\nx,A-1\n",
		"Id,Name\n01t5g0000000001AAA,x\nbad,y\n,z\n",
		"\xef\xbb\xbfExternal_Id__c,Name\nP-1,A\n",
		"External_Id__c,Name\r\nP-1,A\r\n",
		"External_Id__c,Name\nP-1,\"unterminated\n",
		"External_Id__c,Name\nP-1,A,extra\nP-2\n\n\nP-3,\"a\"b\n",
		"External_Id__c|Name\nP-1|A\n",
		"",
		"\n\n",
		"Foo__c\n1\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i), uint8(i%3))
	}
	ops := []string{
		`"operation":"upsert","externalIdFieldName":"External_Id__c"`,
		`"operation":"insert"`, `"operation":"update"`, `"operation":"delete"`,
	}
	delims := []string{"COMMA", "PIPE", "TAB", "SEMICOLON"}
	f.Fuzz(func(t *testing.T, data []byte, op, shape uint8) {
		le := "LF"
		if shape%2 == 1 {
			le = "CRLF"
		}
		create := fmt.Sprintf(`{"object":"Product2",%s,"lineEnding":"%s","columnDelimiter":"%s"}`, ops[int(op)%len(ops)], le, delims[int(shape/2)%len(delims)])
		v := "/services/data/v66.0/jobs/ingest"
		st, h, body := fs.do(t, "POST", v, "application/json", []byte(create), true)
		checkAnswer(t, "create", st, h, body)
		if st != 200 {
			t.Fatalf("create: %d %s", st, body)
		}
		var info struct {
			ID        string `json:"id"`
			State     string `json:"state"`
			Processed int64  `json:"numberRecordsProcessed"`
			Failed    int64  `json:"numberRecordsFailed"`
		}
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatal(err)
		}
		job := v + "/" + info.ID
		st, h, body = fs.do(t, "PUT", job+"/batches", "text/csv", data, true)
		checkAnswer(t, "upload", st, h, body)
		if st != 201 {
			t.Fatalf("upload: %d %s", st, body)
		}
		st, h, body = fs.do(t, "PATCH", job, "application/json", []byte(`{"state":"UploadComplete"}`), true)
		checkAnswer(t, "close", st, h, body)
		st, h, body = fs.do(t, "GET", job, "", nil, true)
		checkAnswer(t, "info", st, h, body)
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatal(err)
		}
		if info.State != "JobComplete" && info.State != "Failed" {
			t.Fatalf("state %s after instant processing: %s", info.State, body)
		}
		sets := map[string][][]string{}
		for _, kind := range []string{"successfulResults", "failedResults", "unprocessedrecords"} {
			st, h, body = fs.do(t, "GET", job+"/"+kind+"/", "", nil, true)
			checkAnswer(t, kind, st, h, body)
			if st != 200 {
				t.Fatalf("%s: %d %s", kind, st, body)
			}
			sets[kind] = readCSV(t, kind, body, kind != "unprocessedrecords")
		}
		succ, failed := sets["successfulResults"], sets["failedResults"]
		if len(succ) == 0 || len(failed) == 0 || succ[0][0] != "sf__Id" || succ[0][1] != "sf__Created" || failed[0][0] != "sf__Id" || failed[0][1] != "sf__Error" {
			t.Fatalf("result headers: %q / %q", succ, failed)
		}
		if int64(len(succ)-1+len(failed)-1) != info.Processed || int64(len(failed)-1) != info.Failed {
			t.Fatalf("counters %d/%d, results %d successful + %d failed", info.Processed, info.Failed, len(succ)-1, len(failed)-1)
		}
		if info.State == "JobComplete" && len(sets["unprocessedrecords"]) > 1 {
			t.Fatalf("JobComplete with unprocessed rows: %q", sets["unprocessedrecords"])
		}
		st, h, body = fs.do(t, "DELETE", job, "", nil, true)
		checkAnswer(t, "delete", st, h, body)
		if st != 204 {
			t.Fatalf("delete: %d %s", st, body)
		}
	})
}

// FuzzJSONBodies sends any bytes as the JSON body of every endpoint that
// takes one: create job, close/abort, sObject create, upsert and update.
// Each answer must be a success or a 4xx in the REST envelope.
func FuzzJSONBodies(f *testing.F) {
	fs := newFuzzServer(f)
	for i, s := range []string{
		`{"object":"Product2","operation":"insert"}`, `{"state":"UploadComplete"}`, `{"state":"Aborted"}`,
		`{"Name":"W","External_Id__c":"P-1","Price__c":1.5,"IsActive":true,"Launch_Date__c":"2025-01-01"}`,
		`{"Name":"A","Account__r":{"External_Id__c":"A-1"}}`, `{"Name":null}`, `{"Name":[1]}`, `{"Name":{"a":1}}`,
		`{"object" "x"}`, `[]`, `null`, `"x"`, `{"a":1}{"b":2}`, `{"Name":"\ud800"}`, `{"Price__c":1e999}`, ``, `   `,
		`{"attributes":{"type":"Account"},"Name":"x"}`, `{"Id":"0015g0000000001AAA","Name":"x"}`,
	} {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(func(t *testing.T, body []byte, target uint8) {
		v := "/services/data/v66.0"
		var method, path string
		switch target % 6 {
		case 0:
			method, path = "POST", v+"/jobs/ingest"
		case 1:
			st, _, b := fs.do(t, "POST", v+"/jobs/ingest", "application/json", []byte(`{"object":"Account","operation":"insert"}`), true)
			if st != 200 {
				t.Fatalf("create: %d %s", st, b)
			}
			var info struct{ ID string }
			_ = json.Unmarshal(b, &info)
			method, path = "PATCH", v+"/jobs/ingest/"+info.ID
		case 2:
			method, path = "POST", v+"/sobjects/Account"
		case 3:
			method, path = "PATCH", v+"/sobjects/Account/External_Id__c/A-1"
		case 4:
			method, path = "PATCH", v+"/sobjects/Account/External_Id__c/A-2?updateOnly=true"
		case 5:
			method, path = "PATCH", v+"/sobjects/Product2/01t5g0000000001AAA"
		}
		st, h, b := fs.do(t, method, path, "application/json", body, true)
		checkAnswer(t, method+" "+path, st, h, b)
		if st >= 300 && st != 300 && (st < 400 || st > 404) {
			t.Fatalf("%s %s: unexpected status %d %s", method, path, st, b)
		}
	})
}

// FuzzRequests sends arbitrary methods, paths, queries, bodies and content
// types, with and without a token: every answer is in a Salesforce shape.
func FuzzRequests(f *testing.F) {
	fs := newFuzzServer(f)
	for _, s := range []struct{ method, path, query, ctype, body string }{
		{"GET", "/services/data/", "", "", ""},
		{"GET", "/services/data/v66.0/jobs/ingest", "queryLocator=01g-5&jobType=Classic", "", ""},
		{"GET", "/services/data/v66.0/query", "q=SELECT Name FROM Account WHERE (Name LIKE 'a%' OR Name IN ('x')) ORDER BY Name DESC LIMIT 5", "", ""},
		{"GET", "/services/data/v66.0/query", "q=SELECT COUNT() FROM Product2 WHERE Price__c > 1 AND NOT IsActive = true", "", ""},
		{"GET", "/services/data/v66.0/query/01g5g0000000001-2", "", "", ""},
		{"POST", "/services/oauth2/token", "", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=x"},
		{"POST", "/services/oauth2/token", "", "application/x-www-form-urlencoded", "%zz"},
		{"DELETE", "/services/data/v66.0/sobjects/Account/External_Id__c/%2F", "", "", ""},
		{"GET", "/services/data/latest/sobjects/Account/describe/", "", "", ""},
		{"PUT", "/services/data/v66.0/jobs/ingest/7505g0000000001AAA/batches", "", "text/csv", "a\n"},
		{"OPTIONS", "/id/x/y", "", "", ""},
		{"GET", "/services/data/v30.0", "", "", ""},
		{"HEAD", "/services/data/v66.0/limits", "", "", ""},
		{"GET", "/services/data/v66.0/sobjects/Product2/01t5g0000000001AAA", "fields=Name,Nope", "", ""},
	} {
		f.Add(s.method, s.path, s.query, s.ctype, []byte(s.body), true)
	}
	f.Fuzz(func(t *testing.T, method, path, query, ctype string, body []byte, auth bool) {
		u, err := url.Parse(fs.srv.URL + path)
		if err != nil || u.Host != strings.TrimPrefix(fs.srv.URL, "http://") || !strings.HasPrefix(path, "/") {
			return // not a request for this server
		}
		u.RawQuery = query
		if strings.IndexFunc(query, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '#' }) >= 0 {
			// Not valid in a request line: send it as a client would encode it.
			u.RawQuery = u.Query().Encode()
		}
		req, err := http.NewRequestWithContext(t.Context(), method, u.String(), bytes.NewReader(body))
		if err != nil || strings.ContainsAny(ctype, "\r\n\x00") {
			return // not a valid HTTP request
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+fs.token)
		}
		status, h, b, err := fs.send(t, req)
		if err != nil {
			if method == "CONNECT" || strings.Contains(err.Error(), "net/http: invalid") {
				return // refused by the client: not a request that was sent
			}
			t.Fatalf("%s %s: no answer: %v", method, u, err)
		}
		if method != "HEAD" {
			checkAnswer(t, method+" "+u.String(), status, h, b)
		}
	})
}

// FuzzSOQL sends any text as the q parameter of a query against an org
// with a few records. Every answer is a 200 page or a 400 in the REST
// envelope with a query error code, never a 5xx, and no query runs long.
// The seeds hold the queries that once panicked or froze the emulator.
func FuzzSOQL(f *testing.F) {
	fs := newFuzzServer(f)
	for _, rec := range []string{
		`{"Name":"Acme","External_Id__c":"A-1"}`, `{"Name":"Widget; the 'best' one","External_Id__c":"A-2"}`,
		`{"Name":"` + strings.Repeat("long name ", 6) + `","External_Id__c":"A-3"}`,
	} {
		req, _ := http.NewRequest("POST", fs.srv.URL+"/services/data/v66.0/sobjects/Account", strings.NewReader(rec))
		req.Header.Set("Authorization", "Bearer "+fs.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := fs.srv.Client().Do(req)
		if err != nil {
			f.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 201 {
			f.Fatalf("seed record: %d", res.StatusCode)
		}
	}
	for _, q := range []string{
		"SELECT Id FROM Product2 ORDER BY",
		"SELECT Id, Name FROM Account WHERE Name LIKE '" + strings.Repeat("%a", 10) + "%b' ORDER BY Name DESC LIMIT 2 OFFSET 1",
		"SELECT COUNT() FROM Account WHERE (Name = 'Acme' OR NOT External_Id__c IN ('A-1', 'A-2')) AND CreatedDate > 2020-01-01T00:00:00Z",
		"SELECT Name FROM Account WHERE Name = 'Widget; the \\'best\\' one'",
		"SELECT Id, Account__r.Name FROM Product2 WHERE Price__c >= 1.5 AND Launch_Date__c < 2030-01-01",
		"SELECT", "SELECT Id FROM", "SELECT COUNT( FROM Account", "SELECT Id FROM Account WHERE Name LIKE 5",
		"SELECT Id FROM Account WHERE Name IN ('a'", "SELECT Id FROM Account WHERE ((((Name = 'a'", "SELECT Id FROM Account LIMIT 99999999999999999999",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		start := time.Now()
		st, h, b := fs.do(t, "GET", "/services/data/v66.0/query?q="+url.QueryEscape(q), "", nil, true)
		checkAnswer(t, "query "+q, st, h, b)
		if st != 200 && st != 400 {
			t.Fatalf("query %q: %d %s", q, st, b)
		}
		if st == 400 {
			var items []struct{ ErrorCode string }
			_ = json.Unmarshal(b, &items)
			switch items[0].ErrorCode {
			case "MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE":
			default:
				t.Fatalf("query %q: error code %s: %s", q, items[0].ErrorCode, b)
			}
			if len(b) > 2000 {
				t.Fatalf("query %q: a %d-byte error", q, len(b))
			}
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("query %q took %v", q, d)
		}
	})
}

// FuzzObjects reads any bytes as an --objects file. ParseObjects either
// refuses them with an error or returns definitions that New accepts and
// that describe serves.
func FuzzObjects(f *testing.F) {
	for _, s := range []string{
		"objects:\n  - name: Widget__c\n    fields:\n      - {name: Key__c, type: string, length: 20, externalId: true, unique: true}\n",
		"objects:\n  - name: A__c\n    fields:\n      - {name: B__c, type: reference, referenceTo: A__c, relationshipName: B__r}\n      - {name: P__c, type: picklist, values: [x, y]}\n",
		"objects:\n  - name: A__c\n---\nobjects:\n  - name: B__c\n",
		"objects: []\n", "", "objects:\n  - name: A__c\n    bogus: 1\n", "objects:\n  - {name: Account, keyPrefix: '001'}\n  - {name: Account}\n",
		"objects:\n  - name: X__c\n    fields:\n      - {name: N__c, type: double, precision: 999999999, scale: -5}\n",
		"&a [*a]", "objects: &x\n  - name: A__c\n    fields: *x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := sfemu.ParseObjects(bytes.NewReader(data))
		if err != nil {
			if len(err.Error()) > 2000 {
				t.Fatalf("a %d-byte error: %.200s", len(err.Error()), err)
			}
			return
		}
		emu := sfemu.New(sfemu.WithObjects(defs))
		defer emu.Close()
		for _, d := range defs {
			req := httptest.NewRequest("GET", "/services/data/v66.0/sobjects/"+url.PathEscape(d.Name)+"/describe", nil)
			w := httptest.NewRecorder()
			emu.ServeHTTP(w, req) // no token: 401, but routing and the object lookup run
			if w.Code >= 500 {
				t.Fatalf("describe %s: %d %s", d.Name, w.Code, w.Body)
			}
		}
	})
}
