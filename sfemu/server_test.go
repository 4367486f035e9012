package sfemu_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestVersions(t *testing.T) {
	c := newTC(t)
	r := c.do("GET", "/services/data/", "", "", false)
	if r.status != 200 {
		t.Fatalf("versions: %d %s", r.status, r.body)
	}
	if r.header.Get("Sforce-Limit-Info") != "" {
		t.Error("the versions list carries no Sforce-Limit-Info")
	}
	var vs []map[string]string
	r.json(&vs)
	if len(vs) != 36 || vs[0]["version"] != "31.0" || vs[0]["label"] != "Summer '14" {
		t.Errorf("first = %v (of %d)", vs[0], len(vs))
	}
	last := vs[len(vs)-1]
	if last["version"] != "66.0" || last["label"] != "Spring '26" || last["url"] != "/services/data/v66.0" {
		t.Errorf("last = %v", last)
	}
	if vs[len(vs)-2]["label"] != "Winter '26" || vs[len(vs)-3]["label"] != "Summer '25" {
		t.Errorf("labels = %v %v", vs[len(vs)-3], vs[len(vs)-2])
	}
	if r := c.do("GET", "/services/data/v30.0/jobs/ingest", "", "", true); r.status != 410 {
		t.Errorf("retired version: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/services/data/v67.0/jobs/ingest", "", "", true); r.status != 404 || r.errorCode() != "NOT_FOUND" {
		t.Errorf("future version: %d %s", r.status, r.body)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	c := newTC(t)
	tests := []struct {
		method, path string
		status       int
		body         string
		allow        string
	}{
		{"GET", "/nope", 404, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`, ""},
		{"GET", "/services/data/v66.0/jobs/query/x/y/z", 404, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`, ""},
		{"PUT", "/services/data/v66.0/jobs/ingest", 405, `[{"message":"HTTP Method 'PUT' not allowed. Allowed are GET,HEAD,POST","errorCode":"METHOD_NOT_ALLOWED"}]`, "GET, HEAD, POST"},
		{"POST", "/services/data/v66.0/jobs/ingest/750000000000000AAA", 405, `[{"message":"HTTP Method 'POST' not allowed. Allowed are DELETE,GET,HEAD,PATCH","errorCode":"METHOD_NOT_ALLOWED"}]`, "DELETE, GET, HEAD, PATCH"},
		{"GET", "/services/oauth2/token", 405, `[{"message":"HTTP Method 'GET' not allowed. Allowed are POST","errorCode":"METHOD_NOT_ALLOWED"}]`, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			r := c.do(tt.method, tt.path, "", "", true)
			if r.status != tt.status || r.body != tt.body {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.body)
			}
			if got := r.header.Get("Content-Type"); got != "application/json;charset=UTF-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestAPILimit(t *testing.T) {
	c := newTC(t, sfemu.WithAPILimit(3))
	for i := 1; i <= 3; i++ {
		r := c.get("/jobs/ingest")
		if r.status != 200 || r.header.Get("Sforce-Limit-Info") != fmt.Sprintf("api-usage=%d/3", i) {
			t.Fatalf("call %d: %d %q", i, r.status, r.header.Get("Sforce-Limit-Info"))
		}
	}
	r := c.get("/jobs/ingest")
	if r.status != 403 || r.body != `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]` {
		t.Errorf("over limit: %d %s", r.status, r.body)
	}
	if c.emu.APIUsage() != 3 {
		t.Errorf("APIUsage = %d", c.emu.APIUsage())
	}
}

func TestQuery(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithQueryPageSize(3))
	var b strings.Builder
	b.WriteString("External_Id__c,Name,Price__c,Family\n")
	for i := range 7 {
		fam := "Hardware"
		if i%2 == 1 {
			fam = "Software"
		}
		fmt.Fprintf(&b, "P-%d,Name %d,%d.5,%s\n", i, i, i, fam)
	}
	c.runJob(upsertProduct, b.String())

	r := c.get("/query?q=" + url.QueryEscape("SELECT COUNT() FROM Product2"))
	if r.status != 200 || r.body != `{"done":true,"records":[],"totalSize":7}` && !strings.Contains(r.body, `"totalSize":7`) {
		t.Errorf("count: %d %s", r.status, r.body)
	}
	// Spaces as '+' work too.
	r = c.get("/query/?q=SELECT+COUNT()+FROM+Product2+WHERE+Family+=+'software'")
	if !strings.Contains(r.body, `"totalSize":3`) {
		t.Errorf("count where: %s", r.body)
	}
	recs := c.query("SELECT Name, Price__c FROM Product2 WHERE Price__c > 2 AND Family = 'Hardware' ORDER BY Price__c DESC LIMIT 2")
	if len(recs) != 2 || recs[0]["Name"] != "Name 6" || recs[1]["Name"] != "Name 4" || recs[0]["Price__c"] != 6.5 {
		t.Errorf("where/order/limit = %v", recs)
	}
	// Paging with nextRecordsUrl.
	r = c.get("/query?q=" + url.QueryEscape("SELECT External_Id__c FROM Product2"))
	var page struct {
		TotalSize      int              `json:"totalSize"`
		Done           bool             `json:"done"`
		NextRecordsURL string           `json:"nextRecordsUrl"`
		Records        []map[string]any `json:"records"`
	}
	r.json(&page)
	seen := len(page.Records)
	for !page.Done {
		r = c.do("GET", page.NextRecordsURL, "", "", true)
		page.Done, page.NextRecordsURL, page.Records = false, "", nil
		r.json(&page)
		seen += len(page.Records)
	}
	if seen != 7 || page.TotalSize != 7 {
		t.Errorf("paged %d of %d", seen, page.TotalSize)
	}
	for _, tt := range []struct{ q, code string }{
		{"SELECT Name FROM Nope__c", "INVALID_TYPE"},
		{"SELECT Nope__c FROM Product2", "INVALID_FIELD"},
		{"SELEC Name FROM Product2", "MALFORMED_QUERY"},
		{"SELECT Name FROM Product2 WHERE Name = unquoted", "MALFORMED_QUERY"},
		{"SELECT Name FROM Product2 WHERE", "MALFORMED_QUERY"},
	} {
		r := c.get("/query?q=" + url.QueryEscape(tt.q))
		if r.status != 400 || r.errorCode() != tt.code {
			t.Errorf("%q: %d %s, want 400 %s", tt.q, r.status, r.body, tt.code)
		}
	}
}

// TestLimitInfoOnEveryResponse: every response of the data API carries
// Sforce-Limit-Info, errors included, and only counted calls raise it;
// the versions list, the token endpoint and edge pages carry none
// (salesforce-api.md 6.4, 6.5).
func TestLimitInfoOnEveryResponse(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	id, _ := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,W\n")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	tests := []struct {
		name         string
		method, path string
		auth         bool
		fault        int
		status       int
		counted      bool // false: the header shows the count without this call
		none         bool // no header at all
	}{
		{"job info", "GET", c.v + "/jobs/ingest/" + id, true, 0, 200, true, false},
		{"results CSV", "GET", c.v + "/jobs/ingest/" + id + "/successfulResults/", true, 0, 200, true, false},
		{"unknown job", "GET", c.v + "/jobs/ingest/7505g000000ZZZZAAA", true, 0, 404, true, false},
		{"delete", "DELETE", c.v + "/jobs/ingest/" + id, true, 0, 204, true, false},
		{"no token", "GET", c.v + "/jobs/ingest", false, 0, 401, false, false},
		{"unknown resource", "GET", c.v + "/nope", true, 0, 404, false, false},
		{"wrong method", "PUT", c.v + "/jobs/ingest", true, 0, 405, false, false},
		{"retired version", "GET", "/services/data/v30.0/sobjects", true, 0, 410, false, false},
		{"injected 503", "GET", c.v + "/limits", true, 503, 503, false, false},
		{"injected 429", "GET", c.v + "/limits", true, 429, 429, false, false},
		{"edge 502", "GET", c.v + "/limits", true, 502, 502, false, true},
		{"versions list", "GET", "/services/data/", false, 0, 200, false, true},
		{"token", "POST", "/services/oauth2/token", false, 0, 200, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.emu.APIUsage()
			if tt.fault != 0 {
				c.emu.AddFault(sfemu.Fault{Count: 1, Status: tt.fault})
			}
			var r resp
			if tt.name == "token" {
				r = c.do(tt.method, tt.path, "application/x-www-form-urlencoded", form.Encode(), false)
			} else {
				r = c.do(tt.method, tt.path, "", "", tt.auth)
			}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			got, ok := r.header["Sforce-Limit-Info"]
			if tt.none {
				if ok {
					t.Errorf("Sforce-Limit-Info = %q, want none", got)
				}
				return
			}
			want := before
			if tt.counted {
				want++
			}
			if w := fmt.Sprintf("api-usage=%d/100000", want); len(got) != 1 || got[0] != w {
				t.Errorf("Sforce-Limit-Info = %q, want %q", got, w)
			}
		})
	}
}

// TestRequestHeadLimit: URI and headers over 16,384 bytes are refused with
// 414 or 431 in the REST envelope, never a Go error page (salesforce-api.md §0).
func TestRequestHeadLimit(t *testing.T) {
	c := newTC(t)
	long := c.do("GET", c.v+"/jobs/ingest?x="+strings.Repeat("a", 17_000), "", "", true)
	if long.status != 414 || long.errorCode() != "URI_TOO_LONG" || long.header.Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Errorf("long URI: %d %s", long.status, long.body)
	}
	req, _ := newRequest(t, "GET", c.srv.URL+c.v+"/jobs/ingest", "")
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := range 20 {
		req.Header.Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("b", 1000))
	}
	if r := c.send(req); r.status != 431 || r.errorCode() != "REQUEST_HEADER_FIELDS_TOO_LARGE" {
		t.Errorf("big headers: %d %s", r.status, r.body)
	}
	for i := 15; i < 20; i++ {
		req.Header.Del(fmt.Sprintf("X-Big-%d", i)) // about 15 KB left
	}
	if r := c.send(req); r.status != 200 {
		t.Errorf("headers under the limit: %d %s", r.status, r.body)
	}
}
