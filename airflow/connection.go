// Package airflow reads settings the way Apache Airflow exposes them to a
// task: connections from AIRFLOW_CONN_<CONN_ID> environment variables (URI
// or JSON form) and variables from AIRFLOW_VAR_<KEY>, so that an Airflow
// deployment can run sfmigrate with the environment it already has.
package airflow

import (
	"fmt"
	"log/slog"
	"strings"
)

// Connection is one Airflow connection, with the fields Airflow's own
// Connection model has. Parsing fills it exactly as Airflow would.
type Connection struct {
	// ID is the connection id (the <CONN_ID> of AIRFLOW_CONN_<CONN_ID>, lower case).
	ID string
	// Type is Airflow's conn_type, e.g. "oracle", "postgres", "sqlite", "http".
	Type string
	// Host, Schema, Login, Password and Port are Airflow's fields of the same
	// names; empty / zero when not given.
	Host     string
	Schema   string
	Login    string
	Password string
	Port     int
	// Extra is Airflow's extra_dejson: the query parameters of a URI, or the
	// "extra" object of the JSON form. Values are strings for URIs and any
	// JSON value for the JSON form.
	Extra map[string]any
}

// String describes the connection without its password, so a connection can
// be printed in errors and logs.
func (c Connection) String() string {
	var b strings.Builder
	b.WriteString(c.ID)
	b.WriteString(" (")
	b.WriteString(c.Type)
	b.WriteString("://")
	if c.Login != "" || c.Password != "" {
		b.WriteString(c.Login)
		if c.Password != "" {
			b.WriteString(":***")
		}
		b.WriteByte('@')
	}
	b.WriteString(c.Host)
	if c.Port != 0 {
		fmt.Fprintf(&b, ":%d", c.Port)
	}
	if c.Schema != "" {
		b.WriteByte('/')
		b.WriteString(c.Schema)
	}
	b.WriteByte(')')
	return b.String()
}

// GoString keeps %#v from printing the password.
func (c Connection) GoString() string { return "airflow.Connection{" + c.String() + "}" }

// LogValue keeps log/slog from printing the password.
func (c Connection) LogValue() slog.Value { return slog.StringValue(c.String()) }
