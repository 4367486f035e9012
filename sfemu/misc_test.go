package sfemu_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestJobLifetimes(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	c := newTC(t, sfemu.WithClock(func() time.Time { return now }), sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	open := c.createJob(upsertProduct)
	done, _ := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,A\n")
	now = now.Add(24 * time.Hour)
	// An Open job not closed within 24 h is aborted [I] (2.6).
	if info := c.jobInfo(open); info["state"] != "Aborted" {
		t.Errorf("open job after 24h: %v", info["state"])
	}
	now = now.Add(6 * 24 * time.Hour)
	// Terminal jobs and their results go after 7 days [D].
	if r := c.get("/jobs/ingest/" + done + "/successfulResults"); r.status != 404 {
		t.Errorf("results after 7 days: %d", r.status)
	}
}

func TestJobRequestErrors(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	id := c.createJob(upsertProduct)
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"patch bad json", "PATCH", "/jobs/ingest/" + id, "application/json", `{"state":`, 400, "JSON_PARSER_ERROR"},
		{"patch no state", "PATCH", "/jobs/ingest/" + id, "application/json", `{}`, 400, "INVALIDJOBSTATE"},
		{"patch wrong type", "PATCH", "/jobs/ingest/" + id, "application/json", `{"state":5}`, 400, "JSON_PARSER_ERROR"},
		{"upload json", "PUT", "/jobs/ingest/" + id + "/batches", "application/json", `{}`, 415, "INVALIDCONTENTTYPE"},
		{"bad locator", "GET", "/jobs/ingest?queryLocator=nonsense", "", "", 400, "INVALID_QUERY_LOCATOR"},
		{"bad jobType", "GET", "/jobs/ingest?jobType=Bogus", "", "", 400, "API_ERROR"},
		{"unknown job results", "GET", "/jobs/ingest/7505g0000000001AAA/failedResults", "", "", 404, "NOT_FOUND"},
		{"bad query locator", "GET", "/query/01gXYZ-2000", "", "", 400, "INVALID_QUERY_LOCATOR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.method, c.v+tt.path, tt.ctype, tt.body, true)
			if r.status != tt.status || r.errorCode() != tt.code {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	if r := c.do("HEAD", c.v+"/jobs/ingest/"+id, "", "", true); r.status != 200 || r.body != "" {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}
}

func TestRecordREST(t *testing.T) {
	c := newTC(t)
	r := c.patch("/sobjects/Account/External_Id__c/A-1", `{"Name":"Acme"}`)
	if r.status != 201 {
		t.Fatalf("upsert: %d %s", r.status, r.body)
	}
	var res map[string]any
	r.json(&res)
	id := res["id"].(string)
	if r.header.Get("Location") != "/services/data/v66.0/sobjects/Account/"+id {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	if r := c.get("/sobjects/Account/External_Id__c/a-1?fields=Id,Name"); r.status != 200 || r.body != `{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/`+id+`"},"Id":"`+id+`","Name":"Acme"}` {
		t.Errorf("get by external id: %d %s", r.status, r.body)
	}
	if r := c.patch("/sobjects/Account/"+id, `{"Name":"Acme 2"}`); r.status != 204 || r.body != "" {
		t.Errorf("update by id: %d %s", r.status, r.body)
	}
	if r := c.patch("/sobjects/Account/"+id, `{"Name":null}`); r.status != 400 || r.errorCode() != "REQUIRED_FIELD_MISSING" {
		t.Errorf("null required: %d %s", r.status, r.body)
	}
	if r := c.get("/sobjects/Account/01t5g0000000001AAA"); r.status != 400 || r.body != `[{"message":"Account ID: id value of incorrect type: 01t5g0000000001AAA","errorCode":"MALFORMED_ID","fields":["Id"]}]` {
		t.Errorf("id of another object: %d %s", r.status, r.body)
	}
	if r := c.get("/sobjects/Account/" + id + "?fields=Nope"); r.status != 400 || r.errorCode() != "INVALID_FIELD" {
		t.Errorf("bad fields: %d %s", r.status, r.body)
	}
	if r := c.do("DELETE", c.v+"/sobjects/Account/"+id, "", "", true); r.status != 204 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := c.get("/sobjects/Account/" + id); r.status != 404 || r.errorCode() != "NOT_FOUND" {
		t.Errorf("get deleted: %d %s", r.status, r.body)
	}
	if r := c.get("/sobjects/Account/External_Id__c/A-1"); r.status != 404 {
		t.Errorf("deleted record still found by key: %d", r.status)
	}
	if r := c.get("/sobjects"); r.status != 200 || r.header.Get("Sforce-Limit-Info") == "" {
		t.Errorf("global describe: %d", r.status)
	}
	if r := c.get("/limits"); r.status != 200 {
		t.Errorf("limits: %d", r.status)
	}
}

// TestAbortWhileInProgress aborts a job while it is being processed: rows
// already saved stay, the rest are unprocessed, and every uploaded row is
// in exactly one result set (salesforce-api.md 2.5, 3.1).
func TestAbortWhileInProgress(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	const n = 60_000
	var b strings.Builder
	b.WriteString("External_Id__c,Name\n")
	for i := range n {
		fmt.Fprintf(&b, "K-%d,N\n", i)
	}
	id := c.createJob(upsertProduct)
	c.upload(id, b.String())
	c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`)
	go c.emu.ProcessJobs()
	if _, err := c.emu.AwaitJob(t.Context(), id, "InProgress", "JobComplete"); err != nil {
		t.Fatal(err)
	}
	r := c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`)
	st, err := c.emu.AwaitJob(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case r.status == 200 && st != "Aborted":
		t.Fatalf("abort answered 200 but the job ended %s", st)
	case r.status == 400 && st != "JobComplete":
		t.Fatalf("abort refused (%s) but the job ended %s", r.body, st)
	}
	info := c.jobInfo(id)
	_, ok := c.results(id, "successfulResults")
	_, failed := c.results(id, "failedResults")
	_, unproc := c.results(id, "unprocessedrecords")
	processed := int(info["numberRecordsProcessed"].(float64))
	if len(ok)-1+len(failed)-1 != processed || processed+len(unproc)-1 != n {
		t.Errorf("%s: processed %d, successful %d, failed %d, unprocessed %d of %d", st, processed, len(ok)-1, len(failed)-1, len(unproc)-1, n)
	}
	t.Logf("abort -> %s after %d of %d rows", st, processed, n)
}
