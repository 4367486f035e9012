package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/internal/demo"
)

// TestHostileConfigs: config files sfmigrate cannot read whole are
// refused (exit 2) with a message naming the problem, and no message
// echoes a huge value whole.
func TestHostileConfigs(t *testing.T) {
	h := newHarness(t, sample{products: 3, prices: 3})
	dir := t.TempDir()
	huge := strings.Repeat("x", 10<<20)
	writeFile := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := demo.TablesYAML()
	// A tables config over the limit whose last mapping lies past it: once
	// silently cut there (exit 0, the field never loaded).
	overLimit := strings.Replace(valid, "      LAST_CHANGED: Last_Changed__c\n",
		"      # "+strings.Repeat("p", 17<<20)+"\n      LAST_CHANGED: Last_Changed__c\n", 1)
	for _, tt := range []struct {
		name   string
		args   []string
		tables string // tables config content; "" keeps the valid one
		want   string // in stderr
	}{
		{"10 MB value in --conf-file", []string{"--conf-file", writeFile("big.json", `{"batch_size": "`+huge+`"}`)}, "",
			"is larger than 1048576 bytes (1 MiB)"},
		{"900 KB value in --conf-file", []string{"--conf-file", writeFile("value.json", `{"batch_size": "`+huge[:900<<10]+`"}`)}, "",
			"(921600 bytes)"},
		{"900 KB text after the object in --conf-file", []string{"--conf-file", writeFile("trail.json", `{"batch_size": 5}`+huge[:900<<10])}, "",
			"has text after the JSON object"},
		{"1 MB sf_object", nil, strings.Replace(valid, "sf_object: Product2", "sf_object: P"+huge[:1<<20], 1),
			"(1048577 bytes)"},
		{"1 MB table name", nil, strings.Replace(valid, "  PRODUCTS:", "  PRODUCTS"+huge[:1<<20]+":", 1), "tables config"},
		{"tables config over 16 MiB", nil, overLimit, "is larger than 16777216 bytes (16 MiB)"},
		{"second YAML document", nil, valid + "---\ntables:\n  OTHER:\n    source: demo_erp\n", "more than one YAML document (the second starts near line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			content := valid
			if tt.tables != "" {
				content = tt.tables
			}
			if err := os.WriteFile(h.tables, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := h.main("run", append([]string{"--table", "PRODUCTS"}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %.600q; want exit 2 and %q", code, stderr, tt.want)
			}
			if len(stderr) > 2000 || len(stdout) > 2000 {
				t.Errorf("%d bytes of stderr, %d of stdout: %.300q", len(stderr), len(stdout), stderr)
			}
		})
	}
	if got, _ := h.query("SELECT COUNT() FROM Product2"); got != 0 {
		t.Errorf("refused configs loaded %d products", got)
	}
}

// TestEmulatorObjectsRefused: an --objects file with a second YAML
// document or over the size limit is refused (exit 2), not used in part.
func TestEmulatorObjectsRefused(t *testing.T) {
	dir := t.TempDir()
	for name, tt := range map[string]struct{ data, want string }{
		"second document": {"objects:\n  - name: A__c\n---\nobjects:\n  - name: B__c\n", "more than one YAML document"},
		"over 16 MiB":     {"objects:\n  - name: A__c\n# " + strings.Repeat("x", 17<<20) + "\n", "larger than 16777216 bytes"},
		"1 MB name":       {"objects:\n  - name: A" + strings.Repeat("-", 1<<20) + "\n", "(1048577 bytes)"},
	} {
		p := filepath.Join(dir, "org.yaml")
		if err := os.WriteFile(p, []byte(tt.data), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb strings.Builder
		code := Main(t.Context(), []string{"emulator", "--objects", p}, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
		if code != 2 || !strings.Contains(errb.String(), tt.want) || errb.Len() > 2000 {
			t.Errorf("%s: exit %d, stderr (%d bytes) %.400q; want exit 2 and %q", name, code, errb.Len(), errb.String(), tt.want)
		}
	}
}

// TestHostileEnvironment: huge connection and variable values are quoted
// as bounded excerpts.
func TestHostileEnvironment(t *testing.T) {
	h := newHarness(t, sample{products: 3, prices: 3})
	big := strings.Repeat("y", 1<<20)
	for name, env := range map[string]map[string]string{
		"connection URI":        {"AIRFLOW_CONN_SALESFORCE_API": "http://" + big},
		"connection JSON":       {"AIRFLOW_CONN_SALESFORCE_API": `{"conn_type":"http","host":"` + big + `","login":"a","password":"b"}`},
		"connection not JSON":   {"AIRFLOW_CONN_SALESFORCE_API": "{" + big},
		"source connection":     {"AIRFLOW_CONN_DEMO_ERP": "sqlite://" + big},
		"batch size variable":   {"AIRFLOW_VAR_BATCH_SIZE": big},
		"start batch variable":  {"AIRFLOW_VAR_START_BATCH": "1" + big},
		"connection extra JSON": {"AIRFLOW_CONN_SALESFORCE_API": `{"conn_type":"http","host":"http://x","extra":{"k":"` + big + `"}}`},
	} {
		t.Run(name, func(t *testing.T) {
			saved := map[string]string{}
			for k, v := range env {
				saved[k] = h.env[k]
				h.env[k] = v
			}
			defer func() {
				for k, v := range saved {
					h.env[k] = v
				}
			}()
			code, stdout, stderr := h.main("run", "--table", "PRODUCTS")
			if code == 0 {
				t.Errorf("exit 0 with %s", name)
			}
			if len(stderr) > 3000 || len(stdout) > 3000 {
				t.Errorf("exit %d: %d bytes of stderr, %d of stdout: %.400q", code, len(stderr), len(stdout), stderr)
			}
		})
	}
}

// TestErrorBackstop: whatever an error holds, sfmigrate prints at most
// maxMessage bytes of it, with its length.
func TestErrorBackstop(t *testing.T) {
	var b strings.Builder
	code := exitCode(&b, errors.New(strings.Repeat("e", 1<<20)))
	if code != exitFailure || b.Len() > maxMessage+100 || !strings.Contains(b.String(), "(1048576 bytes)") {
		t.Errorf("exit %d, %d bytes printed", code, b.Len())
	}
	var out, errb strings.Builder
	Main(t.Context(), []string{strings.Repeat("c", 1<<20)}, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if errb.Len() > 4000 {
		t.Errorf("unknown 1 MB command: %d bytes of stderr", errb.Len())
	}
}
