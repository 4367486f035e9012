package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sfmigrate/sfmigrate/pipeline"
)

// config parses a tables config whose tables are given as "NAME: object
// EXT_COL->Ext__c COL->Field ..." lines, with extra YAML per table.
func config(t *testing.T, yaml string) *pipeline.TablesConfig {
	t.Helper()
	cfg, err := pipeline.ParseTablesConfig(strings.NewReader(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// erp is accounts (self-reference, and a cycle with contacts), contacts,
// products (pointing at accounts) and prices.
const erp = `
tables:
  ACCOUNTS:
    source: erp
    table: ACCOUNTS
    order_by: ID
    sf_object: Account
    external_id_field: External_Id__c
    fields: {ID: External_Id__c, NAME: Name, PARENT_ID: Parent.External_Id__c, CONTACT_ID: Primary_Contact__r.External_Id__c}
  CONTACTS:
    source: erp
    table: CONTACTS
    order_by: ID
    sf_object: Contact
    external_id_field: External_Id__c
    fields: {ID: External_Id__c, LAST_NAME: LastName, ACCOUNT_ID: Account.External_Id__c}
  PRODUCTS:
    source: erp
    table: PRODUCTS
    order_by: ID
    sf_object: Product2
    external_id_field: External_Id__c
    fields: {ID: External_Id__c, NAME: Name, ACCOUNT_ID: Account__r.External_Id__c}
  PRICES:
    source: erp
    table: PRICES
    order_by: ID
    sf_object: Product_Price__c
    external_id_field: External_Id__c
    fields: {ID: External_Id__c, PRODUCT_ID: Product__r.External_Id__c}
`

func erpObjects(contactAccountRequired, accountContactRequired bool) map[string]*Object {
	return map[string]*Object{
		"account": {Name: "Account", Lookups: []Lookup{
			{Field: "ParentId", Relationship: "Parent", ReferenceTo: []string{"Account"}},
			{Field: "Primary_Contact__c", Relationship: "Primary_Contact__r", ReferenceTo: []string{"Contact"}, Required: accountContactRequired},
		}},
		"contact":          {Name: "Contact", Lookups: []Lookup{{Field: "AccountId", Relationship: "Account", ReferenceTo: []string{"Account"}, Required: contactAccountRequired}}},
		"product2":         {Name: "Product2", Lookups: []Lookup{{Field: "Account__c", Relationship: "Account__r", ReferenceTo: []string{"Account"}}}},
		"product_price__c": {Name: "Product_Price__c", Lookups: []Lookup{{Field: "Product__c", Relationship: "Product__r", ReferenceTo: []string{"Product2"}, Required: true}}},
	}
}

func TestOrderWavesAndPasses(t *testing.T) {
	p, err := Build(config(t, erp), nil, erpObjects(false, false))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"ACCOUNTS"}, {"CONTACTS", "PRODUCTS"}, {"ACCOUNTS.pass2", "PRICES"}}
	if diff := cmp.Diff(want, p.Waves); diff != "" {
		t.Errorf("waves (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"ACCOUNTS": {"PARENT_ID", "CONTACT_ID"}}, p.Deferred); diff != "" {
		t.Errorf("deferred (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ACCOUNTS", "CONTACTS", "PRODUCTS", "PRICES"}, p.Tables); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	a1 := p.Step("ACCOUNTS")
	if diff := cmp.Diff([]string{"ID", "NAME"}, a1.Columns); diff != "" {
		t.Errorf("ACCOUNTS pass 1 columns (-want +got):\n%s", diff)
	}
	a2 := p.Step("ACCOUNTS.pass2")
	if diff := cmp.Diff([]string{"ID", "PARENT_ID", "CONTACT_ID"}, a2.Columns); diff != "" {
		t.Errorf("ACCOUNTS pass 2 columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ACCOUNTS", "CONTACTS"}, a2.Waits); diff != "" {
		t.Errorf("ACCOUNTS.pass2 waits (-want +got):\n%s", diff)
	}
	pr := p.Step("PRICES")
	if !slices.Contains(pr.Reasons, "PRICES waits for PRODUCTS: field Product__r.External_Id__c looks up Product2, loaded by PRODUCTS") {
		t.Errorf("PRICES reasons = %q", pr.Reasons)
	}
	// Children wait for pass 1 of their parents only.
	if diff := cmp.Diff([]string{"ACCOUNTS"}, p.Step("PRODUCTS").Waits); diff != "" {
		t.Errorf("PRODUCTS waits (-want +got):\n%s", diff)
	}
	// Pass 2 is an upsert with the external id and the deferred columns.
	tc, err := p.TableConfig(config(t, erp), a2)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Operation != "upsert" || len(tc.Fields) != 3 || tc.Fields[0].Name != "External_Id__c" || tc.Fields[1].Name != "Parent.External_Id__c" {
		t.Errorf("pass 2 table config = %+v", tc)
	}
}

func TestOneSideRequiredCycleLoadsThatSideFirst(t *testing.T) {
	// Account.Primary_Contact__c required: accounts must come after
	// contacts, and the contact's AccountId is set in pass 2.
	p, err := Build(config(t, erp), []string{"ACCOUNTS", "CONTACTS"}, erpObjects(false, true))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"ACCOUNTS": {"PARENT_ID"}, "CONTACTS": {"ACCOUNT_ID"}}, p.Deferred); diff != "" {
		t.Errorf("deferred (-want +got):\n%s", diff)
	}
	want := [][]string{{"CONTACTS"}, {"ACCOUNTS"}, {"ACCOUNTS.pass2", "CONTACTS.pass2"}}
	if diff := cmp.Diff(want, p.Waves); diff != "" {
		t.Errorf("waves (-want +got):\n%s", diff)
	}
}

