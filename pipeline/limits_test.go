package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// TestConfigErrorIsBounded: however long the value, problem, cause and fix
// a ConfigError carries, its message stays a line or two, and says how
// long the value was.
func TestConfigErrorIsBounded(t *testing.T) {
	big := strings.Repeat("v", 10<<20)
	e := &ConfigError{Setting: "tables." + big, Value: big, Source: big, Problem: "bad: " + big, Fix: "use " + big, Err: errors.New(big)}
	msg := e.Error()
	if len(msg) > 3000 || !strings.Contains(msg, "(10485760 bytes)") {
		t.Errorf("message is %d bytes: %.300s", len(msg), msg)
	}
}

// TestTablesConfigLimits: a tables config over the size limit or with a
// second YAML document is refused, not read in part.
func TestTablesConfigLimits(t *testing.T) {
	const one = "tables:\n  T:\n    source: db\n    table: T\n    order_by: ID\n    fields: {ID: External_Id__c}\n    sf_object: Product2\n"
	if _, err := ParseTablesConfig(strings.NewReader(one), "t.yaml"); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, tt := range map[string]struct{ data, want string }{
		"over the limit":  {one + "# " + strings.Repeat("x", MaxTablesConfigBytes) + "\n", "is larger than 16777216 bytes (16 MiB)"},
		"second document": {one + "---\n" + one, "more than one YAML document (the second starts near line 9)"},
	} {
		_, err := ParseTablesConfig(strings.NewReader(tt.data), "t.yaml")
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a ConfigError saying %q", name, err, tt.want)
		}
	}
}
