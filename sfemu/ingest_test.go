package sfemu_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

const upsertProduct = `{"object":"Product2","operation":"upsert","externalIdFieldName":"External_Id__c","lineEnding":"LF","columnDelimiter":"COMMA","contentType":"CSV"}`

func TestCreateJobShape(t *testing.T) {
	c := newTC(t)
	r := c.post("/jobs/ingest", upsertProduct)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	// Field order and apiVersion as a JSON number (salesforce-api.md 2.2).
	order := []string{"id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state", "externalIdFieldName", "concurrencyMode", "contentType", "apiVersion", "contentUrl", "lineEnding", "columnDelimiter"}
	pos := -1
	for _, k := range order {
		i := strings.Index(r.body, `"`+k+`":`)
		if i < 0 || i < pos {
			t.Errorf("field %s missing or out of order: %s", k, r.body)
		}
		pos = i
	}
	if !strings.Contains(r.body, `"apiVersion":66.0`) {
		t.Errorf("apiVersion must be the JSON number 66.0: %s", r.body)
	}
	var info map[string]any
	r.json(&info)
	id := info["id"].(string)
	if !regexp.MustCompile(`^750[0-9A-Za-z]{15}$`).MatchString(id) {
		t.Errorf("job id %q", id)
	}
	if info["state"] != "Open" || info["concurrencyMode"] != "Parallel" || info["contentType"] != "CSV" {
		t.Errorf("info = %v", info)
	}
	if info["contentUrl"] != "services/data/v66.0/jobs/ingest/"+id+"/batches" {
		t.Errorf("contentUrl = %v", info["contentUrl"])
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$`).MatchString(info["createdDate"].(string)) {
		t.Errorf("createdDate = %v", info["createdDate"])
	}
	if _, ok := info["jobType"]; ok {
		t.Error("create response has no jobType")
	}
	if _, ok := info["numberRecordsProcessed"]; ok {
		t.Error("create response has no counters")
	}
	if got := r.header.Get("Sforce-Limit-Info"); !regexp.MustCompile(`^api-usage=\d+/100000$`).MatchString(got) {
		t.Errorf("Sforce-Limit-Info = %q", got)
	}
}

func TestCreateJobErrors(t *testing.T) {
	c := newTC(t)
	tests := []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"unknown object", `{"object":"Foo__c","operation":"insert"}`, 400, "INVALIDJOB", "InvalidJob : Unable to find object: Foo__c"},
		{"not an external id", `{"object":"Product2","operation":"upsert","externalIdFieldName":"Name"}`, 400, "INVALIDJOB", "InvalidJob : Field name provided, Name does not match an External ID for Product2"},
		{"unknown external id", `{"object":"Product2","operation":"upsert","externalIdFieldName":"Foo__c"}`, 400, "INVALIDJOB", "InvalidJob : Field name provided, Foo__c does not match an External ID for Product2"},
		{"bad operation", `{"object":"Product2","operation":"bogus"}`, 400, "API_ERROR", "Invalid value: 'bogus' supplied for property: 'operation'"},
		{"bad contentType", `{"object":"Product2","operation":"insert","contentType":"JSON"}`, 400, "API_ERROR", "Invalid value: 'JSON' supplied for property: 'contentType'"},
		{"bad lineEnding", `{"object":"Product2","operation":"insert","lineEnding":"CR"}`, 400, "API_ERROR", "Invalid value: 'CR' supplied for property: 'lineEnding'"},
		{"bad delimiter", `{"object":"Product2","operation":"insert","columnDelimiter":"COLON"}`, 400, "API_ERROR", "Invalid value: 'COLON' supplied for property: 'columnDelimiter'"},
		{"empty body", ``, 400, "JSON_PARSER_ERROR", "The HTTP entity body is required, but this request has no entity body."},
		{"bad json", `{"object" "Product2"}`, 400, "JSON_PARSER_ERROR", "Unexpected character ('\"' (code 34)) at [line:1, column:11]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post("/jobs/ingest", tt.body)
			if r.status != tt.status {
				t.Errorf("status = %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if got := r.errorCode(); got != tt.code {
				t.Errorf("errorCode = %q, want %q", got, tt.code)
			}
			if got := r.errorMessage(); got != tt.msg {
				t.Errorf("message = %q, want %q", got, tt.msg)
			}
		})
	}
}

func TestUpsertLifecycleAndResults(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	data := "External_Id__c,Name,Price__c,IsActive,Family,Launch_Date__c,Description\n" +
		"P-1,Widget,912260031,true,Hardware,2025-03-04,\"Lorem\nIpsum, \"\"quoted\"\"\"\n" +
		"P-2,Gadget,19.99,FALSE,software,2025-01-31,\n" +
		"P-3,,1,true,Hardware,,\n" + // Name required on insert
		"P-4,Bad price,abc,true,Hardware,,\n" +
		"P-5,Bad family,1,true,Toys,,\n"
	id := c.createJob(upsertProduct)
	if r := c.upload(id, data); r.status != 201 || r.body != "" {
		t.Fatalf("upload: %d %q", r.status, r.body)
	}
	r := c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`)
	if r.status != 200 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	var closed map[string]any
	r.json(&closed)
	// The real close answer says UploadComplete even when processing is fast.
	if closed["state"] != "UploadComplete" {
		t.Errorf("close state = %v", closed["state"])
	}
	for _, k := range []string{"contentUrl", "jobType", "numberRecordsProcessed", "lineEnding"} {
		if _, ok := closed[k]; ok {
			t.Errorf("PATCH response has %s", k)
		}
	}
	info := c.jobInfo(id)
	if info["state"] != "JobComplete" || info["jobType"] != "V2Ingest" {
		t.Fatalf("info = %v", info)
	}
	if info["numberRecordsProcessed"].(float64) != 5 || info["numberRecordsFailed"].(float64) != 3 {
		t.Errorf("counters = %v/%v, want 5/3", info["numberRecordsProcessed"], info["numberRecordsFailed"])
	}
	if _, ok := info["contentUrl"]; ok {
		t.Error("contentUrl only while Open")
	}

	raw, ok := c.results(id, "successfulResults")
	if !strings.HasPrefix(raw, `"sf__Id","sf__Created",External_Id__c,Name,Price__c,IsActive,Family,Launch_Date__c,Description`+"\n") {
		t.Errorf("successful header: %q", raw)
	}
	succ := byColumn(t, ok, "External_Id__c")
	if len(succ) != 2 {
		t.Fatalf("successful rows: %v", succ)
	}
	p1 := succ["P-1"]
	if !regexp.MustCompile(`^01t[0-9A-Za-z]{15}$`).MatchString(p1["sf__Id"]) || p1["sf__Created"] != "true" {
		t.Errorf("P-1 = %v", p1)
	}
	// Values come back re-serialised (3.2): 912260031 -> 9.12260031E8.
	if p1["Price__c"] != "9.12260031E8" || p1["Description"] != "Lorem\nIpsum, \"quoted\"" {
		t.Errorf("P-1 values = %v", p1)
	}
	if succ["P-2"]["IsActive"] != "false" || succ["P-2"]["Family"] != "Software" || succ["P-2"]["Price__c"] != "19.99" {
		t.Errorf("P-2 values = %v", succ["P-2"])
	}
	// Every data value is quoted.
	if !strings.Contains(raw, `"true","P-1","Widget","9.12260031E8","true","Hardware","2025-03-04","Lorem`) {
		t.Errorf("data values not all quoted: %s", raw)
	}

	raw, failed := c.results(id, "failedResults")
	if !strings.HasPrefix(raw, `"sf__Id","sf__Error",External_Id__c,Name`) {
		t.Errorf("failed header: %q", raw)
	}
	fail := byColumn(t, failed, "External_Id__c")
	want := map[string]string{
		"P-3": "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
		"P-4": "INVALID_TYPE_ON_FIELD_IN_RECORD:Price: value not of required type: abc:Price__c --",
		"P-5": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Toys:Family --",
	}
	for k, w := range want {
		if got := fail[k]["sf__Error"]; got != w {
			t.Errorf("%s sf__Error = %q, want %q", k, got, w)
		}
		if fail[k]["sf__Id"] != "" {
			t.Errorf("%s sf__Id = %q, want empty for a failed insert", k, fail[k]["sf__Id"])
		}
	}
	if raw, rows := c.results(id, "unprocessedrecords"); len(rows) != 1 || raw != "External_Id__c,Name,Price__c,IsActive,Family,Launch_Date__c,Description\n" {
		t.Errorf("unprocessed = %q", raw)
	}

	// A second run updates: sf__Created false, same ids.
	id2, info2 := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,Widget 2\np-2,Gadget 2\n")
	if info2["numberRecordsFailed"].(float64) != 0 {
		t.Fatalf("second run failed rows: %v", info2)
	}
	_, rows := c.results(id2, "successfulResults")
	again := byColumn(t, rows, "External_Id__c")
	if again["P-1"]["sf__Created"] != "false" || again["P-1"]["sf__Id"] != p1["sf__Id"] {
		t.Errorf("update row = %v, first id %s", again["P-1"], p1["sf__Id"])
	}
	if again["p-2"]["sf__Id"] != succ["P-2"]["sf__Id"] {
		t.Errorf("external ids match case-insensitively: %v vs %v", again["p-2"], succ["P-2"])
	}
	recs := c.query("SELECT Name, Price__c, IsActive, Launch_Date__c FROM Product2 WHERE External_Id__c = 'P-1'")
	if len(recs) != 1 || recs[0]["Name"] != "Widget 2" || recs[0]["Price__c"] != 912260031.0 || recs[0]["IsActive"] != true || recs[0]["Launch_Date__c"] != "2025-03-04" {
		t.Errorf("stored record = %v", recs)
	}
}

