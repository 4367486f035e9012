package sfemu_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestRowValidation checks each record-level rule of salesforce-api.md
// 3.3, 4.1-4.3 through a Bulk API 2.0 upsert and the sf__Error text.
func TestRowValidation(t *testing.T) {
	long := strings.Repeat("é", 81) // 81 characters, 162 bytes
	tests := []struct {
		name, header, row string
		wantErr           string // "" = success
	}{
		{"ok", "Name", "W", ""},
		{"string too long", "Name,ProductCode", "W," + strings.Repeat("x", 256), "STRING_TOO_LONG:ProductCode: data value too large: " + strings.Repeat("x", 256) + " (max length=255):ProductCode --"},
		{"length in characters", "Name,Description", "W," + long, ""},
		{"bad boolean", "Name,IsActive", "W,yes", "INVALID_TYPE_ON_FIELD_IN_RECORD:IsActive: value not of required type: yes:IsActive --"},
		{"bad date", "Name,Launch_Date__c", "W,2025-02-30", "INVALID_TYPE_ON_FIELD_IN_RECORD:Launch Date: value not of required type: 2025-02-30:Launch_Date__c --"},
		{"date with offset", "Name,Launch_Date__c", "W,2025-02-03+01:00", "INVALID_TYPE_ON_FIELD_IN_RECORD:Launch Date: value not of required type: 2025-02-03+01:00:Launch_Date__c --"},
		{"datetime offset", "Name,Last_Changed__c", "W,2025-03-04T10:15:02.000+01:00", ""},
		{"datetime no millis", "Name,Last_Changed__c", "W,2025-03-04T10:15:02Z", ""},
		{"bad datetime", "Name,Last_Changed__c", "W,2025-03-04 25:00", "INVALID_TYPE_ON_FIELD_IN_RECORD:Last Changed: value not of required type: 2025-03-04 25:00:Last_Changed__c --"},
		{"scientific number", "Name,Price__c", "W,1.5E3", ""},
		{"thousands separator", "Name,Price__c", "W,\"1,000.00\"", "INVALID_TYPE_ON_FIELD_IN_RECORD:Price: value not of required type: 1,000.00:Price__c --"},
		{"number too large", "Name,Price__c", "W,1E17", "NUMBER_OUTSIDE_VALID_RANGE:Price: value outside of valid range on numeric field: 1E17:Price__c --"},
		{"picklist any case", "Name,Family", "W,spare parts", ""},
		{"bad picklist", "Name,Family", "W,Toys", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Toys:Family --"},
		{"Id on insert path", "Name,Id", "W,01t5g0000000001AAA", ""}, // upsert by External_Id__c ignores nothing: Id is only checked for insert jobs
		{"system field", "Name,CreatedDate", "W,2025-01-01T00:00:00Z", "INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: CreatedDate. Please check the security settings of this field and verify that it is read/write for your profile or permission set.:CreatedDate --"},
		{"bad lookup id", "Name,Account__c", "W,nonsense", "MALFORMED_ID:Account: id value of incorrect type: nonsense:Account__c --"},
		{"lookup id of other object", "Name,Account__c", "W,01t5g0000000001AAA", "FIELD_INTEGRITY_EXCEPTION:Account: id value of incorrect type: 01t5g0000000001AAA:Account__c --"},
		{"lookup id not found", "Name,Account__c", "W,0015g00000000ZZ" + "AAA", "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"},
		{"parent key not found", "Name,Account__r.External_Id__c", "W,A-77", "INVALID_FIELD:Foreign key external ID: A-77 not found for field External_Id__c in entity Account:--"},
		{"wrong column count", "Name", "W,extra", "INVALID_FIELD:Incorrect number of columns in row: the header has 2, this row has 3:--"},
		{"bare quote", "Name", `W"x`, "INVALID_FIELD:Invalid CSV: a quote (\") inside an unquoted value; quote the whole value and double inner quotes:--"},
		{"space before quote", "Name,Description", `W, "d"`, "INVALID_FIELD:Invalid CSV: a quote (\") inside an unquoted value; quote the whole value and double inner quotes:--"},
		{"empty key", "Name", "W", ""}, // placeholder replaced below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
			data := "External_Id__c," + tt.header + "\nP-1," + tt.row + "\n"
			if tt.name == "empty key" {
				data = "External_Id__c,Name\n,W\n"
				tt.wantErr = "MISSING_ARGUMENT:External_Id__c not specified:--"
			}
			id, info := c.runJob(upsertProduct, data)
			if info["state"] != "JobComplete" {
				t.Fatalf("job: %v", info)
			}
			_, failed := c.results(id, "failedResults")
			_, ok := c.results(id, "successfulResults")
			if tt.wantErr == "" {
				if len(ok) != 2 {
					t.Errorf("want success, failed: %v", failed)
				}
				return
			}
			if len(failed) != 2 {
				t.Fatalf("want a failure, got successful %v", ok)
			}
			if got := failed[1][1]; got != tt.wantErr {
				t.Errorf("sf__Error =\n %q\nwant\n %q", got, tt.wantErr)
			}
		})
	}
}

