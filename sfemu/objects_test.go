package sfemu_test

import (
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestParseObjects(t *testing.T) {
	good := `
objects:
  - name: Product2
    fields:
      - {name: Name, type: string, length: 255, required: true}
      - {name: External_Id__c, type: string, length: 80, externalId: true, unique: true}
      - {name: IsActive, type: boolean}
      - {name: Price__c, type: currency, precision: 18, scale: 2}
      - {name: Launch_Date__c, type: date}
      - {name: Account__c, type: reference, referenceTo: Account, relationshipName: Account__r}
  - name: Account
    keyPrefix: "001"
    fields:
      - {name: Name, type: string, required: true}
      - {name: External_Id__c, type: string, length: 80, externalId: true, unique: true}
  - name: Migration_Status__c
    fields:
      - {name: External_Ref__c, type: string, length: 255, externalId: true, unique: true}
      - {name: Status__c, type: picklist, values: [Not Started, In Progress, Uploaded, Failed]}
`
	defs, err := sfemu.ParseObjects(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 3 || defs[0].Fields[5].RelationshipName != "Account__r" || defs[2].Fields[1].Values[1] != "In Progress" {
		t.Errorf("defs = %+v", defs)
	}
	c := newTC(t, sfemu.WithObjects(defs))
	if r := c.get("/sobjects/Migration_Status__c/describe"); r.status != 200 {
		t.Errorf("describe: %d", r.status)
	}

	bad := []struct{ name, yaml, want string }{
		{"unknown key", "objects:\n  - name: A\n    colour: red\n    fields: []\n", "field colour not found"},
		{"unknown field key", "objects:\n  - name: A\n    fields:\n      - {name: B, type: string, size: 3}\n", "field size not found"},
		{"unknown type", "objects:\n  - name: A\n    fields:\n      - {name: B, type: text}\n", `object A: field "B": unknown type "text"`},
		{"dangling reference", "objects:\n  - name: A\n    fields:\n      - {name: B__c, type: reference, referenceTo: Nope}\n", `referenceTo "Nope" is not a defined object`},
		{"duplicate object", "objects:\n  - name: A\n    fields: []\n  - name: a\n    fields: []\n", "object a is defined twice"},
		{"duplicate field", "objects:\n  - name: A\n    fields:\n      - {name: B, type: string}\n      - {name: b, type: int}\n", "field b is defined twice"},
		{"system field", "objects:\n  - name: A\n    fields:\n      - {name: Id, type: string}\n", "defined twice"},
		{"picklist without values", "objects:\n  - name: A\n    fields:\n      - {name: B, type: picklist}\n", "a picklist needs 'values'"},
		{"bad name", "objects:\n  - name: 1A\n    fields: []\n", "not a valid API name"},
		{"empty", "", "the file is empty"},
		{"no objects", "objects: []\n", "no objects defined"},
		{"external id on boolean", "objects:\n  - name: A\n    fields:\n      - {name: B, type: boolean, externalId: true}\n", "externalId is only allowed"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sfemu.ParseObjects(strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestDefaultObjects checks the org the contract promises to the demo and
// the status tracker (docs/design.md §5).
func TestDefaultObjects(t *testing.T) {
	c := newTC(t)
	type want struct {
		typ                      string
		length, precision, scale float64
		ext                      bool
		ref                      string
		values                   int
	}
	checks := map[string]map[string]want{
		"Account": {"Name": {typ: "string", length: 255}, "External_Id__c": {typ: "string", length: 80, ext: true}},
		"Product2": {"Name": {typ: "string", length: 255}, "ProductCode": {typ: "string", length: 255}, "Description": {typ: "textarea", length: 4000},
			"Family": {typ: "picklist", length: 255, values: 4}, "IsActive": {typ: "boolean"}, "External_Id__c": {typ: "string", length: 80, ext: true},
			"Price__c": {typ: "currency", precision: 18, scale: 2}, "Launch_Date__c": {typ: "date"}, "Last_Changed__c": {typ: "datetime"},
			"Account__c": {typ: "reference", length: 18, ref: "Account"}},
		"Product_Price__c": {"External_Id__c": {typ: "string", length: 80, ext: true}, "Product__c": {typ: "reference", length: 18, ref: "Product2"},
			"Price_List__c": {typ: "string", length: 40}, "Currency__c": {typ: "picklist", length: 255, values: 5}, "Unit_Price__c": {typ: "currency", precision: 18, scale: 4},
			"Min_Quantity__c": {typ: "double", precision: 18}, "Valid_From__c": {typ: "date"}, "Valid_To__c": {typ: "date"}, "Is_Active__c": {typ: "boolean"}, "Updated_At__c": {typ: "datetime"}},
		"Migration_Status__c": {"External_Ref__c": {typ: "string", length: 255, ext: true}, "Status__c": {typ: "picklist", length: 255, values: 4},
			"Records_Total__c": {typ: "double", precision: 18}, "Records_Failed__c": {typ: "double", precision: 18}, "Last_Run_Id__c": {typ: "string", length: 80},
			"Message__c": {typ: "textarea", length: 32768}},
	}
	for obj, fields := range checks {
		r := c.get("/sobjects/" + obj + "/describe")
		var d struct{ Fields []map[string]any }
		r.json(&d)
		got := map[string]map[string]any{}
		for _, f := range d.Fields {
			got[f["name"].(string)] = f
		}
		for name, w := range fields {
			f := got[name]
			if f == nil {
				t.Errorf("%s.%s missing", obj, name)
				continue
			}
			if f["type"] != w.typ || f["length"] != w.length || f["precision"] != w.precision || f["scale"] != w.scale || f["externalId"] != w.ext {
				t.Errorf("%s.%s = type %v length %v precision %v scale %v externalId %v, want %+v", obj, name, f["type"], f["length"], f["precision"], f["scale"], f["externalId"], w)
			}
			if w.ext && f["unique"] != true {
				t.Errorf("%s.%s is not unique", obj, name)
			}
			if w.ref != "" && (f["referenceTo"].([]any)[0] != w.ref || f["relationshipName"] != strings.TrimSuffix(name, "__c")+"__r") {
				t.Errorf("%s.%s reference = %v %v", obj, name, f["referenceTo"], f["relationshipName"])
			}
			if n := len(f["picklistValues"].([]any)); n != w.values {
				t.Errorf("%s.%s has %d picklist values, want %d", obj, name, n, w.values)
			}
		}
	}
	if r := c.get("/sobjects/Account/describe"); !strings.Contains(r.body, `"name":"Name"`) || !strings.Contains(r.body, `"nillable":false`) {
		t.Error("Account.Name must be required")
	}
}
