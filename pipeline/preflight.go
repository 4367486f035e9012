package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// preflight runs, after sign-in and before anything is written to the org,
// every check that can fail on the configuration: the API version, the
// mapping and the tracker against describe, and the source query compiled
// against the mapping (a wrong order_by, a column the source lacks, a file
// that is not a database). The field types it finds go into the manifest
// for the extract step. `sfmigrate check` runs the same checks (check.go).
func (r *Runner) preflight(ctx context.Context) error {
	if err := r.checkAPIVersion(ctx); err != nil {
		return err
	}
	target, err := r.describeTarget(ctx)
	if err != nil {
		return err
	}
	m := r.store.Snapshot()
	if !m.Extract.Done {
		t := r.sourceTable(target)
		if _, err := r.checkSource(ctx, t); err != nil {
			return err
		}
		if len(m.Batches) == 0 && r.settings.StartBatch > 1 {
			if _, err := r.checkStartBatch(ctx, t); err != nil {
				return err
			}
		}
	}
	// The extract step, perhaps in another process, formats values by these.
	return r.store.Update(func(m *Manifest) error {
		m.Target = target
		return nil
	})
}

// checkAPIVersion makes sure the org offers the configured API version,
// so that an unsupported one is reported as such and not as a missing
// object (describe of an unknown version answers 404).
func (r *Runner) checkAPIVersion(ctx context.Context) error {
	if _, err := r.newClient(); err != nil {
		return err
	}
	err := r.client.CheckAPIVersion(ctx)
	var ve *salesforce.VersionError
	if errors.As(err, &ve) {
		src := "default (extra api_version of " + salesforceEnv + " changes it)"
		if r.conns.APIVersion != "" {
			src = salesforceEnv + ", extra api_version"
		}
		fix := "set the connection's extra api_version to a version the org offers"
		if n := len(ve.Offered); n > 0 {
			fix += ", e.g. " + ve.Offered[n-1]
		}
		offered := "none"
		if n := len(ve.Offered); n > 0 {
			offered = ve.Offered[0] + " to " + ve.Offered[n-1]
		}
		return &ConfigError{Setting: "connection " + SalesforceConnID + " api_version", Value: ve.Version, Source: src,
			Problem: "this org does not offer that REST API version (it offers " + offered + ")", Fix: fix}
	}
	if err != nil {
		return fmt.Errorf("check the API version: %w", err)
	}
	return nil
}

// sourceTable is the extraction of the table with the field types that
// describe found.
func (r *Runner) sourceTable(target *TargetState) extract.Table {
	s := r.settings
	tc := s.TableConfig
	fields := make([]extract.Field, len(tc.Fields))
	for i, f := range tc.Fields {
		fields[i] = extract.Field{Column: f.Column, Name: f.Name}
		if i < len(target.Fields) {
			fields[i].Type, fields[i].Length = target.Fields[i].Type, target.Fields[i].Length
		}
	}
	t := extract.Table{Name: s.Table, Query: tc.Query, From: tc.Table, OrderBy: tc.OrderBy, SourceTimeZone: tc.Location(), Fields: fields}
	if tc.Nulls == "clear" {
		t.NullAs = extract.NullClear
	}
	return t
}