func TestRequiredCycleIsRefused(t *testing.T) {
	_, err := Build(config(t, erp), nil, erpObjects(true, true))
	var ce *CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CycleError", err)
	}
	for _, want := range []string{"ACCOUNTS.Primary_Contact__r.External_Id__c (Account.Primary_Contact__c, required)", "CONTACTS.Account.External_Id__c (Contact.AccountId, required)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	if !ce.ConfigError() {
		t.Error("a refused cycle must be a configuration error (exit 2)")
	}
}

func TestRequiredSelfReferenceIsRefused(t *testing.T) {
	objs := erpObjects(false, false)
	objs["account"].Lookups[0].Required = true
	_, err := Build(config(t, erp), []string{"ACCOUNTS"}, objs)
	if err == nil || !strings.Contains(err.Error(), "ACCOUNTS.Parent.External_Id__c (Account.ParentId, required)") {
		t.Fatalf("err = %v", err)
	}
}

func TestDependsOnAndPolymorphic(t *testing.T) {
	cfg := config(t, erp+`
  TASKS:
    source: erp
    table: TASKS
    order_by: ID
    sf_object: Task
    external_id_field: External_Id__c
    depends_on: [PRICES]
    fields: {ID: External_Id__c, WHAT: What.External_Id__c}
`)
	objs := erpObjects(false, false)
	objs["task"] = &Object{Name: "Task", Lookups: []Lookup{{Field: "WhatId", Relationship: "What", ReferenceTo: []string{"Account", "Product2"}}}}
	p, err := Build(cfg, nil, objs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ACCOUNTS", "PRICES", "PRODUCTS"}, p.Step("TASKS").Waits); diff != "" {
		t.Errorf("TASKS waits (-want +got):\n%s", diff)
	}
	if got := p.Step("TASKS").Wave; got != 4 {
		t.Errorf("TASKS wave %d, want 4 (after PRICES)", got)
	}
	var poly bool
	for _, r := range p.Step("TASKS").Reasons {
		poly = poly || strings.Contains(r, "looks up Account or Product2 (polymorphic)")
	}
	if !poly {
		t.Errorf("reasons = %q", p.Step("TASKS").Reasons)
	}
}