func TestUploadRules(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessManual, 0), sfemu.WithMaxUploadBytes(100))
	id := c.createJob(upsertProduct)
	if r := c.upload(id, strings.Repeat("x", 101)); r.status != 413 {
		t.Errorf("over-limit upload: %d %s", r.status, r.body)
	}
	// Chunked body (no Content-Length).
	req, _ := newRequest(t, "PUT", c.srv.URL+c.v+"/jobs/ingest/"+id+"/batches", "")
	req.Body = ioNopCloser(strings.NewReader("External_Id__c,Name\nP-1,A\n"))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if r := c.send(req); r.status != 201 {
		t.Fatalf("chunked upload: %d %s", r.status, r.body)
	}
	r := c.upload(id, "External_Id__c,Name\nP-2,B\n")
	if r.status != 400 || r.errorCode() != "BULK_API_ERROR" {
		t.Fatalf("second upload: %d %s", r.status, r.body)
	}
	wantMsg := "Found multipe contents for job: <" + id[:15] + ">, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job."
	if r.errorMessage() != wantMsg {
		t.Errorf("message = %q", r.errorMessage())
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`); r.status != 200 {
		t.Fatalf("close: %d", r.status)
	}
	if r := c.upload(id, "x"); r.status != 400 || r.errorCode() != "INVALIDJOBSTATE" {
		t.Errorf("upload after close: %d %s", r.status, r.body)
	}
	if r := c.get("/jobs/ingest/" + id + "/successfulResults"); r.status != 400 || r.errorCode() != "INVALIDJOBSTATE" {
		t.Errorf("results before terminal: %d %s", r.status, r.body)
	}
	if got := c.jobInfo(id)["state"]; got != "UploadComplete" {
		t.Errorf("manual mode: state %v before ProcessJobs", got)
	}
	c.emu.ProcessJobs()
	if got := c.jobInfo(id)["state"]; got != "JobComplete" {
		t.Errorf("after ProcessJobs: %v", got)
	}
}

func TestStateTransitions(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	id := c.createJob(upsertProduct)
	// Delete an Open job: refused (2.8).
	if r := c.do("DELETE", c.v+"/jobs/ingest/"+id, "", "", true); r.status != 400 || r.errorCode() != "API_ERROR" {
		t.Errorf("delete open: %d %s", r.status, r.body)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"JobComplete"}`); r.status != 400 || r.errorCode() != "INVALIDJOBSTATE" {
		t.Errorf("bad state: %d %s", r.status, r.body)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`); r.status != 200 {
		t.Fatalf("abort: %d %s", r.status, r.body)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`); r.status != 400 || r.errorCode() != "INVALIDJOBSTATE" {
		t.Errorf("abort twice: %d %s", r.status, r.body)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`); r.status != 400 || r.errorCode() != "INVALIDJOBSTATE" {
		t.Errorf("close aborted: %d %s", r.status, r.body)
	}
	if r := c.do("DELETE", c.v+"/jobs/ingest/"+id, "", "", true); r.status != 204 || r.body != "" {
		t.Errorf("delete aborted: %d %s", r.status, r.body)
	}
	for _, p := range []string{"", "/batches", "/successfulResults"} {
		m := "GET"
		if p == "/batches" {
			m = "PUT"
		}
		r := c.do(m, c.v+"/jobs/ingest/"+id+p, "text/csv", "", true)
		if r.status != 404 || r.body != `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]` {
			t.Errorf("%s deleted job%s: %d %s", m, p, r.status, r.body)
		}
	}
	if r := c.get("/jobs/ingest/750000000000000AAA"); r.status != 404 {
		t.Errorf("unknown job: %d", r.status)
	}

	// Abort after close, before processing: every row unprocessed.
	id = c.createJob(upsertProduct)
	c.upload(id, "External_Id__c,Name\nP-1,A\nP-2,B\n")
	c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`)
	if r := c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`); r.status != 200 {
		t.Fatalf("abort closed job: %d %s", r.status, r.body)
	}
	c.emu.ProcessJobs()
	if raw, _ := c.results(id, "unprocessedrecords"); raw != "External_Id__c,Name\n\"P-1\",\"A\"\n\"P-2\",\"B\"\n" {
		t.Errorf("unprocessed = %q", raw)
	}
	if raw, _ := c.results(id, "successfulResults"); raw != "\"sf__Id\",\"sf__Created\",External_Id__c,Name\n" {
		t.Errorf("successful of aborted = %q", raw)
	}
}

func TestJobLevelFailures(t *testing.T) {
	tests := []struct {
		name, create, data, msg string
	}{
		{"unknown field", upsertProduct, "External_Id__c,Foo__c\nP-1,x\n", "InvalidBatch : Field name not found : Foo__c"},
		{"BOM", upsertProduct, "\ufeffExternal_Id__c,Name\nP-1,x\n", "InvalidBatch : Field name not found : \ufeffExternal_Id__c"},
		{"CRLF in LF job", upsertProduct, "External_Id__c,Name\r\nP-1,x\r\n", "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"},
		{"LF in CRLF job", strings.Replace(upsertProduct, `"LF"`, `"CRLF"`, 1), "External_Id__c,Name\nP-1,x\n", "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is CRLF"},
		{"CR inside value of LF job", upsertProduct, "External_Id__c,Name\nP-1,\"a\rb\"\n", "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"},
		{"unknown relationship", upsertProduct, "External_Id__c,Name,Owner__r.Name\nP-1,x,y\n", "InvalidBatch : Unable to find relationship: Owner__r"},
		{"polymorphic prefix", upsertProduct, "External_Id__c,Name,Account:Account__r.External_Id__c\nP-1,x,y\n", "InvalidBatch : type is not needed for non polymorphic foreign key references: Account__r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
			id, info := c.runJob(tt.create, tt.data)
			if info["state"] != "Failed" || info["errorMessage"] != tt.msg {
				t.Errorf("state %v errorMessage %q, want Failed %q", info["state"], info["errorMessage"], tt.msg)
			}
			if info["numberRecordsProcessed"].(float64) != 0 {
				t.Errorf("processed = %v", info["numberRecordsProcessed"])
			}
			_, rows := c.results(id, "unprocessedrecords")
			if len(rows) != 2 {
				t.Errorf("unprocessed rows = %v", rows)
			}
		})
	}
}

func TestFailNextJob(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	c.emu.FailNextJob("InvalidBatch : retries exhausted")
	id, info := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,A\n")
	if info["state"] != "Failed" || info["errorMessage"] != "InvalidBatch : retries exhausted" {
		t.Fatalf("info = %v", info)
	}
	if _, rows := c.results(id, "unprocessedrecords"); len(rows) != 2 {
		t.Errorf("unprocessed = %v", rows)
	}
	if _, info := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,A\n"); info["state"] != "JobComplete" {
		t.Errorf("only the next job fails: %v", info)
	}
}

func TestListJobsPaging(t *testing.T) {
	c := newTC(t, sfemu.WithListPageSize(2))
	var ids []string
	for range 5 {
		ids = append(ids, c.createJob(upsertProduct))
	}
	var got []string
	next := c.v + "/jobs/ingest"
	pages := 0
	for next != "" {
		r := c.do("GET", next, "", "", true)
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var page struct {
			Done           bool             `json:"done"`
			Records        []map[string]any `json:"records"`
			NextRecordsURL *string          `json:"nextRecordsUrl"`
		}
		r.json(&page)
		for _, rec := range page.Records {
			got = append(got, rec["id"].(string))
			// The fields of the documented example (2.9), in its order.
			keys := regexp.MustCompile(`"([A-Za-z]+)":`).FindAllStringSubmatch(strings.SplitN(r.body, `"id":"`+rec["id"].(string), 2)[1], -1)
			var names []string
			for _, k := range keys[:12] {
				names = append(names, k[1])
			}
			if want := "operation object createdById createdDate systemModstamp state concurrencyMode contentType apiVersion jobType lineEnding columnDelimiter"; strings.Join(names, " ") != want || len(rec) != 13 {
				t.Errorf("list record fields %v (%d), want id %s", names, len(rec), want)
			}
		}
		next = ""
		if !page.Done {
			next = *page.NextRecordsURL
		}
		pages++
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) || pages != 3 {
		t.Errorf("listed %v in %d pages, want %v in 3", got, pages, ids)
	}
	if r := c.get("/jobs/ingest?jobType=Classic"); !strings.Contains(r.body, `"records":[]`) {
		t.Errorf("Classic filter: %s", r.body)
	}
}

