package pipeline

import (
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/airflow"
)

func TestLoginURL(t *testing.T) {
	tests := []struct {
		name string
		conn airflow.Connection
		want string
	}{
		{"host with scheme", airflow.Connection{Type: "http", Host: "https://acme.my.salesforce.com/"}, "https://acme.my.salesforce.com"},
		{"bare host, http type: https for a remote host", airflow.Connection{Type: "http", Host: "acme.my.salesforce.com"}, "https://acme.my.salesforce.com"},
		{"bare loopback host, http type", airflow.Connection{Type: "http", Host: "127.0.0.1", Port: 8080}, "http://127.0.0.1:8080"},
		{"localhost", airflow.Connection{Type: "http", Host: "localhost", Port: 9}, "http://localhost:9"},
		{"schema says http", airflow.Connection{Type: "http", Host: "emu.internal", Schema: "http", Port: 80}, "http://emu.internal:80"},
		{"https type", airflow.Connection{Type: "https", Host: "acme.my.salesforce.com"}, "https://acme.my.salesforce.com"},
		{"other type", airflow.Connection{Type: "salesforce", Host: "acme.my.salesforce.com"}, "https://acme.my.salesforce.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loginURL(tt.conn)
			if err != nil || got != tt.want {
				t.Errorf("loginURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, bad := range []airflow.Connection{{Type: "http"}, {Type: "http", Host: "ftp://x"}} {
		if got, err := loginURL(bad); err == nil {
			t.Errorf("%+v: got %q, want an error", bad, got)
		}
	}
}

func TestResolveConnections(t *testing.T) {
	tables := testTables(t)
	s, err := ResolveSettings(Inputs{Table: "PRICES", Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	env := envOf(
		"AIRFLOW_CONN_SALESFORCE_API", "http://my%20app:p%40ss%2Fword@127.0.0.1:8080/?api_version=62.0",
		"AIRFLOW_CONN_ERP_DB", "postgresql://u:p@db.example:5432/erp",
	)
	c, err := ResolveConnections(env, s)
	if err != nil {
		t.Fatal(err)
	}
	if c.LoginURL != "http://127.0.0.1:8080" || c.Salesforce.Login != "my app" || c.Salesforce.Password != "p@ss/word" ||
		c.APIVersion != "v62.0" || c.Source.Type != "postgres" || c.Source.Host != "db.example" {
		t.Errorf("connections = %+v (login URL %s, version %s)", c, c.LoginURL, c.APIVersion)
	}
	// The password never shows in errors.
	_, err = ResolveConnections(envOf("AIRFLOW_CONN_SALESFORCE_API", `{"conn_type": "http", "login": "id", "password": "sekret"}`), s)
	if err == nil || !strings.Contains(err.Error(), "salesforce_api host") || strings.Contains(err.Error(), "sekret") {
		t.Errorf("no host: err = %v", err)
	}
	_, err = ResolveConnections(envOf("AIRFLOW_CONN_SALESFORCE_API", `{"conn_type": "http", "host": "https://x.my.salesforce.com", "login": "id", "password": "p", "extra": {"api_version": "abc"}}`,
		"AIRFLOW_CONN_ERP_DB", "sqlite:///x.db"), s)
	if err == nil || !strings.Contains(err.Error(), "api_version") {
		t.Errorf("bad api version: err = %v", err)
	}
}
