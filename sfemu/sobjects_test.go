package sfemu_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestUpsertByExternalID(t *testing.T) {
	c := newTC(t)
	path := "/sobjects/Migration_Status__c/External_Ref__c/PRODUCT_PRICE"

	// updateOnly=true with no record: 404, nothing created (5.3).
	r := c.patch(path+"?updateOnly=true", `{"Status__c":"In Progress"}`)
	if r.status != 404 || r.body != `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]` {
		t.Fatalf("updateOnly miss: %d %s", r.status, r.body)
	}
	if n := len(c.query("SELECT Id FROM Migration_Status__c")); n != 0 {
		t.Fatalf("updateOnly created %d records", n)
	}

	r = c.patch(path, `{"Status__c":"Not Started","Records_Total__c":10}`)
	if r.status != 201 {
		t.Fatalf("create by upsert: %d %s", r.status, r.body)
	}
	if !regexp.MustCompile(`^\{"id":"a\w{17}","success":true,"errors":\[\],"created":true\}$`).MatchString(r.body) {
		t.Errorf("201 body = %s", r.body)
	}
	var created map[string]any
	r.json(&created)
	id := created["id"].(string)

	r = c.patch(path+"?updateOnly=true", `{"Status__c":"Uploaded","Records_Failed__c":0}`)
	if r.status != 200 || r.body != `{"id":"`+id+`","success":true,"errors":[],"created":false}` {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	recs := c.query("SELECT External_Ref__c, Status__c, Records_Total__c, Records_Failed__c FROM Migration_Status__c")
	if len(recs) != 1 || recs[0]["Status__c"] != "Uploaded" || recs[0]["Records_Total__c"] != 10.0 || recs[0]["Records_Failed__c"] != 0.0 {
		t.Errorf("record = %v", recs)
	}

	// Before v46.0 an update answers 204 (5.2).
	r = c.do("PATCH", "/services/data/v45.0"+path, "application/json", `{"Status__c":"Failed"}`, true)
	if r.status != 204 || r.body != "" {
		t.Errorf("v45 update: %d %q", r.status, r.body)
	}

	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"unknown object", "/sobjects/Nope__c/External_Ref__c/X", `{}`, 404, "NOT_FOUND"},
		{"unknown field", "/sobjects/Migration_Status__c/Nope__c/X", `{}`, 404, "NOT_FOUND"},
		{"not an external id", "/sobjects/Migration_Status__c/Status__c/X", `{}`, 400, "INVALID_FIELD"},
		{"empty body", path, ``, 400, "JSON_PARSER_ERROR"},
		{"bad json", path, `{"Status__c":}`, 400, "JSON_PARSER_ERROR"},
		{"unknown body field", path, `{"Foo__c":1}`, 400, "INVALID_FIELD"},
		{"key in body", path, `{"External_Ref__c":"X"}`, 400, "INVALID_FIELD"},
		{"bad picklist", path, `{"Status__c":"Done"}`, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"},
		{"bad number", path, `{"Records_Total__c":"many"}`, 400, "INVALID_TYPE_ON_FIELD_IN_RECORD"},
		{"too long", path, `{"Last_Run_Id__c":"` + strings.Repeat("x", 81) + `"}`, 400, "STRING_TOO_LONG"},
	}
	// The bodies salesforce-api.md 5.2 gives, exactly.
	exact := map[string]string{
		"unknown object":     `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`,
		"unknown field":      `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`,
		"not an external id": `[{"message":"Invalid field for upsert, must be an External Id custom or standard indexed field: Status__c","errorCode":"INVALID_FIELD"}]`,
		"empty body":         `[{"message":"The HTTP entity body is required, but this request has no entity body.","errorCode":"JSON_PARSER_ERROR"}]`,
		"bad picklist":       `[{"message":"bad value for restricted picklist field: Done","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Status__c"]}]`,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.patch(tt.path, tt.body)
			if r.status != tt.status || r.errorCode() != tt.code {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			if want, ok := exact[tt.name]; ok && r.body != want {
				t.Errorf("body %s\nwant %s", r.body, want)
			}
		})
	}
	if r := c.patch(path, ``); r.errorMessage() != "The HTTP entity body is required, but this request has no entity body." {
		t.Errorf("empty body message: %s", r.body)
	}
}