func TestShuffledResults(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	var b strings.Builder
	b.WriteString("External_Id__c,Name\n")
	for i := range 50 {
		fmt.Fprintf(&b, "P-%02d,N\n", i)
	}
	id, _ := c.runJob(upsertProduct, b.String())
	_, rows := c.results(id, "successfulResults")
	inOrder := true
	for i, row := range rows[1:] {
		if row[2] != fmt.Sprintf("P-%02d", i) {
			inOrder = false
		}
	}
	if inOrder || len(rows) != 51 {
		t.Errorf("results are in upload order (or missing): %d rows", len(rows))
	}
}

// TestLargeJob crosses internal batches (10,000 rows), the two-stage
// processing and the parallel rendering of results.
func TestLargeJob(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	const n = 25_000
	var b strings.Builder
	b.WriteString("External_Id__c,Name,Price__c\n")
	for i := range n {
		name := fmt.Sprintf("N%d", i)
		if i%1000 == 7 {
			name = "" // required on insert: fails
		}
		fmt.Fprintf(&b, "K-%d,\"%s\",%d\n", i, name, i)
	}
	id, info := c.runJob(upsertProduct, b.String())
	if info["numberRecordsProcessed"].(float64) != n || info["numberRecordsFailed"].(float64) != 25 {
		t.Fatalf("counters: %v", info)
	}
	_, ok := c.results(id, "successfulResults")
	_, failed := c.results(id, "failedResults")
	if len(ok)-1 != n-25 || len(failed)-1 != 25 {
		t.Fatalf("rows: %d successful, %d failed", len(ok)-1, len(failed)-1)
	}
	seenIDs := map[string]bool{}
	for _, row := range ok[1:] {
		key, price := row[2], row[4]
		var i int
		fmt.Sscanf(key, "K-%d", &i)
		if row[3] != fmt.Sprintf("N%d", i) || price != fmt.Sprintf("%d.0", i) && !strings.Contains(price, "E") {
			t.Fatalf("row %v does not echo its own values", row)
		}
		if seenIDs[row[0]] || row[1] != "true" {
			t.Fatalf("row %v: duplicate id or not created", row)
		}
		seenIDs[row[0]] = true
	}
	for _, row := range failed[1:] {
		if !strings.HasPrefix(row[1], "REQUIRED_FIELD_MISSING:") || row[0] != "" {
			t.Errorf("failed row %v", row)
		}
	}
	r := c.get("/query?q=SELECT+COUNT()+FROM+Product2")
	if !strings.Contains(r.body, fmt.Sprintf(`"totalSize":%d`, n-25)) {
		t.Errorf("count: %s", r.body)
	}
	// Records on later pages of the store are found again by key and by ID.
	idOf := map[string]string{}
	for _, row := range ok[1:] {
		idOf[row[2]] = row[0]
	}
	b.Reset()
	b.WriteString("External_Id__c,Name\n")
	for i := 0; i < n; i += 997 {
		fmt.Fprintf(&b, "K-%d,Renamed %d\n", i, i)
	}
	b.WriteString("K-24999,Last\n")
	id, _ = c.runJob(upsertProduct, b.String())
	_, ok = c.results(id, "successfulResults")
	for _, row := range ok[1:] {
		if want := idOf[row[2]]; row[1] != "false" || row[0] != want {
			t.Errorf("update of %s: sf__Id %s created %s, want the first run's %s", row[2], row[0], row[1], want)
		}
	}
	if r := c.get("/sobjects/Product2/" + idOf["K-24999"] + "?fields=Name"); !strings.Contains(r.body, `"Name":"Last"`) {
		t.Errorf("GET of the last record: %d %s", r.status, r.body)
	}
}