func TestNullsAndEmptyValues(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	c.runJob(upsertProduct, "External_Id__c,Name,ProductCode,Price__c,IsActive\nP-1,W,PC1,5,true\n")
	// Empty values leave fields unchanged; #N/A clears them (4.2).
	c.runJob(upsertProduct, "External_Id__c,Name,ProductCode,Price__c,IsActive\nP-1,,#N/A,,#N/A\n")
	recs := c.query("SELECT Name, ProductCode, Price__c, IsActive FROM Product2")
	if len(recs) != 1 || recs[0]["Name"] != "W" || recs[0]["ProductCode"] != nil || recs[0]["Price__c"] != 5.0 || recs[0]["IsActive"] != false {
		t.Errorf("after empty/#N/A: %v", recs)
	}
	// #N/A on a required field fails the row.
	id, _ := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,#N/A\n")
	_, failed := c.results(id, "failedResults")
	if len(failed) != 2 || failed[1][1] != "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --" {
		t.Errorf("null required: %v", failed)
	}
	// An updating row that failed reports the record's id (3.1).
	if !strings.HasPrefix(failed[1][0], "01t") {
		t.Errorf("sf__Id of a failed update = %q", failed[1][0])
	}
}

func TestDuplicateExternalIDsInJob(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	id, info := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,A\nP-2,B\np-1,C\nP-1,D\n")
	if info["numberRecordsFailed"].(float64) != 3 {
		t.Fatalf("info %v", info)
	}
	_, failed := c.results(id, "failedResults")
	for _, row := range failed[1:] {
		if want := "DUPLICATE_VALUE:Duplicate external id specified: " + row[2] + ":--"; row[1] != want {
			t.Errorf("sf__Error = %q, want %q", row[1], want)
		}
	}
	if n := len(c.query("SELECT Id FROM Product2")); n != 1 {
		t.Errorf("%d records landed, want only P-2", n)
	}
}

func TestRelationshipColumns(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	_, info := c.runJob(`{"object":"Account","operation":"insert"}`, "Name,External_Id__c\nAcme,A-1\nGlobex,A-2\n")
	if info["numberRecordsFailed"].(float64) != 0 {
		t.Fatalf("accounts: %v", info)
	}
	accts := map[string]string{}
	for _, r := range c.query("SELECT Id, External_Id__c FROM Account") {
		accts[r["External_Id__c"].(string)] = r["Id"].(string)
	}
	_, info = c.runJob(upsertProduct, "External_Id__c,Name,Account__r.External_Id__c\nP-1,W,A-1\nP-2,G,a-2\nP-3,X,\n")
	if info["numberRecordsFailed"].(float64) != 0 {
		t.Fatalf("products: %v", info)
	}
	got := map[string]any{}
	for _, r := range c.query("SELECT External_Id__c, Account__c FROM Product2") {
		got[r["External_Id__c"].(string)] = r["Account__c"]
	}
	if got["P-1"] != accts["A-1"] || got["P-2"] != accts["A-2"] || got["P-3"] != nil {
		t.Errorf("lookups = %v, accounts %v", got, accts)
	}
	// By Id through the relationship, and #N/A clears the lookup.
	c.runJob(upsertProduct, "External_Id__c,Account__r.Id\nP-3,"+accts["A-2"]+"\nP-1,#N/A\n")
	for _, r := range c.query("SELECT External_Id__c, Account__c FROM Product2 WHERE External_Id__c IN ('P-1','P-3')") {
		want := map[string]any{"P-1": nil, "P-3": accts["A-2"]}[r["External_Id__c"].(string)]
		if r["Account__c"] != want {
			t.Errorf("%v: Account__c = %v, want %v", r["External_Id__c"], r["Account__c"], want)
		}
	}
	// Product_Price__c -> Product2 by its external id.
	_, info = c.runJob(`{"object":"Product_Price__c","operation":"upsert","externalIdFieldName":"External_Id__c"}`,
		"External_Id__c,Product__r.External_Id__c,Currency__c,Unit_Price__c,Valid_From__c,Is_Active__c,Updated_At__c\nPP-1,P-1,EUR,12.3456,2025-01-01,true,2025-03-04T10:15:02Z\n")
	if info["numberRecordsFailed"].(float64) != 0 {
		t.Errorf("prices: %v", info)
	}
	recs := c.query("SELECT Product__r.Name, Unit_Price__c, Updated_At__c FROM Product_Price__c")
	if len(recs) != 1 || recs[0]["Unit_Price__c"] != 12.3456 || recs[0]["Updated_At__c"] != "2025-03-04T10:15:02.000+0000" {
		t.Errorf("price = %v", recs)
	}
	if p, _ := recs[0]["Product__r"].(map[string]any); p == nil || p["Name"] != "W" {
		t.Errorf("Product__r = %v", recs[0]["Product__r"])
	}
}