func TestDependsOnCycleIsRefused(t *testing.T) {
	cfg := config(t, strings.Replace(erp, "sf_object: Product2\n", "sf_object: Product2\n    depends_on: PRICES\n", 1))
	_, err := Build(cfg, nil, erpObjects(false, false))
	if err == nil || !strings.Contains(err.Error(), "PRODUCTS depends_on PRICES") {
		t.Fatalf("err = %v", err)
	}
}

func TestDependsOnUnknownTable(t *testing.T) {
	_, err := pipeline.ParseTablesConfig(strings.NewReader(strings.Replace(erp, "sf_object: Product2\n", "sf_object: Product2\n    depends_on: [ACCOUNT]\n", 1)), "test.yaml")
	if err == nil || !strings.Contains(err.Error(), "tables.PRODUCTS.depends_on") || !strings.Contains(err.Error(), "did you mean ACCOUNTS?") {
		t.Fatalf("err = %v", err)
	}
	_, err = pipeline.ParseTablesConfig(strings.NewReader(strings.Replace(erp, "sf_object: Product2\n", "sf_object: Product2\n    on_parent_failure: skip\n", 1)), "test.yaml")
	if err == nil || !strings.Contains(err.Error(), "on_parent_failure") {
		t.Fatalf("err = %v", err)
	}
}

func TestOfflinePlan(t *testing.T) {
	p, err := Build(config(t, erp), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Parent (self) and Account are found by name; Primary_Contact__r and
	// Product__r by a similar name (noted).
	if diff := cmp.Diff([]string{"ACCOUNTS"}, p.Step("CONTACTS").Waits); diff != "" {
		t.Errorf("CONTACTS waits (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PRODUCTS"}, p.Step("PRICES").Waits); diff != "" {
		t.Errorf("PRICES waits (-want +got):\n%s", diff)
	}
	if p.Step("ACCOUNTS.pass2") == nil {
		t.Error("the self-reference is not deferred offline")
	}
	if p.Described || len(p.Notes) != 2 || !strings.Contains(p.Notes[0], "to point to Contact by its name") {
		t.Errorf("notes = %q", p.Notes)
	}
	// A relationship that matches nothing is noted and gives no order.
	cfg := config(t, strings.Replace(erp, "Product__r.External_Id__c", "Item__r.External_Id__c", 1))
	if p, err = Build(cfg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(p.Step("PRICES").Waits) != 0 || !strings.Contains(strings.Join(p.Notes, "\n"), "PRICES: PRODUCT_ID -> Item__r.External_Id__c: without the org's describe the object this lookup points to is unknown") {
		t.Errorf("PRICES waits %q; notes %q", p.Step("PRICES").Waits, p.Notes)
	}
}

func TestUnknownSelectedTable(t *testing.T) {
	_, err := Build(config(t, erp), []string{"PRICE"}, nil)
	if err == nil || !strings.Contains(err.Error(), "did you mean PRICES?") {
		t.Fatalf("err = %v", err)
	}
}

func TestStepConfigIsTheStepAsATable(t *testing.T) {
	cfg := config(t, erp)
	p, err := Build(cfg, nil, erpObjects(false, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Steps {
		data, err := p.StepConfig(cfg, &st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pipeline.ParseTablesConfig(strings.NewReader(string(data)), st.ID+".yaml")
		if err != nil {
			t.Fatalf("%s: %v\n%s", st.ID, err, data)
		}
		want, _ := p.TableConfig(cfg, &st)
		gt := got.Tables[st.Table]
		if gt == nil || gt.Hash() != want.Hash() || gt.Operation != want.Operation || gt.ExternalIDField != want.ExternalIDField {
			t.Errorf("%s: config %+v, want %+v", st.ID, gt, want)
		}
		if _, err := pipeline.ResolveSettings(pipeline.Inputs{Table: st.Table, Tables: got}); err != nil {
			t.Errorf("%s: %v", st.ID, err)
		}
	}
}