// checkSource compiles the table's query without running it and checks the
// mapped and order_by columns and their types against the fields'.
func (r *Runner) checkSource(ctx context.Context, t extract.Table) ([]extract.ColumnInfo, error) {
	src, err := r.openSource(ctx)
	if err != nil {
		return nil, err
	}
	cols, err := src.Check(ctx, t)
	var colErr *extract.ColumnError
	if errors.As(err, &colErr) {
		setting, value := "tables."+r.settings.Table+".order_by", colErr.Name
		problem := "is not a column of the source's " + sourceWhat(t)
		if colErr.What == "column" {
			setting = "tables." + r.settings.Table + ".fields." + colErr.Name
			for _, f := range t.Fields {
				if f.Column == colErr.Name {
					value = f.Name
				}
			}
			problem = "maps source column " + colErr.Name + ", which is not a column of the source's " + sourceWhat(t)
		}
		cols := strings.Join(colErr.Columns, ", ")
		if len(cols) > 400 {
			cols = cols[:400] + "…"
		}
		return nil, &ConfigError{Setting: setting, Value: value, Source: r.tablesSource(),
			Problem: problem + " (its columns: " + cols + ")",
			Fix:     withGuess(Suggest(colErr.Name, colErr.Columns), "name a column the query returns, or add it to the query")}
	}
	if err != nil {
		return nil, err // QueryError: configuration (exit 2), naming the setting
	}
	for _, c := range cols {
		if c.Problem != "" {
			return cols, &ConfigError{Setting: "tables." + r.settings.Table + ".fields." + c.Column, Value: c.Field, Source: r.tablesSource(),
				Problem: fmt.Sprintf("source column %s (%s) cannot be written into field %s: %s", c.Column, c.DBType, c.Field, c.Problem),
				Fix:     "map the column to a field of a matching type, or convert the value in the query"}
		}
	}
	return cols, nil
}

// sourceWhat names the table's source for messages.
func sourceWhat(t extract.Table) string {
	if t.From != "" {
		return "table " + t.From
	}
	return "query"
}

// checkStartBatch counts the source rows and refuses a start_batch past
// the last batch, naming how many batches there are.
func (r *Runner) checkStartBatch(ctx context.Context, t extract.Table) (int64, error) {
	src, err := r.openSource(ctx)
	if err != nil {
		return 0, err
	}
	rows, err := src.Count(ctx, t)
	if err != nil {
		return 0, err
	}
	s := r.settings
	batches := batchCount(rows, s.BatchSize)
	if int64(s.StartBatch-1)*int64(s.BatchSize) >= rows && rows > 0 {
		return rows, &ConfigError{Setting: "start_batch", Value: fmt.Sprint(s.StartBatch), Source: s.Sources["start_batch"].Source,
			Problem: fmt.Sprintf("is past the end: the source has %d rows, %d batches of batch_size %d", rows, batches, s.BatchSize),
			Fix:     fmt.Sprintf("set start_batch between 1 and %d (or leave it out to start at 1)", batches)}
	}
	return rows, nil
}

// batchCount is how many batches of size rows take (at least; batch files
// are also capped in bytes).
func batchCount(rows int64, size int) int64 {
	if size <= 0 {
		return 0
	}
	return (rows + int64(size) - 1) / int64(size)
}

// OutcomeNoRows is the outcome of a run whose source returned no rows.
const OutcomeNoRows = "no rows"

// noRows reports whether the run extracted everything and found no rows.
func noRows(m *Manifest) bool { return m.Extract.Done && m.Totals().Rows == 0 }

// DiscardIfUnused closes the Runner and removes the run's directory (and
// its empty results directory) when this Runner started the run under an
// id it made up (no --run-id) and the run did nothing worth keeping: no
// step finished, no batch written, the tracker untouched. A run stopped by
// a configuration error thus leaves no empty run behind; a fixed rerun
// starts afresh. A run id the caller chose is kept: they may rerun it
// (an orchestrator retrying its task). It reports whether it removed the run.
func (r *Runner) DiscardIfUnused() bool {
	if r.resumed || r.opts.RunID != "" {
		return false
	}
	m := r.store.Snapshot()
	if len(m.Batches) > 0 || m.Tracker.Status != "" {
		return false
	}
	for _, st := range m.Steps {
		if st.State == StateDone {
			return false
		}
	}
	dir := r.store.Dir()
	if err := r.Close(); err != nil {
		return false
	}
	if err := os.RemoveAll(dir); err != nil {
		return false
	}
	_ = os.Remove(r.logsDir) // only when empty; an error means it holds something
	return true
}