func TestOperations(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	// insert, with the unique check against existing records.
	id, info := c.runJob(`{"object":"Account","operation":"insert"}`, "Name,External_Id__c\nAcme,A-1\nDup,A-1\nNoKey,\n")
	if info["numberRecordsFailed"].(float64) != 1 {
		t.Fatalf("insert: %v", info)
	}
	_, failed := c.results(id, "failedResults")
	if !strings.HasPrefix(failed[1][1], "DUPLICATE_VALUE:duplicate value found: External_Id__c duplicates value on record with id: 001") {
		t.Errorf("dup insert: %v", failed[1])
	}
	_, ok := c.results(id, "successfulResults")
	ids := byColumn(t, ok, "Name")
	acme, nokey := ids["Acme"]["sf__Id"], ids["NoKey"]["sf__Id"]
	if ids["Acme"]["sf__Created"] != "true" {
		t.Errorf("insert sf__Created: %v", ids["Acme"])
	}
	// Id on an insert job fails the row.
	id, _ = c.runJob(`{"object":"Account","operation":"insert"}`, "Id,Name\n"+acme+",X\n")
	if _, f := c.results(id, "failedResults"); len(f) != 2 || f[1][1] != "INVALID_FIELD_FOR_INSERT_UPDATE:cannot specify Id in an insert call:Id --" {
		t.Errorf("insert with Id: %v", f)
	}
	// update by Id: found, not found, missing, malformed; 15-char ids work.
	id, info = c.runJob(`{"object":"Account","operation":"update"}`,
		"Id,Name\n"+acme[:15]+",Acme 2\n0015g0000000ZZZAAA,Ghost\n,Nobody\nxyz,Bad\n")
	if info["numberRecordsFailed"].(float64) != 3 {
		t.Fatalf("update: %v", info)
	}
	_, ok = c.results(id, "successfulResults")
	if len(ok) != 2 || ok[1][0] != acme || ok[1][1] != "false" {
		t.Errorf("update ok: %v", ok)
	}
	_, failed = c.results(id, "failedResults")
	errs := map[string]string{}
	for _, r := range failed[1:] {
		errs[r[3]] = r[1]
	}
	want := map[string]string{
		"Ghost":  "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
		"Nobody": "MISSING_ARGUMENT:Id not specified in an update call:--",
		"Bad":    "MALFORMED_ID:Account ID: id value of incorrect type: xyz:Id --",
	}
	for k, w := range want {
		if errs[k] != w {
			t.Errorf("%s: %q, want %q", k, errs[k], w)
		}
	}
	// delete then hardDelete: the second finds the record deleted.
	// Extra columns are allowed in a delete job; only those that name a
	// field are echoed in its results (3.1).
	id, info = c.runJob(`{"object":"Account","operation":"delete"}`, "Id,Name,Note\n"+nokey+",Gone,bye\n")
	if info["numberRecordsFailed"].(float64) != 0 {
		t.Fatalf("delete: %v", info)
	}
	if raw, ok := c.results(id, "successfulResults"); ok[1][0] != nokey || ok[1][1] != "false" ||
		raw != `"sf__Id","sf__Created",Id,Name`+"\n"+`"`+nokey+`","false","`+nokey+`","Gone"`+"\n" {
		t.Errorf("delete result %q", raw)
	}
	id, _ = c.runJob(`{"object":"Account","operation":"hardDelete"}`, "Id\n"+nokey+"\n")
	if _, f := c.results(id, "failedResults"); len(f) != 2 || f[1][1] != "ENTITY_IS_DELETED:entity is deleted:--" || f[1][0] != nokey {
		t.Errorf("delete twice: %v", f)
	}
	if n := len(c.query("SELECT Id FROM Account")); n != 1 {
		t.Errorf("%d accounts left, want 1", n)
	}
	if r := c.get("/sobjects/Account/" + nokey); r.status != 404 {
		t.Errorf("deleted record still served: %d", r.status)
	}
	// update job without an Id column fails the job.
	if _, info := c.runJob(`{"object":"Account","operation":"update"}`, "Name\nX\n"); info["state"] != "Failed" {
		t.Errorf("update without Id: %v", info)
	}
}