// TestChunkedUploads sends uploads without Content-Length, larger than the
// blocks they are read in, and over the limit: the data arrives whole and
// the limit holds (salesforce-api.md 2.4).
func TestChunkedUploads(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithMaxUploadBytes(2_000_000))
	put := func(id, data string) resp {
		req, _ := newRequest(t, "PUT", c.srv.URL+c.v+"/jobs/ingest/"+id+"/batches", "")
		req.Body = ioNopCloser(strings.NewReader(data)) // no length: sent chunked
		req.ContentLength = -1
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+c.token)
		return c.send(req)
	}
	var b strings.Builder
	b.WriteString("External_Id__c,Name\n")
	for i := 0; b.Len() < 1_500_000; i++ {
		fmt.Fprintf(&b, "P-%07d,Product %d\n", i, i)
	}
	data := b.String()
	id := c.createJob(upsertProduct)
	if r := put(id, data); r.status != 201 {
		t.Fatalf("chunked upload: %d %s", r.status, r.body)
	}
	if jobs := c.emu.Jobs(); jobs[0].UploadedBytes != len(data) {
		t.Fatalf("uploaded %d bytes, sent %d", jobs[0].UploadedBytes, len(data))
	}
	c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`)
	info := c.jobInfo(id)
	rows := strings.Count(data, "\n") - 1
	if info["state"] != "JobComplete" || info["numberRecordsProcessed"] != float64(rows) || info["numberRecordsFailed"] != 0.0 {
		t.Errorf("job = %v, want %d rows processed", info, rows)
	}
	id = c.createJob(upsertProduct)
	if r := put(id, data+data); r.status != 413 || r.errorCode() != "EXCEEDED_QUOTA" {
		t.Errorf("chunked upload over the limit: %d %s", r.status, r.body)
	}
}

// TestJobInfoFieldsByState pins which fields GET jobs/ingest/{id} shows in
// each state (salesforce-api.md 2.3): contentUrl only while Open, the two
// numberRecords* counters once processing started, errorMessage only for
// a failed job; the other fields always.
func TestJobInfoFieldsByState(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	always := []string{"id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state", "externalIdFieldName",
		"concurrencyMode", "contentType", "apiVersion", "jobType", "lineEnding", "columnDelimiter",
		"retries", "totalProcessingTime", "apiActiveProcessingTime", "apexProcessingTime"}
	check := func(id, state string, extra ...string) {
		t.Helper()
		info := c.jobInfo(id)
		if info["state"] != state {
			t.Fatalf("state = %v, want %s", info["state"], state)
		}
		want := append(append([]string(nil), always...), extra...)
		sort.Strings(want)
		if got := sortedKeys(info); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: fields\n %v\nwant\n %v", state, got, want)
		}
	}
	counters := []string{"numberRecordsProcessed", "numberRecordsFailed"}

	id := c.createJob(upsertProduct)
	check(id, "Open", "contentUrl")
	c.upload(id, "External_Id__c,Name\nP-1,A\nP-2,\n")
	c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`)
	check(id, "UploadComplete")
	c.emu.ProcessJobs()
	check(id, "JobComplete", counters...)
	if info := c.jobInfo(id); info["numberRecordsProcessed"] != 2.0 || info["numberRecordsFailed"] != 1.0 {
		t.Errorf("counters = %v/%v, want 2 processed (the failed one included), 1 failed", info["numberRecordsProcessed"], info["numberRecordsFailed"])
	}

	id = c.createJob(upsertProduct)
	c.upload(id, "Foo__c\n1\n")
	c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`)
	c.emu.ProcessJobs()
	check(id, "Failed", append(counters, "errorMessage")...)

	id = c.createJob(upsertProduct)
	c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`)
	check(id, "Aborted", counters...)
}
