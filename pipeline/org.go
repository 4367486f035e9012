package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
)

// Org is a connection to the Salesforce org for work that belongs to no
// single table: reading describes to plan several tables, and the plan's own
// tracker record. It holds no run, manifest or lock.
type Org struct {
	r *Runner
}

// OpenOrg resolves the salesforce_api connection (AIRFLOW_CONN_SALESFORCE_API,
// read through opts.Inputs.Getenv) and builds a client. No network call:
// problems with the connection are *ConfigErrors.
func OpenOrg(opts Options) (*Org, error) {
	getenv := opts.Inputs.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	conns, err := ResolveSalesforceConnection(getenv)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Settings{Sources: map[string]Setting{}}
	if opts.Inputs.Tables != nil {
		s.Tracker = opts.Inputs.Tables.StatusTracker
	}
	r := &Runner{opts: opts, settings: s, conns: conns, report: nopReporter{}}
	if _, err := r.newClient(); err != nil {
		return nil, err
	}
	return &Org{r: r}, nil
}

// Authenticate signs in; a refusal is a configuration problem (exit 2).
func (o *Org) Authenticate(ctx context.Context) error {
	_, err := o.r.authenticateOnly(ctx)
	return err
}

// Describe reads an object's describe (read-only). An object the org does
// not have is a *ConfigError naming setting and src, where the name came from.
func (o *Org) Describe(ctx context.Context, object, setting, src string) (*salesforce.SObjectDescribe, error) {
	d, err := o.r.client.Describe(ctx, object)
	if err != nil {
		var apiErr *salesforce.APIError
		if errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusBadRequest) {
			return nil, &ConfigError{Setting: setting, Value: object, Source: src,
				Problem: fmt.Sprintf("the org has no object with this API name, or the run-as user cannot see it (describe answered %d %s)", apiErr.Status, apiErr.Code()),
				Fix:     "use the object's API name as Setup > Object Manager shows it, e.g. Account or Product2"}
		}
		return nil, fmt.Errorf("describe %s: %w", object, err)
	}
	return d, nil
}

// SetStatus writes a tracker record of the tables config's status tracker:
// status, and the run id and message fields when the tracker has them. With
// status_tracker.create (the default) the record is created when missing;
// otherwise it must exist and only its status is updated.
func (o *Org) SetStatus(ctx context.Context, ref, status, runID, message string) error {
	tr := o.r.settings.Tracker
	if !tr.CreateRecord() {
		if err := o.r.client.UpdateStatus(ctx, ref, status); err != nil {
			if errors.Is(err, salesforce.ErrTrackerRecordNotFound) {
				return &ConfigError{Setting: "plan_status_ref", Value: ref, Source: "tables config",
					Problem: fmt.Sprintf("no %s record has %s = %q, and status_tracker.create is false", tr.SFObject, tr.ExternalIDField, ref),
					Fix:     "create that tracker record first, or set status_tracker.create: true"}
			}
			return fmt.Errorf("tracker %s status %q: %w", ref, status, err)
		}
		return nil
	}
	fields := map[string]any{}
	if tr.RunIDField != "" {
		fields[tr.RunIDField] = runID
	}
	if tr.MessageField != "" && message != "" {
		fields[tr.MessageField] = message
	}
	if err := o.r.client.UpsertStatus(ctx, ref, status, fields); err != nil {
		return fmt.Errorf("tracker %s status %q: %w", ref, status, err)
	}
	return nil
}

// LockDir takes the exclusive lock a run directory's manifest writer holds,
// for directories that group runs (a plan's). The kernel drops it when the
// process dies; Close releases it.
func LockDir(dir string) (io.Closer, error) { return lockDir(dir) }
