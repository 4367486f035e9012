package airflow

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConnectionURI(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want Connection
	}{
		{
			// Airflow docs, "URI format".
			name: "documented general form",
			uri:  "my-conn-type://my-login:my-password@my-host:5432/my-schema?param1=val1&param2=val2",
			want: Connection{Type: "my_conn_type", Login: "my-login", Password: "my-password", Host: "my-host", Port: 5432,
				Schema: "my-schema", Extra: map[string]any{"param1": "val1", "param2": "val2"}},
		},
		{
			// Airflow docs, `airflow connections get sqlite_default`.
			name: "percent-encoded path as host",
			uri:  "sqlite://%2Ftmp%2Fsqlite_default.db",
			want: Connection{Type: "sqlite", Host: "/tmp/sqlite_default.db"},
		},
		{
			// Airflow docs, get_uri output with quote_plus-encoded extras.
			name: "plus and percent in extras",
			uri:  "mysql://myname:mypassword@myhost.com?this_param=some+val&that_param=other+val%2A",
			want: Connection{Type: "mysql", Login: "myname", Password: "mypassword", Host: "myhost.com",
				Extra: map[string]any{"this_param": "some val", "that_param": "other val*"}},
		},
		{
			// Airflow docs, URI to JSON conversion example.
			name: "__extra__ with nested JSON and encoded slashes in password",
			uri:  "aws://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY@/?__extra__=%7B%22region_name%22%3A+%22eu-central-1%22%2C+%22config_kwargs%22%3A+%7B%22retries%22%3A+%7B%22mode%22%3A+%22standard%22%2C+%22max_attempts%22%3A+10%7D%7D%7D",
			want: Connection{Type: "aws", Login: "AKIAIOSFODNN7EXAMPLE", Password: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
				Extra: map[string]any{"region_name": "eu-central-1", "config_kwargs": map[string]any{"retries": map[string]any{"mode": "standard", "max_attempts": int64(10)}}}},
		},
		{
			// Airflow docs, "Handling of arbitrary dict in extra".
			name: "encoded slash in host, port and schema with __extra__",
			uri:  "scheme://user:password@host%2Flocation:1234/schema?__extra__=%7B%22my_val%22%3A+%5B%22list%22%2C+%22of%22%2C+%22values%22%5D%2C+%22extra%22%3A+%7B%22nested%22%3A+%7B%22json%22%3A+%22val%22%7D%7D%7D",
			want: Connection{Type: "scheme", Login: "user", Password: "password", Host: "host/location", Port: 1234, Schema: "schema",
				Extra: map[string]any{"my_val": []any{"list", "of", "values"}, "extra": map[string]any{"nested": map[string]any{"json": "val"}}}},
		},
		{
			// Airflow docs, "Handling of special characters": the fixed form.
			name: "encoded slash in password",
			uri:  "my-conn-type://my-login:my-pa%2Fssword@my-host:5432/my-schema?param1=val1&param2=val2",
			want: Connection{Type: "my_conn_type", Login: "my-login", Password: "my-pa/ssword", Host: "my-host", Port: 5432,
				Schema: "my-schema", Extra: map[string]any{"param1": "val1", "param2": "val2"}},
		},
		{
			name: "postgresql is normalised and the host lower-cased as Python does",
			uri:  "postgresql://Admin:S3cr%40t@DB.Example.COM:6543/Sales",
			want: Connection{Type: "postgres", Login: "Admin", Password: "S3cr@t", Host: "db.example.com", Port: 6543, Schema: "Sales"},
		},
		{
			name: "sqlite with three slashes puts the path in schema",
			uri:  "sqlite:///data/erp.db",
			want: Connection{Type: "sqlite", Schema: "data/erp.db"},
		},
		{
			name: "host with protocol",
			uri:  "http://https://acme.my.salesforce.com",
			want: Connection{Type: "http", Host: "https://acme.my.salesforce.com"},
		},
		{
			name: "IPv6 host",
			uri:  "postgres://u@[::1]:5432/db",
			want: Connection{Type: "postgres", Login: "u", Host: "::1", Port: 5432, Schema: "db"},
		},
		{
			name: "oracle with service name extra and blank value kept",
			uri:  "oracle://scott:tiger@ora.example.com:1521?service_name=ORCLPDB1&thick_mode=",
			want: Connection{Type: "oracle", Login: "scott", Password: "tiger", Host: "ora.example.com", Port: 1521,
				Extra: map[string]any{"service_name": "ORCLPDB1", "thick_mode": ""}},
		},
		{
			name: "repeated extra key: the last wins",
			uri:  "http://h?a=1&a=2",
			want: Connection{Type: "http", Host: "h", Extra: map[string]any{"a": "2"}},
		},
		{
			name: "login without password, empty port",
			uri:  "postgres://reader@host:/db",
			want: Connection{Type: "postgres", Login: "reader", Host: "host", Schema: "db"},
		},
		{
			name: "surrounding whitespace is ignored",
			uri:  "  salesforce://id:secret@acme.my.salesforce.com \n",
			want: Connection{Type: "salesforce", Login: "id", Password: "secret", Host: "acme.my.salesforce.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnection("c1", tt.uri)
			if err != nil {
				t.Fatalf("ParseConnection: %v", err)
			}
			tt.want.ID = "c1"
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestParseConnectionJSON(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  Connection
	}{
		{
			// Airflow docs, "JSON format example".
			name: "documented example",
			value: `{
				"conn_type": "my-conn-type", "login": "my-login", "password": "my-password",
				"host": "my-host", "port": 1234, "schema": "my-schema",
				"extra": {"param1": "val1", "param2": "val2"}}`,
			want: Connection{Type: "my_conn_type", Login: "my-login", Password: "my-password", Host: "my-host", Port: 1234,
				Schema: "my-schema", Extra: map[string]any{"param1": "val1", "param2": "val2"}},
		},
		{
			name:  "extra as a JSON string, port as a string, host kept as written",
			value: `{"conn_type": "oracle", "host": "ORA.example.com", "port": "1521", "extra": "{\"service_name\": \"X\", \"prefetch_rows\": 5000}"}`,
			want: Connection{Type: "oracle", Host: "ORA.example.com", Port: 1521,
				Extra: map[string]any{"service_name": "X", "prefetch_rows": int64(5000)}},
		},
		{
			name:  "uri inside JSON",
			value: `{"uri": "postgres://u:p@h:5/d", "description": "x"}`,
			want:  Connection{Type: "postgres", Login: "u", Password: "p", Host: "h", Port: 5, Schema: "d"},
		},
		{
			name:  "nulls and a float port",
			value: `{"conn_type": "http", "host": "h", "login": null, "port": 8080.0, "extra": null}`,
			want:  Connection{Type: "http", Host: "h", Port: 8080},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnection("c1", tt.value)
			if err != nil {
				t.Fatalf("ParseConnection: %v", err)
			}
			tt.want.ID = "c1"
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestParseConnectionErrors(t *testing.T) {
	const secret = "hunter2-SECRET"
	tests := []struct {
		name    string
		value   string
		wantMsg string
	}{
		// Airflow docs: an unencoded "/" in the password breaks the URI.
		{"unencoded slash in password", "my-conn-type://my-login:" + secret + "/x@my-host:5432/my-schema", "port (after the last ':' of the host part) is not a number"},
		{"no scheme", "just-a-host", "not a connection URI"},
		{"too many schemes", "a://b://c://" + secret, `appears 3 times`},
		{"protocol after login", "http://user:" + secret + "@https://host", "second \"://\""},
		{"bad port", "postgres://h:99999/db", "out of range"},
		{"unbalanced IPv6", "postgres://[::1/db", "IPv6"},
		{"__extra__ not JSON", "http://h?__extra__=" + secret, "__extra__: not valid JSON"},
		{"__extra__ not an object", "http://h?__extra__=%5B1%5D", "must be a JSON object, got an array"},
		{"JSON syntax", `{"conn_type": "http", "password": "` + secret + `"`, "invalid JSON connection"},
		{"JSON unknown key", `{"conn_type": "http", "hots": "h"}`, "unknown key(s) hots"},
		{"JSON port word", `{"conn_type": "http", "port": "eighty"}`, `expected an integer value for "port", got "eighty"`},
		{"JSON host not a string", `{"conn_type": "http", "host": 5}`, `"host" must be a string, got a number`},
		{"JSON uri and fields", `{"uri": "http://h", "host": "x"}`, "either \"uri\" or the separate fields"},
		{"JSON extra array", `{"conn_type": "http", "extra": [1]}`, `"extra" must be a JSON object`},
		{"JSON trailing text", `{"conn_type": "http"} x`, "unexpected text after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConnection("src_db", tt.value)
			if err == nil {
				t.Fatal("ParseConnection succeeded, want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not contain %q", msg, tt.wantMsg)
			}
			if !strings.Contains(msg, "AIRFLOW_CONN_SRC_DB") {
				t.Errorf("error %q does not name the environment variable", msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q leaks the secret", msg)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !pe.ConfigError() {
				t.Errorf("error is %T, want *ParseError marked as a config error", err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	env := map[string]string{
		"AIRFLOW_CONN_ORACLE_DEFAULT": "oracle://u:p@h:1521?service_name=S",
		"AIRFLOW_VAR_BATCH_SIZE":      "5000",
	}
	getenv := func(k string) string { return env[k] }

	c, err := LookupConnection(getenv, "oracle_default")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "oracle_default" || c.Host != "h" || c.Port != 1521 {
		t.Errorf("LookupConnection = %+v", c)
	}

	_, err = LookupConnection(getenv, "salesforce_api")
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "set AIRFLOW_CONN_SALESFORCE_API") {
		t.Errorf("missing connection: err = %v, want *NotFoundError naming AIRFLOW_CONN_SALESFORCE_API", err)
	}

	if v, ok := LookupVariable(getenv, "batch_size"); !ok || v != "5000" {
		t.Errorf("LookupVariable(batch_size) = %q, %v", v, ok)
	}
	if _, ok := LookupVariable(getenv, "start_batch"); ok {
		t.Error("LookupVariable(start_batch) found a value that is not set")
	}
}

func TestConnectionNeverPrintsPassword(t *testing.T) {
	c := Connection{ID: "salesforce_api", Type: "http", Host: "h", Login: "client-id", Password: "s3cr3t-value"}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("using", "conn", c)
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String()} {
		if strings.Contains(s, "s3cr3t-value") {
			t.Errorf("password printed: %s", s)
		}
	}
}

func TestConnectionString(t *testing.T) {
	tests := []struct {
		c    Connection
		want string
	}{
		{Connection{ID: "src", Type: "sqlite", Host: "/data/erp.db"}, "src (sqlite:///data/erp.db)"},
		{Connection{ID: "pg", Type: "postgres", Login: "etl", Password: "x", Host: "db", Port: 5432, Schema: "erp"}, "pg (postgres://etl:***@db:5432/erp)"},
		{Connection{ID: "sf", Type: "http", Login: "client", Host: "https://acme.my.salesforce.com"}, "sf (http://client@https://acme.my.salesforce.com)"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