func TestDelimitersAndLineEndings(t *testing.T) {
	for name, d := range map[string]string{"TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`", "COMMA": ","} {
		t.Run(name, func(t *testing.T) {
			c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
			create := fmt.Sprintf(`{"object":"Product2","operation":"upsert","externalIdFieldName":"External_Id__c","columnDelimiter":"%s","lineEnding":"CRLF"}`, name)
			data := strings.Join([]string{"External_Id__c", "Name", "Description"}, d) + "\r\n" +
				strings.Join([]string{"P-1", "W", `"a` + d + `b` + "\r\n" + `c"`}, d) + "\r\n"
			id, info := c.runJob(create, data)
			if info["numberRecordsFailed"].(float64) != 0 || info["columnDelimiter"] != name || info["lineEnding"] != "CRLF" {
				t.Fatalf("info %v", info)
			}
			// Results are always comma + LF (3.2).
			raw, rows := c.results(id, "successfulResults")
			// (encoding/csv turns the quoted CRLF into LF when reading.)
			if !strings.HasPrefix(raw, `"sf__Id","sf__Created",External_Id__c,Name,Description`+"\n") ||
				!strings.Contains(raw, `"a`+d+"b\r\nc\"\n") || rows[1][4] != "a"+d+"b\nc" {
				t.Errorf("results %q", raw)
			}
		})
	}
}

func TestGzipResults(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithGzipResults(true))
	id, _ := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,A\n")
	req, _ := newRequest(t, "GET", c.srv.URL+c.v+"/jobs/ingest/"+id+"/successfulResults/", "")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := c.srv.Client()
	res, err := tr.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q", res.Header.Get("Content-Encoding"))
	}
	// The default client decompresses transparently when it asked itself.
	_, rows := c.results(id, "successfulResults")
	if len(rows) != 2 || rows[1][2] != "P-1" {
		t.Errorf("rows = %v", rows)
	}
}

func TestWithoutShuffle(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithoutShuffle())
	var b strings.Builder
	b.WriteString("External_Id__c,Name\n")
	for i := range 30 {
		fmt.Fprintf(&b, "P-%02d,N\n", i)
	}
	id, _ := c.runJob(upsertProduct, b.String())
	_, rows := c.results(id, "successfulResults")
	for i, row := range rows[1:] {
		if row[2] != fmt.Sprintf("P-%02d", i) {
			t.Fatalf("row %d = %v, want upload order", i, row)
		}
	}
}

// TestFailedRowSfID checks sf__Id on failed rows (salesforce-api.md 3.1
// [O]): empty when the row identified no record (insert, upsert of a new
// key, duplicate keys in the upload), the record's ID when it did (update
// by Id, upsert of an existing key), whatever made the row fail.
func TestFailedRowSfID(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	c.runJob(upsertProduct, "External_Id__c,Name\nP-1,One\nP-2,Two\n")
	ids := map[string]string{}
	for _, r := range c.query("SELECT Id, External_Id__c FROM Product2") {
		ids[r["External_Id__c"].(string)] = r["Id"].(string)
	}

	// Upsert: the key column comes after the failing one on purpose.
	id, _ := c.runJob(upsertProduct, "Name,Price__c,External_Id__c\n"+
		"x,abc,P-1\n"+ // existing key, bad number
		"y,abc,P-9\n"+ // new key, bad number
		"#N/A,1,P-2\n"+ // existing key, required field nulled
		"z,1,P-7\n"+ // same key twice: both fail
		"z,1,P-7\n")
	_, failed := c.results(id, "failedResults")
	got := map[string][]string{}
	for _, row := range failed[1:] {
		got[row[4]] = append(got[row[4]], row[0])
	}
	want := map[string][]string{"P-1": {ids["P-1"]}, "P-9": {""}, "P-2": {ids["P-2"]}, "P-7": {"", ""}}
	for k, w := range want {
		if strings.Join(got[k], ",") != strings.Join(w, ",") {
			t.Errorf("upsert %s: sf__Id = %q, want %q (failed results %v)", k, got[k], w, failed)
		}
	}

	// Update by Id with a bad value, and with an Id that names nothing.
	id, _ = c.runJob(`{"object":"Product2","operation":"update"}`, "Id,Price__c\n"+ids["P-1"]+",abc\n0015g0000000001AAA,1\n")
	_, failed = c.results(id, "failedResults")
	byID := byColumn(t, failed, "Id")
	if r := byID[ids["P-1"]]; r["sf__Id"] != ids["P-1"] || r["sf__Error"] != "INVALID_TYPE_ON_FIELD_IN_RECORD:Price: value not of required type: abc:Price__c --" {
		t.Errorf("update with a bad value: %v, want sf__Id %s", r, ids["P-1"])
	}
	if r := byID["0015g0000000001AAA"]; r["sf__Id"] != "" || r["sf__Error"] != "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--" {
		t.Errorf("update of an ID that names nothing: %v", r)
	}
}
