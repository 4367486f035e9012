package sfemu_test

import (
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestRESTAndBulkSameErrors saves the same bad record once as a Bulk API
// 2.0 insert row and once as a REST create: both must fail with the same
// status code, message and fields, the Bulk one as the sf__Error text
// "CODE:message:fields --" (salesforce-api.md 3.3) and the REST one as
// the error array (6.1, 6.3).
func TestRESTAndBulkSameErrors(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	c.runJob(`{"object":"Account","operation":"insert"}`, "Name,External_Id__c\nAcme,A-1\n")
	c.runJob(`{"object":"Product2","operation":"insert"}`, "Name,External_Id__c\nTaken,P-TAKEN\n")
	c.emu.LockRecords("Product2", "P-LOCKED")
	tests := []struct {
		name        string
		header, row string // Bulk: "Name,<header>" and "W,<row>"
		json        string // REST body fields after "Name":"W"
		want        string // the sf__Error text
	}{
		{"too long", "ProductCode", strings.Repeat("x", 256), `"ProductCode":"` + strings.Repeat("x", 256) + `"`,
			"STRING_TOO_LONG:ProductCode: data value too large: " + strings.Repeat("x", 256) + " (max length=255):ProductCode --"},
		{"bad boolean", "IsActive", "yes", `"IsActive":"yes"`, "INVALID_TYPE_ON_FIELD_IN_RECORD:IsActive: value not of required type: yes:IsActive --"},
		{"bad date", "Launch_Date__c", "2025-02-30", `"Launch_Date__c":"2025-02-30"`, "INVALID_TYPE_ON_FIELD_IN_RECORD:Launch Date: value not of required type: 2025-02-30:Launch_Date__c --"},
		{"number too large", "Price__c", "1E17", `"Price__c":1E17`, "NUMBER_OUTSIDE_VALID_RANGE:Price: value outside of valid range on numeric field: 1E17:Price__c --"},
		{"bad picklist", "Family", "Toys", `"Family":"Toys"`, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Toys:Family --"},
		{"system field", "CreatedDate", "2025-01-01T00:00:00Z", `"CreatedDate":"2025-01-01T00:00:00Z"`,
			"INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: CreatedDate. Please check the security settings of this field and verify that it is read/write for your profile or permission set.:CreatedDate --"},
		{"Id on insert", "Id", "01t5g0000000001AAA", `"Id":"01t5g0000000001AAA"`, "INVALID_FIELD_FOR_INSERT_UPDATE:cannot specify Id in an insert call:Id --"},
		{"malformed lookup id", "Account__c", "nonsense", `"Account__c":"nonsense"`, "MALFORMED_ID:Account: id value of incorrect type: nonsense:Account__c --"},
		{"lookup id of another object", "Account__c", "01t5g0000000001AAA", `"Account__c":"01t5g0000000001AAA"`,
			"FIELD_INTEGRITY_EXCEPTION:Account: id value of incorrect type: 01t5g0000000001AAA:Account__c --"},
		{"lookup id not found", "Account__c", "0015g00000000ZZAAA", `"Account__c":"0015g00000000ZZAAA"`, "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"},
		{"parent key not found", "Account__r.External_Id__c", "A-77", `"Account__r":{"External_Id__c":"A-77"}`,
			"INVALID_FIELD:Foreign key external ID: A-77 not found for field External_Id__c in entity Account:--"},
		{"unique value taken", "External_Id__c", "p-taken", `"External_Id__c":"p-taken"`,
			"DUPLICATE_VALUE:duplicate value found: External_Id__c duplicates value on record with id: " + c.query("SELECT Id FROM Product2")[0]["Id"].(string) + ":--"},
		{"locked", "External_Id__c", "P-LOCKED", `"External_Id__c":"P-LOCKED"`, "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records:--"},
		{"required missing", "", "", ``, "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header, row, body := "Name,"+tt.header, "W,"+tt.row, `{"Name":"W",`+tt.json+`}`
			if tt.header == "" {
				header, row, body = "Description", "d", `{"Description":"d"}`
			}
			id, _ := c.runJob(`{"object":"Product2","operation":"insert"}`, header+"\n"+row+"\n")
			_, failed := c.results(id, "failedResults")
			if len(failed) != 2 {
				t.Fatalf("bulk row did not fail: %v", failed)
			}
			if got := failed[1][1]; got != tt.want {
				t.Errorf("bulk sf__Error =\n %q\nwant\n %q", got, tt.want)
			}

			r := c.post("/sobjects/Product2", body)
			if r.status != 400 {
				t.Fatalf("REST create: %d %s", r.status, r.body)
			}
			var items []struct {
				Message   string    `json:"message"`
				ErrorCode string    `json:"errorCode"`
				Fields    *[]string `json:"fields"`
			}
			r.json(&items)
			if len(items) != 1 || items[0].Fields == nil {
				t.Fatalf("REST error array must hold one item with fields (a record-level error): %s", r.body)
			}
			it := items[0]
			got := it.ErrorCode + ":" + it.Message + ":"
			if len(*it.Fields) > 0 {
				got += strings.Join(*it.Fields, " ") + " "
			}
			if got += "--"; got != tt.want {
				t.Errorf("REST error %s reads as sf__Error\n %q\nwant\n %q", r.body, got, tt.want)
			}
		})
	}
}
