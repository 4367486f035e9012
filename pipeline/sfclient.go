package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
)

// newSalesforceClient builds the client for the salesforce_api connection
// and the tracker definition (no network call).
func newSalesforceClient(conns *Connections, t salesforce.TrackerConfig, poll, pollMax time.Duration, hc *http.Client, logger *slog.Logger) (*salesforce.Client, error) {
	cfg := salesforce.Config{
		LoginURL:     conns.LoginURL,
		ClientID:     conns.Salesforce.Login,
		ClientSecret: conns.Salesforce.Password,
		Connection:   SalesforceConnID,
		APIVersion:   conns.APIVersion,
		PollInterval: poll,
		Tracker:      t,
	}
	// The backoff grows to its maximum whatever the first interval: a short
	// first interval must not multiply the polls (each an API call
	// counted against the org's daily allocation) of a long job.
	cfg.PollMaxInterval = pollMax
	var copts []salesforce.Option
	if hc != nil {
		copts = append(copts, salesforce.WithHTTPClient(hc))
	}
	if logger != nil {
		copts = append(copts, salesforce.WithLogger(logger))
	}
	c, err := salesforce.New(cfg, copts...)
	if err != nil {
		var ne *salesforce.TrackerNameError
		if errors.As(err, &ne) {
			return nil, trackerConfigError(err, "tables config")
		}
		return nil, &ConfigError{Setting: "connection " + SalesforceConnID, Source: salesforceEnv,
			Problem: "is not usable", Err: err, Fix: "check the connection's host, login and password"}
	}
	return c, nil
}

// Salesforce is a signed-in client outside any run, for commands that only
// talk to the org (`sfmigrate auth check`, `sfmigrate tracker`).
type Salesforce struct {
	Client  *salesforce.Client
	Session salesforce.Session
	Conns   *Connections
}

// OpenSalesforce resolves the salesforce_api connection from getenv
// (AIRFLOW_CONN_SALESFORCE_API), builds a client with the tracker
// definition t and signs in. Connection problems are *ConfigError; a login
// Salesforce refuses (wrong client id or secret, an app without the
// client-credentials flow) is a configuration problem too, naming what to
// check; a login that got no answer is not.
func OpenSalesforce(ctx context.Context, getenv func(string) string, t salesforce.TrackerConfig, logger *slog.Logger) (*Salesforce, error) {
	conns, err := ResolveSalesforceConnection(getenv)
	if err != nil {
		return nil, err
	}
	c, err := newSalesforceClient(conns, t, 0, 0, nil, logger)
	if err != nil {
		return nil, err
	}
	sess, err := c.Authenticate(ctx)
	if err != nil {
		return nil, loginError(ctx, err, conns.LoginURL)
	}
	return &Salesforce{Client: c, Session: sess, Conns: conns}, nil
}