func TestUpsertMultipleMatches(t *testing.T) {
	defs := []sfemu.ObjectDef{{Name: "Thing__c", Fields: []sfemu.FieldDef{
		{Name: "Key__c", Type: "string", Length: 20, ExternalID: true}, // not unique
		{Name: "Note__c", Type: "string"},
	}}}
	c := newTC(t, sfemu.WithObjects(defs))
	for range 2 {
		if r := c.post("/sobjects/Thing__c/", `{"Key__c":"K","Note__c":"n"}`); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	r := c.patch("/sobjects/Thing__c/Key__c/K", `{"Note__c":"x"}`)
	if r.status != 300 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var urls []string
	r.json(&urls)
	if len(urls) != 2 || !strings.HasPrefix(urls[0], "/services/data/v66.0/sobjects/Thing__c/a00") {
		t.Errorf("urls = %v", urls)
	}
}

func TestCreateGetDescribe(t *testing.T) {
	c := newTC(t)
	r := c.post("/sobjects/Account", `{"Name":"Acme","External_Id__c":"A-1"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var cr map[string]any
	r.json(&cr)
	id := cr["id"].(string)
	if !strings.HasPrefix(id, "001") || cr["success"] != true {
		t.Errorf("create = %v", cr)
	}
	if r := c.post("/sobjects/Account", `{"External_Id__c":"A-2"}`); r.status != 400 || r.body != `[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]` {
		t.Errorf("missing Name: %d %s", r.status, r.body)
	}
	if r := c.post("/sobjects/Account", `{"Name":"Dup","External_Id__c":"a-1"}`); r.status != 400 || r.errorCode() != "DUPLICATE_VALUE" {
		t.Errorf("duplicate unique: %d %s", r.status, r.body)
	}

	r = c.get("/sobjects/Account/" + id + "?fields=Name,External_Id__c")
	if r.status != 200 || r.body != `{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/`+id+`"},"Name":"Acme","External_Id__c":"A-1"}` {
		t.Errorf("get: %d %s", r.status, r.body)
	}
	// 15-character and case-changed 18-character IDs find the record too.
	if r := c.get("/sobjects/Account/" + id[:15]); r.status != 200 {
		t.Errorf("15-char get: %d", r.status)
	}
	if r := c.get("/sobjects/Account/not-an-id"); r.status != 404 || r.errorMessage() != "Provided external ID field does not exist or is not accessible: not-an-id" {
		t.Errorf("bad id: %d %s", r.status, r.body)
	}

	// Product with a lookup by external ID in JSON.
	r = c.post("/sobjects/Product2", `{"Name":"W","External_Id__c":"P-1","Account__r":{"External_Id__c":"A-1"}}`)
	if r.status != 201 {
		t.Fatalf("create with relationship: %d %s", r.status, r.body)
	}
	recs := c.query("SELECT Name, Account__c, Account__r.External_Id__c FROM Product2")
	if len(recs) != 1 || recs[0]["Account__c"] != id {
		t.Fatalf("lookup = %v", recs)
	}
	if rel := recs[0]["Account__r"].(map[string]any); rel["External_Id__c"] != "A-1" {
		t.Errorf("Account__r = %v", rel)
	}

	r = c.get("/sobjects/Product2/describe/")
	if r.status != 200 {
		t.Fatalf("describe: %d", r.status)
	}
	var d struct {
		Name      string           `json:"name"`
		KeyPrefix string           `json:"keyPrefix"`
		Fields    []map[string]any `json:"fields"`
	}
	r.json(&d)
	if d.Name != "Product2" || d.KeyPrefix != "01t" {
		t.Errorf("describe = %s %s", d.Name, d.KeyPrefix)
	}
	byName := map[string]map[string]any{}
	for _, f := range d.Fields {
		byName[f["name"].(string)] = f
	}
	checks := map[string]map[string]any{
		"Id":             {"type": "id", "length": 18.0, "createable": false, "idLookup": true},
		"Name":           {"type": "string", "length": 255.0, "nillable": false, "createable": true},
		"External_Id__c": {"type": "string", "externalId": true, "unique": true, "idLookup": true, "custom": true},
		"Account__c":     {"type": "reference", "relationshipName": "Account__r", "length": 18.0},
		"Price__c":       {"type": "currency", "precision": 18.0, "scale": 2.0},
		"IsActive":       {"type": "boolean", "nillable": false, "defaultedOnCreate": true},
		"CreatedDate":    {"type": "datetime", "createable": false},
	}
	for name, want := range checks {
		f := byName[name]
		if f == nil {
			t.Errorf("describe lacks %s", name)
			continue
		}
		for k, v := range want {
			if f[k] != v {
				t.Errorf("%s.%s = %v, want %v", name, k, f[k], v)
			}
		}
	}
	if refs := byName["Account__c"]["referenceTo"].([]any); len(refs) != 1 || refs[0] != "Account" {
		t.Errorf("referenceTo = %v", refs)
	}
	if pv := byName["Family"]["picklistValues"].([]any); len(pv) != 4 {
		t.Errorf("picklistValues = %v", pv)
	}
	if r := c.get("/sobjects/Nope/describe"); r.status != 404 || r.errorCode() != "NOT_FOUND" {
		t.Errorf("unknown describe: %d %s", r.status, r.body)
	}
	// If-Modified-Since (7.1): 304 when the definitions did not change
	// since then, the full describe for an earlier time.
	for _, tt := range []struct {
		since  time.Time
		status int
	}{{time.Now().Add(time.Hour), 304}, {time.Now().Add(-time.Hour), 200}} {
		req, _ := newRequest(t, "GET", c.srv.URL+c.v+"/sobjects/Product2/describe", "")
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("If-Modified-Since", tt.since.UTC().Format(http.TimeFormat))
		if r := c.send(req); r.status != tt.status || (tt.status == 304) != (r.body == "") {
			t.Errorf("If-Modified-Since %v: %d %.40s, want %d", tt.since, r.status, r.body, tt.status)
		}
	}
}
