package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// TestMaxRejectedRowsPrecedence: run config > AIRFLOW_VAR_MAX_REJECTED_ROWS
// > default (no limit); bad values are ConfigErrors naming the source.
func TestMaxRejectedRowsPrecedence(t *testing.T) {
	tables := testTables(t)
	cases := []struct {
		name, conf string
		env        []string
		want       int64
		src        string
	}{
		{"default", "", nil, -1, SourceDefault},
		{"variable", "", []string{"AIRFLOW_VAR_MAX_REJECTED_ROWS", "25"}, 25, "AIRFLOW_VAR_MAX_REJECTED_ROWS"},
		{"run config wins", `{"max_rejected_rows": 0}`, []string{"AIRFLOW_VAR_MAX_REJECTED_ROWS", "25"}, 0, "run config (--conf)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ResolveSettings(Inputs{Table: "PRODUCT_PRICE", Conf: c.conf, ConfSource: "--conf", Getenv: envOf(c.env...), Tables: tables})
			if err != nil {
				t.Fatal(err)
			}
			if s.MaxRejectedRows != c.want || s.Sources["max_rejected_rows"].Source != c.src {
				t.Errorf("max_rejected_rows = %d from %q, want %d from %q", s.MaxRejectedRows, s.Sources["max_rejected_rows"].Source, c.want, c.src)
			}
		})
	}
	if s, _ := ResolveSettings(Inputs{Table: "PRODUCT_PRICE", Tables: tables}); s.Sources["max_rejected_rows"].Value != "no limit" {
		t.Errorf("default recorded as %v", s.Sources["max_rejected_rows"].Value)
	}
	for _, bad := range []struct{ conf, env, want string }{
		{`{"max_rejected_rows": -1}`, "", `max_rejected_rows = "-1" (from run config (--conf)): out of range`},
		{"", "many", `max_rejected_rows = "many" (from AIRFLOW_VAR_MAX_REJECTED_ROWS): not a whole number`},
	} {
		_, err := ResolveSettings(Inputs{Table: "PRODUCT_PRICE", Conf: bad.conf, ConfSource: "--conf", Getenv: envOf("AIRFLOW_VAR_MAX_REJECTED_ROWS", bad.env), Tables: tables})
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("err = %v, want a ConfigError with %q", err, bad.want)
		}
	}
}

// TestTruncateSetting: truncate takes true/false or columns of fields; it
// changes the table's hash only when set, so runs started before it
// existed resume.
func TestTruncateSetting(t *testing.T) {
	parse := func(extra string) (*TableConfig, error) {
		cfg, err := ParseTablesConfig(strings.NewReader(testTablesYAML+extra), "tables.yaml")
		if err != nil {
			return nil, err
		}
		return cfg.Tables["PRICES"], nil
	}
	plain, err := parse("")
	if err != nil {
		t.Fatal(err)
	}
	if plain.Truncate.set() || plain.Truncate.Applies("ID") {
		t.Errorf("truncate without the key: %+v", plain.Truncate)
	}
	all, err := parse("    truncate: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if !all.Truncate.Applies("LIST") || all.Hash() == plain.Hash() {
		t.Errorf("truncate: true: %+v, hash changed %v", all.Truncate, all.Hash() != plain.Hash())
	}
	off, err := parse("    truncate: false\n")
	if err != nil || off.Truncate.set() || off.Hash() != plain.Hash() {
		t.Errorf("truncate: false: %+v, %v; the hash must stay that of a table without it", off, err)
	}
	cols, err := parse("    truncate: [list]\n")
	if err != nil {
		t.Fatal(err)
	}
	if !cols.Truncate.Applies("LIST") || cols.Truncate.Applies("ID") {
		t.Errorf("truncate: [list]: %+v", cols.Truncate)
	}
	for extra, want := range map[string]string{
		"    truncate: [NOPE]\n":      `tables.PRICES.truncate = "NOPE"`,
		"    truncate: {a: b}\n":      "truncate: want true, false or a list of columns",
		"    truncte: true\n":         "did you mean truncate?",
		"    truncate: [ID, NAMEZ]\n": "is not a column of fields",
	} {
		if _, err := parse(extra); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", extra, err, want)
		}
	}
}
