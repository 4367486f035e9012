package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// CheckOptions configure Check.
type CheckOptions struct {
	// Inputs are the settings inputs, as for a run.
	Inputs Inputs
	// HTTPClient is used for every Salesforce call (nil: the client's default).
	HTTPClient *http.Client
	// Logger receives the client's diagnostic logs (nil: discarded).
	Logger *slog.Logger
	// PollInterval and PollMaxInterval are the run's poll delays, for the
	// estimate of API calls (0: the client's defaults).
	PollInterval, PollMaxInterval time.Duration
	// SampleRows is how many of the first rows are converted (default 5).
	SampleRows int
}

// CheckItem is one thing Check verified.
type CheckItem struct {
	Name    string `json:"check"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped,omitempty"` // not tried: an earlier check it depends on failed
	Detail  string `json:"detail,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// CheckReport is what Check found: every check with its result, and the
// numbers a run would have.
type CheckReport struct {
	Table      string `json:"table"`
	Object     string `json:"sf_object"`
	Operation  string `json:"operation"`
	APIVersion string `json:"api_version"`
	// OK is true when every check passed.
	OK     bool        `json:"ok"`
	Checks []CheckItem `json:"checks"`
	// Columns are the mapped source columns with their types.
	Columns []extract.ColumnInfo `json:"columns,omitempty"`
	// Rows is the number of rows the query returns (-1: not counted).
	Rows       int64 `json:"rows"`
	StartBatch int   `json:"start_batch"`
	BatchSize  int   `json:"batch_size"`
	// Batches is the number of batch files (= jobs) a run would write from
	// start_batch on (more if the byte cap splits large rows).
	Batches int64 `json:"batches"`
	// APICalls estimates the API calls a run takes (see estimateCalls);
	// APIRemaining and APIMax are the org's daily allocation (-1: unknown).
	APICalls     int64 `json:"estimated_api_calls"`
	APIRemaining int64 `json:"api_remaining"`
	APIMax       int64 `json:"api_max"`
	// Sample is the first rows as they would be written.
	Sample []extract.SampleRow `json:"sample,omitempty"`
}

// Problems lists the failed checks.
func (c *CheckReport) Problems() []CheckItem {
	var out []CheckItem
	for _, it := range c.Checks {
		if !it.OK && !it.Skipped {
			out = append(out, it)
		}
	}
	return out
}

// Check verifies everything a run of the table needs, writing nothing
// anywhere (no manifest, no batch file, no tracker record, no job): the
// source connection and the query compiled against the mapping, the row
// and batch counts, the Salesforce sign-in, the API version, describe of
// the object, its lookups' parents and the tracker, the org's remaining
// daily API calls against an estimate of the run's, and the first rows
// converted as a run would write them. Settings and connections that cannot
// be resolved are returned as a *ConfigError; every other problem is a
// failed item of the report.
func Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	s, err := ResolveSettings(opts.Inputs)
	if err != nil {
		return nil, err
	}
	conns, err := ResolveConnections(opts.Inputs.Getenv, s)
	if err != nil {
		return nil, err
	}
	if opts.SampleRows <= 0 {
		opts.SampleRows = 5
	}
	// A Runner without a run store: only the checks that write nothing are
	// called on it.
	r := &Runner{opts: Options{Inputs: opts.Inputs, HTTPClient: opts.HTTPClient, Logger: opts.Logger,
		PollInterval: opts.PollInterval, PollMaxInterval: opts.PollMaxInterval, Now: time.Now},
		settings: s, conns: conns, report: nopReporter{}}
	defer func() {
		if r.src != nil {
			r.src.Close() //nolint:errcheck // read-only source
		}
	}()
	rep := &CheckReport{Table: s.Table, Object: s.SFObject, Operation: s.Operation, Rows: -1,
		StartBatch: s.StartBatch, BatchSize: s.BatchSize, APIRemaining: -1, APIMax: -1}
	add := func(name string, err error, detail string) bool {
		it := CheckItem{Name: name, OK: err == nil, Detail: detail}
		if err != nil {
			it.Problem = err.Error()
		}
		rep.Checks = append(rep.Checks, it)
		return err == nil
	}
	skip := func(name, why string) {
		rep.Checks = append(rep.Checks, CheckItem{Name: name, Skipped: true, Detail: "not checked: " + why})
	}

	// Source connection.
	srcName := "source connection " + conns.Source.ID
	_, err = r.openSource(ctx)
	srcOK := add(srcName, err, conns.Source.Type)

	// Salesforce: sign-in, API version, limits, describe.
	var target *TargetState
	sfOK := false
	if _, err := r.newClient(); err != nil {
		add("salesforce connection", err, "")
	} else {
		rep.APIVersion = r.client.Config().APIVersion
		sess, err := r.authenticateOnly(ctx)
		detail := ""
		if err == nil {
			detail = "signed in; instance " + sess.InstanceURL
		}
		sfOK = add("salesforce sign-in", err, detail)
	}
	if sfOK {
		verOK := add("API version", r.checkAPIVersion(ctx), rep.APIVersion+" offered by the org")
		if verOK {
			lim, err := r.client.Limits(ctx)
			if err == nil {
				rep.APIRemaining, rep.APIMax = lim.Remaining, lim.Max
			}
			add("daily API allocation", err, fmt.Sprintf("%d of %d API calls left today", lim.Remaining, lim.Max))
			target, err = r.describeTarget(ctx)
			add("mapping and tracker against describe", err,
				fmt.Sprintf("%s: %d mapped fields exist and are writable; tracker %s has its fields", s.SFObject, len(s.TableConfig.Fields), s.Tracker.SFObject))
		} else {
			skip("daily API allocation", "the API version is not offered")
			skip("mapping and tracker against describe", "the API version is not offered")
		}
	} else {
		for _, n := range []string{"API version", "daily API allocation", "mapping and tracker against describe"} {
			skip(n, "no Salesforce sign-in")
		}
	}

	// Source query, types, counts, sample.
	if !srcOK {
		for _, n := range []string{"source query and columns", "row count", "sample rows"} {
			skip(n, "the source cannot be opened")
		}
		rep.OK = len(rep.Problems()) == 0
		return rep, nil
	}
	t := r.sourceTable(&TargetState{})
	switch {
	case target != nil:
		t = r.sourceTable(target)
	case sfOK:
		// The mapping failed on some field: the types of the others still
		// make the sample and type checks meaningful.
		if pt := r.partialTarget(ctx); pt != nil {
			t = r.sourceTable(pt)
		}
	}
	cols, err := r.checkSource(ctx, t)
	rep.Columns = cols
	detail := fmt.Sprintf("query compiles; %d mapped columns and order_by %s found", len(t.Fields), strings.Join(t.OrderBy, ", "))
	if target == nil && err == nil {
		detail += " (types compared only for the fields describe found)"
	}
	queryOK := add("source query and columns", err, detail)
	if !queryOK {
		skip("row count", "the query does not compile")
		skip("sample rows", "the query does not compile")
		rep.OK = len(rep.Problems()) == 0
		return rep, nil
	}
	rows, err := r.checkStartBatch(ctx, t)
	if err == nil || errors.As(err, new(*ConfigError)) {
		rep.Rows = rows
		from := rows - int64(s.StartBatch-1)*int64(s.BatchSize)
		if from < 0 {
			from = 0
		}
		rep.Batches = batchCount(from, s.BatchSize)
	}
	if err == nil && rows == 0 {
		err = errors.New("the query returns no rows: a run would load nothing")
	}
	add("row count", err, fmt.Sprintf("%d rows; %d batches of %d from start_batch %d", rep.Rows, rep.Batches, s.BatchSize, s.StartBatch))

	if rep.Rows >= 0 {
		rep.APICalls = estimateCalls(rep.Batches, len(s.TableConfig.Fields), r.opts.PollInterval, r.opts.PollMaxInterval)
		if rep.APIRemaining >= 0 {
			var err error
			if rep.APICalls > rep.APIRemaining {
				err = fmt.Errorf("a run takes about %d API calls but the org has %d left today: lower the number of jobs (a larger batch_size) or wait for the allocation to renew (24 hours rolling)",
					rep.APICalls, rep.APIRemaining)
			}
			add("API calls against the allocation", err, fmt.Sprintf("about %d API calls for %d jobs; %d left today", rep.APICalls, rep.Batches, rep.APIRemaining))
		}
	}

	sample, err := r.src.Sample(ctx, t, opts.SampleRows)
	rep.Sample = sample
	if err == nil {
		var bad []string
		for _, row := range sample {
			for _, p := range row.Problems {
				bad = append(bad, fmt.Sprintf("row with key %s: %s", strings.Join(row.Key, ","), p))
			}
		}
		if len(bad) > 0 {
			err = errors.New(strings.Join(bad, "; "))
		}
	}
	add("sample rows", err, fmt.Sprintf("the first %d rows convert to the fields' types", len(sample)))
	rep.OK = len(rep.Problems()) == 0
	return rep, nil
}

// partialTarget reads the types of the mapped fields that exist on the
// object (nil when the object cannot be described); lookups are left
// untyped.
func (r *Runner) partialTarget(ctx context.Context) *TargetState {
	d, err := r.client.Describe(ctx, r.settings.SFObject)
	if err != nil {
		return nil
	}
	ts := &TargetState{Object: r.settings.SFObject}
	for _, f := range r.settings.TableConfig.Fields {
		tf := TargetField{Column: f.Column, Name: f.Name}
		if fd := d.Field(f.Name); fd != nil {
			tf.Type, tf.Length = fd.Type, textLength(fd)
		}
		ts.Fields = append(ts.Fields, tf)
	}
	return ts
}

// estimateCalls estimates the API calls a run of jobs jobs takes: sign-in
// and version list are not counted by Salesforce; describes (object, one
// per lookup at most, tracker) and the tracker writes are a handful; each
// job is created, uploaded, closed, polled and its three result sets read.
// Polls assume a job takes two minutes, polled with the run's backoff.
func estimateCalls(jobs int64, fields int, first, max time.Duration) int64 {
	if first <= 0 {
		first = salesforce.DefaultPollInterval
	}
	if max <= 0 {
		max = salesforce.DefaultPollMaxInterval
	}
	max = maxDuration(max, first)
	polls := int64(0)
	for waited, d := time.Duration(0), first; waited < 2*time.Minute; polls++ {
		waited += d
		d = min(2*d+1, max)
	}
	fixed := int64(2 + fields + 4) // describes (object, tracker, lookups' parents at most one per field) and tracker writes
	return fixed + jobs*(6+polls)
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
