package pipeline

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// SalesforceConnID is the Airflow connection that holds the connected app:
// login = client id, password = client secret, host = login URL.
const SalesforceConnID = "salesforce_api"

// Connections are the resolved connections of one run.
type Connections struct {
	// Salesforce is the salesforce_api connection.
	Salesforce airflow.Connection
	// LoginURL is the base URL the token request goes to.
	LoginURL string
	// APIVersion is the connection's extra "api_version" ("" = the client's default).
	APIVersion string
	// Source is the table's source database connection.
	Source airflow.Connection
}

// ResolveConnections reads the Salesforce and source connections from
// AIRFLOW_CONN_* and checks them; every problem is a *ConfigError.
func ResolveConnections(getenv func(string) string, s *Settings) (*Connections, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c, err := resolveSalesforceConn(getenv)
	if err != nil {
		return nil, err
	}
	src, err := lookupConn(getenv, s.TableConfig.Source,
		fmt.Sprintf("set %s to the source database, e.g. sqlite:////path/to/erp.db or postgres://user:pass@host:5432/db (tables.%s.source names this connection)",
			airflow.EnvName(airflow.ConnEnvPrefix, s.TableConfig.Source), s.Table))
	if err != nil {
		return nil, err
	}
	switch src.Type {
	case "sqlite", "postgres", "postgresql", "oracle":
	default:
		return nil, &ConfigError{Setting: "connection " + src.ID + " conn_type", Value: src.Type,
			Source:  airflow.EnvName(airflow.ConnEnvPrefix, s.TableConfig.Source),
			Problem: "is not a supported source database", Fix: "use a sqlite, postgres or oracle connection"}
	}
	c.Source = src
	return c, nil
}

func lookupConn(getenv func(string) string, id, fix string) (airflow.Connection, error) {
	conn, err := airflow.LookupConnection(getenv, id)
	if err == nil {
		return conn, nil
	}
	envName := airflow.EnvName(airflow.ConnEnvPrefix, id)
	var nf *airflow.NotFoundError
	if errors.As(err, &nf) {
		return conn, &ConfigError{Setting: "connection " + id, Source: envName, Problem: "is not set", Fix: fix}
	}
	var pe *airflow.ParseError
	if errors.As(err, &pe) {
		// Its message repeats the connection and variable named here.
		return conn, &ConfigError{Setting: "connection " + id, Source: envName, Problem: "cannot be parsed: " + pe.Reason, Fix: fix}
	}
	return conn, &ConfigError{Setting: "connection " + id, Source: envName, Problem: "cannot be parsed", Err: err, Fix: fix}
}

// loginURL builds the token endpoint's base from the connection the way the
// original plugin used it ({host}/services/oauth2/token): a host with a
// scheme is taken as is; otherwise the scheme comes from the connection's
// schema ("http"/"https", as Airflow's HTTP hook reads it), else https.
// A conn_type of http (the usual type of such connections) gives plain
// http only for loopback hosts (the emulator): the client secret is never
// sent unencrypted to another machine unless schema says so explicitly.
func loginURL(c airflow.Connection) (string, error) {
	host := strings.TrimSpace(c.Host)
	if host == "" {
		return "", errors.New("is empty: it must hold the login URL")
	}
	if !strings.Contains(host, "://") {
		scheme := "https"
		switch {
		case c.Schema == "http" || c.Schema == "https":
			scheme = c.Schema
		case c.Type == "http" && isLoopback(host):
			scheme = "http"
		}
		host = scheme + "://" + host
		if c.Port != 0 {
			host += ":" + strconv.Itoa(c.Port)
		}
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not an http(s) URL", host)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	h := host
	if i := strings.LastIndex(h, ":"); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

// resolveSalesforceConn reads and checks the salesforce_api connection.
func resolveSalesforceConn(getenv func(string) string) (*Connections, error) {
	sf, err := lookupConn(getenv, SalesforceConnID,
		fmt.Sprintf(`set %s to the connected app (login = client id, password = client secret, host = My Domain URL), e.g. '{"conn_type": "http", "host": "https://MyDomain.my.salesforce.com", "login": "CLIENT_ID", "password": "CLIENT_SECRET"}'`,
			airflow.EnvName(airflow.ConnEnvPrefix, SalesforceConnID)))
	if err != nil {
		return nil, err
	}
	c := &Connections{Salesforce: sf}
	envName := airflow.EnvName(airflow.ConnEnvPrefix, SalesforceConnID)
	bad := func(field, problem, fix string) error {
		return &ConfigError{Setting: "connection " + SalesforceConnID + " " + field, Source: envName, Problem: problem, Fix: fix}
	}
	if sf.Login == "" {
		return nil, bad("login", "is empty: it must hold the connected app's client id (consumer key)", "put the client id in the connection's login")
	}
	if sf.Password == "" {
		return nil, bad("password", "is empty: it must hold the connected app's client secret", "put the client secret in the connection's password")
	}
	if c.LoginURL, err = loginURL(sf); err != nil {
		return nil, bad("host", err.Error(), "set host to your org's My Domain URL, e.g. https://MyDomain.my.salesforce.com")
	}
	if v, ok := sf.Extra["api_version"]; ok {
		c.APIVersion = strings.TrimSpace(fmt.Sprint(v))
		if !strings.HasPrefix(c.APIVersion, "v") {
			c.APIVersion = "v" + c.APIVersion
		}
		if _, err := strconv.ParseFloat(c.APIVersion[1:], 64); err != nil {
			return nil, &ConfigError{Setting: "connection " + SalesforceConnID + " extra api_version", Value: fmt.Sprint(v), Source: envName,
				Problem: "not an API version", Fix: "use a version such as 66.0"}
		}
	}
	return c, nil
}
