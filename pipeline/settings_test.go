package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testTablesYAML = `
status_tracker:
  sf_object: Migration_Status__c
tables:
  PRODUCT_PRICE:
    source: erp_db
    query: SELECT ID, NAME, PRICE FROM PRODUCT_PRICE
    order_by: ID
    sf_object: Product2
    external_id_field: External_Id__c
    fields:
      ID: External_Id__c
      NAME: Name
      PRICE: Price__c
  PRICES:
    source: erp_db
    table: PRICES
    order_by: [LIST, ID]
    sf_object: Product_Price__c
    external_id_field: External_Id__c
    status_ref: PRICES_2026
    nulls: clear
    source_time_zone: Europe/Berlin
    fields:
      ID: External_Id__c
      PRODUCT: Product__r.External_Id__c
      LIST: Price_List__c
`

func testTables(t *testing.T) *TablesConfig {
	t.Helper()
	cfg, err := ParseTablesConfig(strings.NewReader(testTablesYAML), "tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestTablesConfigKeepsFieldOrder(t *testing.T) {
	cfg := testTables(t)
	got := cfg.Tables["PRICES"]
	want := FieldList{{"ID", "External_Id__c"}, {"PRODUCT", "Product__r.External_Id__c"}, {"LIST", "Price_List__c"}}
	if diff := cmp.Diff(want, got.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(StringList{"LIST", "ID"}, got.OrderBy); diff != "" {
		t.Errorf("order_by (-want +got):\n%s", diff)
	}
	if cfg.StatusTracker.ExternalIDField != "External_Ref__c" || cfg.StatusTracker.StatusField != "Status__c" || !cfg.StatusTracker.CreateRecord() {
		t.Errorf("tracker defaults not applied: %+v", cfg.StatusTracker)
	}
	if got := cfg.Tables["PRICES"].Location().String(); got != "Europe/Berlin" {
		t.Errorf("location = %s", got)
	}
}

func TestTablesConfigErrors(t *testing.T) {
	base := "tables:\n  T:\n    source: db\n    query: SELECT 1\n    order_by: ID\n    sf_object: Product2\n    fields: {ID: External_Id__c}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", base + "    querry: x\n", []string{"tables.T.querry", "tables.yaml, line 8", "unknown key", "did you mean query?"}},
		{"unknown tracker key", "status_tracker:\n  statusfield: X__c\n" + base, []string{"status_tracker.statusfield", "line 2", "did you mean status_field?"}},
		{"unknown top key", "table:\n  T: {}\n", []string{"table (from tables.yaml, line 1): unknown key", "did you mean tables?"}},
		{"syntax", "tables:\n  T:\n    source: db\n    query: SELECT a: b FROM x\n", []string{"tables config (from tables.yaml)", "not valid YAML", "line 4", "query: >-"}},
		{"wrong kind", "tables:\n  T:\n    source: [a, b]\n", []string{"tables config (from tables.yaml)", "line 3", "cannot unmarshal"}},
		{"empty", "", []string{"is empty", "examples/tables.yaml"}},
		{"no tables", "status_tracker: {}\n", []string{"tables", "no tables are defined"}},
		{"missing source", strings.Replace(base, "    source: db\n", "", 1), []string{"tables.T.source", "is missing", "oracle_default"}},
		{"query and table", base + "    table: X\n", []string{"tables.T.query", "both query and table"}},
		{"no order", strings.Replace(base, "    order_by: ID\n", "", 1), []string{"tables.T.order_by", "stable order"}},
		{"bad field", strings.Replace(base, "External_Id__c", "External Id", 1), []string{"tables.T.fields.ID", `"External Id"`, "API name"}},
		{"bad op", base + "    operation: merge\n", []string{"tables.T.operation", `"merge"`, "upsert"}},
		{"bad nulls", base + "    nulls: zero\n", []string{"tables.T.nulls", `"zero"`}},
		{"bad zone", base + "    source_time_zone: Mars/Olympus\n", []string{"source_time_zone", "IANA"}},
		{"bad name", strings.Replace(base, "  T:", "  T.X:", 1), []string{`"T.X"`, "letters, digits"}},
		// The tracker's names go through salesforce.TrackerConfig.Validate,
		// the check the client makes too.
		{"bad tracker field", "status_tracker:\n  status_field: Status c\n" + base, []string{`status_tracker.status_field = "Status c" (from tables.yaml)`, "not a Salesforce API name", "e.g. Status__c"}},
		{"tracker relationship path", "status_tracker:\n  message_field: Run__r.Message__c\n" + base, []string{`status_tracker.message_field = "Run__r.Message__c"`, "not a Salesforce API name"}},
		{"bad tracker object", "status_tracker:\n  sf_object: 9Status__c\n" + base, []string{`status_tracker.sf_object = "9Status__c"`, "starting with a letter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTablesConfig(strings.NewReader(tt.yaml), "tables.yaml")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSettingsPrecedence(t *testing.T) {
	tables := testTables(t)
	tests := []struct {
		name  string
		in    Inputs
		check map[string]Setting
	}{
		{"defaults", Inputs{Table: "PRODUCT_PRICE"}, map[string]Setting{
			"table":             {"PRODUCT_PRICE", SourceFlag},
			"start_batch":       {1, SourceDefault},
			"batch_size":        {10000, SourceDefault},
			"parallel":          {4, SourceDefault},
			"sf_object":         {"Product2", "tables config tables.yaml, tables.PRODUCT_PRICE.sf_object"},
			"external_id_field": {"External_Id__c", "tables config tables.yaml, tables.PRODUCT_PRICE.external_id_field"},
			"operation":         {"upsert", SourceDefault},
			"status_ref":        {"PRODUCT_PRICE", "default (the table name)"},
		}},
		{"variables over defaults", Inputs{Table: "PRODUCT_PRICE", Getenv: envOf("AIRFLOW_VAR_BATCH_SIZE", "500", "AIRFLOW_VAR_START_BATCH", " 3 ")},
			map[string]Setting{
				"start_batch": {3, "AIRFLOW_VAR_START_BATCH"},
				"batch_size":  {500, "AIRFLOW_VAR_BATCH_SIZE"},
			}},
		{"run config over variables", Inputs{Table: "PRODUCT_PRICE", Conf: `{"batch_size": 250, "start_batch": "2", "parallel": 8}`, ConfSource: "--conf",
			Getenv: envOf("AIRFLOW_VAR_BATCH_SIZE", "500", "AIRFLOW_VAR_PARALLEL", "2")},
			map[string]Setting{
				"start_batch": {2, "run config (--conf)"},
				"batch_size":  {250, "run config (--conf)"},
				"parallel":    {8, "run config (--conf)"},
			}},
		{"run config over tables config", Inputs{Conf: `{"table": "PRICES", "sf_object": "Other__c", "external_id_field": "Key__c", "status_ref": "X1"}`,
			Tables: nil},
			map[string]Setting{
				"table":             {"PRICES", "run config"},
				"sf_object":         {"Other__c", "run config"},
				"external_id_field": {"Key__c", "run config"},
				"status_ref":        {"X1", "run config"},
			}},
		{"status_ref from tables config", Inputs{Table: "PRICES"}, map[string]Setting{
			"status_ref": {"PRICES_2026", "tables config tables.yaml, tables.PRICES.status_ref"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Tables = tables
			if tt.name == "run config over tables config" {
				// Key__c is not mapped: map it so the upsert key check passes.
				tables.Tables["PRICES"].Fields = append(tables.Tables["PRICES"].Fields, Field{"KEY", "Key__c"})
			}
			s, err := ResolveSettings(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.check {
				if diff := cmp.Diff(want, s.Sources[name]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestSettingsErrors(t *testing.T) {
	tables := testTables(t)
	tests := []struct {
		name string
		in   Inputs
		want []string
	}{
		{"no table", Inputs{}, []string{"table: is missing", "--table"}},
		{"unknown table", Inputs{Table: "NOPE"}, []string{`table = "NOPE"`, "flag --table", "PRICES, PRODUCT_PRICE"}},
		{"table disagrees", Inputs{Table: "PRICES", Conf: `{"table":"PRODUCT_PRICE"}`}, []string{"disagrees with --table"}},
		{"bad variable", Inputs{Table: "PRICES", Getenv: envOf("AIRFLOW_VAR_BATCH_SIZE", "10k")},
			[]string{`batch_size = "10k"`, "AIRFLOW_VAR_BATCH_SIZE", "not a whole number", "fix:"}},
		{"zero batch size", Inputs{Table: "PRICES", Conf: `{"batch_size": 0}`, ConfSource: "--conf"},
			[]string{`batch_size = "0"`, "run config (--conf)", "out of range"}},
		{"start batch zero", Inputs{Table: "PRICES", Getenv: envOf("AIRFLOW_VAR_START_BATCH", "0")},
			[]string{"start_batch", "AIRFLOW_VAR_START_BATCH", "numbered from 1"}},
		{"fraction", Inputs{Table: "PRICES", Conf: `{"batch_size": 1.5}`}, []string{`batch_size = "1.5"`, "not a whole number"}},
		{"bad json", Inputs{Table: "PRICES", Conf: `{"batch_size": `, ConfSource: "--conf-file run.json"},
			[]string{"run config", "--conf-file run.json", "not a JSON object"}},
		{"string as object", Inputs{Table: "PRICES", Conf: `{"sf_object": 5}`}, []string{"sf_object", "must be a JSON string"}},
		{"bad object", Inputs{Table: "PRICES", Conf: `{"sf_object": "Product 2"}`}, []string{`sf_object = "Product 2"`, "API name"}},
		{"unmapped key", Inputs{Table: "PRICES", Conf: `{"external_id_field": "Nope__c"}`}, []string{`"Nope__c"`, "no column"}},
		{"bad op", Inputs{Table: "PRICES", Conf: `{"operation": "merge"}`}, []string{`operation = "merge"`, "unknown operation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Tables = tables
			_, err := ResolveSettings(tt.in)
			var ce *ConfigError
			if !errors.As(err, &ce) || !ce.ConfigError() {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestUnknownRunConfigKeys: keys sfmigrate does not read are ignored with a
// warning naming them (the original DAG ignored extra keys); known keys
// are still checked.
func TestUnknownRunConfigKeys(t *testing.T) {
	tables := testTables(t)
	s, err := ResolveSettings(Inputs{Table: "PRICES", Tables: tables, Conf: `{"batchsize": 5, "notify": "ops", "batch_size": 9}`, ConfSource: "--conf"})
	if err != nil {
		t.Fatal(err)
	}
	if s.BatchSize != 9 || len(s.Warnings) != 2 {
		t.Fatalf("batch size %d, warnings %q", s.BatchSize, s.Warnings)
	}
	for i, want := range []string{`run config (--conf): unknown key "batchsize" ignored`, `unknown key "notify" ignored`} {
		if !strings.Contains(s.Warnings[i], want) {
			t.Errorf("warning %q does not contain %q", s.Warnings[i], want)
		}
	}
	if !strings.Contains(s.Warnings[0], "did you mean batch_size?") {
		t.Errorf("no guess in %q", s.Warnings[0])
	}
	if _, err := ResolveSettings(Inputs{Table: "PRICES", Tables: tables, Conf: `{"extra": 1, "batch_size": "lots"}`}); err == nil || !strings.Contains(err.Error(), "not a whole number") {
		t.Errorf("bad known key beside an unknown one: err = %v", err)
	}
}

func TestSettingsResumeMustMatch(t *testing.T) {
	tables := testTables(t)
	s, err := ResolveSettings(Inputs{Table: "PRICES", Tables: tables, Conf: `{"batch_size": 100}`})
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{RunID: "r1", Table: "PRICES", Settings: s.Sources, TableHash: s.TableConfig.Hash(), Batches: []*BatchState{{Index: 1, Rows: 100}}}
	// Same settings, table taken from the manifest, parallel may change.
	if _, err := ResolveSettings(Inputs{Tables: tables, Conf: `{"batch_size": 100, "parallel": 9}`, Resume: m}); err != nil {
		t.Fatalf("resume with the same settings: %v", err)
	}
	// Not given again: the run's own value is used.
	s2, err := ResolveSettings(Inputs{Tables: tables, Resume: m})
	if err != nil || s2.BatchSize != 100 || s2.Sources["batch_size"].Source != "run config" {
		t.Fatalf("resume without settings: %v, batch size %v", err, s2)
	}
	// A later step without the run config, where only the Variable speaks:
	// the run config the run recorded still outranks it.
	s4, err := ResolveSettings(Inputs{Tables: tables, Resume: m, Getenv: envOf("AIRFLOW_VAR_BATCH_SIZE", "7")})
	if err != nil || s4.BatchSize != 100 || s4.Sources["batch_size"].Source != "run config" {
		t.Fatalf("resume with a Variable below the recorded run config: %v, %+v", err, s4)
	}
	// An explicit run config that differs is refused, naming both values and sources.
	_, err = ResolveSettings(Inputs{Tables: tables, Resume: m, Conf: `{"batch_size": 7}`, ConfSource: "--conf"})
	for _, want := range []string{`batch_size = "7" (from run config (--conf))`, "run r1 recorded batch_size = 100 (from run config)", "same batch_size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("resume with another batch size: err = %v, want %q", err, want)
		}
	}
	// A Variable that changed under a run that took its value from it is refused too.
	sv, err := ResolveSettings(Inputs{Table: "PRICES", Tables: tables, Getenv: envOf("AIRFLOW_VAR_BATCH_SIZE", "50")})
	if err != nil {
		t.Fatal(err)
	}
	mv := &Manifest{RunID: "rv", Table: "PRICES", Settings: sv.Sources, TableHash: sv.TableConfig.Hash(), Batches: []*BatchState{{Index: 1, Rows: 50}}}
	_, err = ResolveSettings(Inputs{Tables: tables, Resume: mv, Getenv: envOf("AIRFLOW_VAR_BATCH_SIZE", "60")})
	if err == nil || !strings.Contains(err.Error(), "recorded batch_size = 50 (from AIRFLOW_VAR_BATCH_SIZE)") {
		t.Fatalf("Variable changed mid-run: err = %v", err)
	}
	// Once the tracker record is marked, status_ref is frozen even before any batch.
	marked := &Manifest{RunID: "rt", Table: "PRICES", Settings: s.Sources, TableHash: s.TableConfig.Hash(), Tracker: TrackerState{Ref: "PRICES_2026", Status: "In Progress"}}
	_, err = ResolveSettings(Inputs{Tables: tables, Resume: marked, Conf: `{"status_ref": "OTHER"}`})
	if err == nil || !strings.Contains(err.Error(), "status_ref") || !strings.Contains(err.Error(), "already marked") {
		t.Fatalf("status_ref changed after the tracker was marked: err = %v", err)
	}
	// Before any batch exists, new values simply replace the recorded ones.
	fresh := &Manifest{RunID: "r0", Table: "PRICES", Settings: s.Sources, TableHash: s.TableConfig.Hash()}
	if s3, err := ResolveSettings(Inputs{Tables: tables, Resume: fresh, Conf: `{"batch_size": 7}`}); err != nil || s3.BatchSize != 7 {
		t.Fatalf("change before the first batch: %v", err)
	}
	tables.Tables["PRICES"].Query = "SELECT 1"
	tables.Tables["PRICES"].Table = ""
	_, err = ResolveSettings(Inputs{Tables: tables, Conf: `{"batch_size": 100}`, Resume: m})
	if err == nil || !strings.Contains(err.Error(), "definition changed") {
		t.Fatalf("resume with a changed query: err = %v", err)
	}
}

func TestExampleTablesConfigParses(t *testing.T) {
	cfg, err := LoadTablesConfig("../examples/tables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"PRODUCT", "PRODUCT_PRICE"} {
		if _, err := ResolveSettings(Inputs{Table: name, Tables: cfg}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
