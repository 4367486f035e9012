package pipeline

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/internal/demo"
)

// FuzzTablesConfig reads any bytes as a tables config: it is accepted or
// refused with an error of bounded length, never a panic.
func FuzzTablesConfig(f *testing.F) {
	for _, s := range []string{
		demo.TablesYAML(),
		demo.TablesYAML() + "---\ntables: {}\n",
		"tables:\n  T:\n    source: db\n    table: T\n    order_by: ID\n    fields: {ID: External_Id__c}\n    sf_object: " + strings.Repeat("P", 300) + "\n",
		"tables:\n  T:\n    fields: [a, b]\n", "tables: &a\n  T: *a\n", "status_tracker: 5\n", "- x\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseTablesConfig(bytes.NewReader(data), "t.yaml")
		if err != nil {
			if len(err.Error()) > 4000 {
				t.Fatalf("a %d-byte error: %.300s", len(err.Error()), err)
			}
			return
		}
		for _, name := range cfg.TableNames() {
			if cfg.Tables[name] == nil {
				t.Fatalf("table %q accepted without an entry", name)
			}
		}
	})
}

// FuzzRunConfig reads any text as a run config (--conf).
func FuzzRunConfig(f *testing.F) {
	for _, s := range []string{`{"batch_size": 5000, "start_batch": 3}`, `{"batch_size": "` + strings.Repeat("9", 500) + `"}`, `{} {}`, `[1]`, `{"a":`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := parseRunConfig(raw, "run config (--conf)", "--conf"); err != nil && len(err.Error()) > 4000 {
			t.Fatalf("a %d-byte error: %.300s", len(err.Error()), err)
		}
	})
}
