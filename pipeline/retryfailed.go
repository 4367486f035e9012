package pipeline

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sfmigrate/sfmigrate/extract"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// Retrying the failed rows of a finished run (`sfmigrate run --run-id ID
// --retry-failed`).
//
// Once a run finished, its rows that did not land are listed in its result
// and rejected files. After the user fixed them at the source, a retry
// round finds them again there by their order_by key and loads them as a
// new attempt of the same run:
//
//  1. The keys: for each extracted batch, the failed and unprocessed rows of
//     its attempt chain (the merged final files when the chain has
//     follow-ups, else the batch's own), traced back to their source key by
//     the fields the order_by columns are mapped to, and the rows of the
//     chain's rejected files that no later round took.
//  2. One scan of the source (extract.Options.OnlyKeys) writes the rows
//     found into a temporary directory; they are routed to one follow-up
//     batch per extracted batch, after the last attempt of its chain
//     (BatchState.Via "retry-failed"). A row rejected again goes to the
//     follow-up's own rejected file.
//  3. One manifest write records every follow-up, the counts the attempts
//     before hand on (Retried*), RetryRounds, and sets the upload,
//     collect-results and update-status steps pending. From there the
//     round is an ordinary unfinished run: the normal steps upload the
//     follow-ups (record-level retries apply), rewrite the merged final
//     files, the tracker and summary.json, and a crash is resumed by a
//     plain `sfmigrate run --run-id ID` (or --retry-failed again, which
//     finishes the interrupted round before starting any other).
//
// A key not found (the row was deleted, or its key changed) keeps its
// earlier outcome and is reported as a warning.

// ViaRetryFailed is BatchState.Via of a follow-up made by --retry-failed.
const ViaRetryFailed = "retry-failed"

// statePending is the state of a step a --retry-failed round must run again.
const statePending = "pending"

// retryTmpDir is where a retry round re-extracts, under the run directory.
const retryTmpDir = "retry-failed"

// Categories of the rows a retry round takes.
const (
	catFailed = iota
	catUnprocessed
	catRejected
)

var catNames = [...]string{"failed", "unprocessed", "rejected"}

// CheckRetryFailed refuses --retry-failed for a run that has no manifest
// under workDir or has not finished; the Runner checks again under the
// run's lock.
func CheckRetryFailed(workDir, runID string) error {
	if runID == "" {
		return &ConfigError{Setting: "--retry-failed", Source: "command line",
			Problem: "needs the run whose failed rows to retry", Fix: "add --run-id ID of a finished run"}
	}
	if err := ValidateRunID(runID); err != nil {
		return err
	}
	if !ManifestExists(workDir, runID) {
		return &ConfigError{Setting: "--run-id", Value: runID, Source: "flag --run-id",
			Problem: fmt.Sprintf("--retry-failed: no run with this id under --work-dir %s (%s does not exist)",
				workDir, filepath.Join(RunDir(workDir, runID), "manifest.json")),
			Fix: "pass the run id and --work-dir of the finished run whose rows to retry"}
	}
	m, err := ReadManifest(workDir, runID)
	if err != nil {
		return err
	}
	return notFinished(m)
}

// notFinished refuses a run whose first pass has not finished. A run with
// an interrupted retry round is not refused: --retry-failed finishes that
// round (interruptedRound).
func notFinished(m *Manifest) error {
	if m.StepDone(StepUpdateStatus) || interruptedRound(m) {
		return nil
	}
	return &ConfigError{Setting: "--run-id", Value: m.RunID, Source: "flag --run-id",
		Problem: "--retry-failed: it has not finished (step update-status is not done): only the rows of a finished run can be retried",
		Fix:     fmt.Sprintf("resume it first with 'sfmigrate run --run-id %s', then retry its failed rows", m.RunID)}
}

// RetryFailed runs a --retry-failed round over the run (see above) and
// then the steps that load it.
func (r *Runner) RetryFailed(ctx context.Context) (*Summary, error) {
	err := r.retryFailed(ctx)
	return r.finish(err)
}

// keyField is an order_by column and the batch-file field it is mapped to.
type keyField struct {
	column, field, typ string
}

// retryKey is one row a round takes: the extracted batch it belongs to, the
// category of its outcome, and for a rejected row the batch whose rejected
// file listed it.
type retryKey struct {
	origin, cat, from int
	found             bool
}

// retryPlan is the rows a round takes.
type retryPlan struct {
	keys  *extract.KeySet
	byKey map[string]*retryKey // joinKey
	tips  map[int]int          // origin -> index of its chain's last batch
	count [3]int64
}

// interruptedRound reports a run whose latest retry round was recorded but
// not finished: a round is only recorded on a finished run, and it is what
// sets update-status pending again.
func interruptedRound(m *Manifest) bool {
	return m.RetryRounds > 0 && !m.StepDone(StepUpdateStatus)
}

func (p *retryPlan) add(key []string, k retryKey) {
	j := joinKey(key)
	if _, ok := p.byKey[j]; ok {
		return // one outcome per row: the first category found
	}
	p.byKey[j] = &k
	p.keys.Add(key)
	p.count[k.cat]++
}

// joinKey matches extract's: exact keys never hold a NUL byte.
func joinKey(key []string) string { return strings.Join(key, "\x00") }

func (r *Runner) retryFailed(ctx context.Context) error {
	m := r.store.Snapshot()
	if interruptedRound(m) {
		// Its rows are recorded in follow-ups: finish loading them before
		// any new round (a plain resume does the same).
		r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("retry round %d was interrupted: finishing it first (run --retry-failed again afterwards for a new round)", m.RetryRounds)})
		return r.run(ctx)
	}
	if err := notFinished(m); err != nil {
		return err
	}
	if err := r.checkLogsDir(); err != nil {
		return err
	}
	kf, err := r.retryKeyFields(m)
	if err != nil {
		return err
	}
	plan, err := r.retryKeys(m, kf)
	if err != nil {
		return err
	}
	if plan.keys.Len() == 0 {
		r.report.Report(Event{Kind: EventInfo, Message: "run " + r.runID + ": no failed, unprocessed or rejected rows to retry"})
		return r.outcome()
	}
	r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("retry round %d: looking up %d rows at the source by %s (%d failed, %d unprocessed, %d rejected)",
		m.RetryRounds+1, plan.keys.Len(), strings.Join(r.settings.TableConfig.OrderBy, ", "), plan.count[catFailed], plan.count[catUnprocessed], plan.count[catRejected])})

	tmp := filepath.Join(r.store.Dir(), retryTmpDir)
	if err := safefile.RefuseDirLink(tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove the leftovers of an earlier retry round: %w", err)
	}
	defer os.RemoveAll(tmp) // its rows are in the follow-up files, or the round failed
	res, err := r.reextract(ctx, m, plan, tmp)
	if err != nil {
		return err
	}
	builds, err := r.routeRows(m, kf, plan, res)
	if err != nil {
		return err
	}
	if missing := len(res.Missing); missing > 0 {
		var ex []string
		for _, k := range res.Missing[:min(5, missing)] {
			ex = append(ex, strings.Join(k, ","))
		}
		r.warn(fmt.Sprintf("retry round %d: %d of the %d rows to retry are no longer at the source under their key, e.g. %s; they keep their earlier outcome "+
			"(deleted, or the key changed; if they are there, the %s value in the files is not the key's text at the source, e.g. a decimal key mapped to a text field: start a new run to load them)",
			m.RetryRounds+1, missing, plan.keys.Len(), strings.Join(ex, "; "), keyFieldNames(kf)))
	}
	if len(builds) == 0 {
		return r.outcome()
	}
	if err := r.recordRetry(builds); err != nil {
		return err
	}
	var rows, rejected int64
	for _, b := range builds {
		rows += b.fu.Rows
		rejected += b.fu.Rejected
	}
	msg := fmt.Sprintf("retry round %d: %d rows found again, in %d follow-up batches", m.RetryRounds+1, rows+rejected, len(builds))
	if rejected > 0 {
		msg += fmt.Sprintf("; %d of them rejected again (see the follow-ups' rejected files)", rejected)
	}
	r.report.Report(Event{Kind: EventInfo, Message: msg})
	return r.run(ctx)
}

// retryKeyFields checks that the run's rows can be found again by key and
// returns the order_by columns with the fields they are mapped to.
func (r *Runner) retryKeyFields(m *Manifest) ([]keyField, error) {
	s := r.settings
	tc := s.TableConfig
	for _, b := range m.Batches {
		if !b.IsFollowUp() && b.Rows+b.Rejected > 0 && len(b.LastKey) == 0 {
			return nil, &ConfigError{Setting: "--run-id", Value: r.runID, Source: "flag --run-id",
				Problem: fmt.Sprintf("--retry-failed: table %s was extracted by offset, not by key: batch %d has no order_by key that reads back exactly (%s), so there is no key to find rows by",
					s.Table, b.Index, strings.Join(tc.OrderBy, ", ")),
				Fix: "start a new run of the table to load the fixed rows, or order it by a key whose text reads back as itself (a TEXT or INTEGER column)"}
		}
	}
	if m.Target == nil {
		return nil, fmt.Errorf("run %s has no described target fields although it finished: its manifest is incomplete", r.runID)
	}
	var kf []keyField
	var unmapped []string
	for _, col := range tc.OrderBy {
		col = strings.TrimSpace(col)
		found := false
		for i, f := range tc.Fields {
			if strings.EqualFold(f.Column, col) && i < len(m.Target.Fields) {
				kf = append(kf, keyField{column: col, field: f.Name, typ: strings.ToLower(m.Target.Fields[i].Type)})
				found = true
				break
			}
		}
		if !found {
			unmapped = append(unmapped, col)
		}
	}
	if len(unmapped) > 0 {
		return nil, &ConfigError{Setting: "tables." + s.Table + ".order_by", Value: strings.Join(unmapped, ", "), Source: r.tablesSource(),
			Problem: "--retry-failed: these order_by columns are not mapped to fields, so the rows of the result files cannot be traced back to their source keys",
			Fix:     fmt.Sprintf("map them in tables.%s.fields (e.g. to the external id field) and start a new run; this run's rows can only be retried by a new run", s.Table)}
	}
	for _, k := range kf {
		if !keyTypeTraceable(k.typ) {
			return nil, &ConfigError{Setting: "tables." + s.Table + ".order_by", Value: k.column, Source: r.tablesSource(),
				Problem: fmt.Sprintf("--retry-failed: the column is mapped to %s, a %s field, whose value in the files is not the key's text, so result rows cannot be traced back to their source keys", k.field, k.typ),
				Fix:     "order by text, number or date columns to use --retry-failed; start a new run to load the fixed rows"}
		}
	}
	return kf, nil
}

func keyFieldNames(kf []keyField) string {
	names := make([]string, len(kf))
	for i, k := range kf {
		names[i] = k.field
	}
	return strings.Join(names, ", ")
}

// keyTypeTraceable reports whether a field of this describe type carries
// an order_by value in the form extract gives keys: text as it is, numbers
// once canonical (numberKey), dates as yyyy-MM-dd.
func keyTypeTraceable(typ string) bool {
	switch typ {
	case "string", "textarea", "email", "phone", "url", "picklist", "combobox", "id", "reference", "encryptedstring",
		"int", "double", "currency", "percent", "long", "date":
		return true
	}
	return false
}

// rowKey is the source key of a batch-file or result row: the values of the
// key fields, numbers made canonical as extract makes number keys.
func rowKey(kf []keyField, header, row []string) ([]string, error) {
	key := make([]string, len(kf))
	for i, k := range kf {
		c := columnIndex(header, k.field)
		if c < 0 || c >= len(row) {
			return nil, fmt.Errorf("no %s column (order_by %s) to find the row's key by", k.field, k.column)
		}
		v := row[c]
		switch k.typ {
		case "int", "double", "currency", "percent", "long":
			v = numberKey(v)
		}
		key[i] = v
	}
	return key, nil
}

// numberKey is decimal text with the fraction's trailing zeros removed and
// zero unsigned, the text extract gives a number key (12.50 -> 12.5).
func numberKey(s string) string {
	mant, exp := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i:]
	}
	if dot := strings.IndexByte(mant, '.'); dot >= 0 {
		mant = strings.TrimRight(mant, "0")
		if len(mant) == dot+1 {
			mant = mant[:dot]
		}
	}
	if digits := strings.TrimLeft(mant, "+-"); digits != "" && strings.Trim(digits, "0.") == "" {
		return "0"
	}
	return mant + exp
}

// chainOf is the attempt chain of extracted batch b: b, its follow-up, its
// follow-up's, ...
func chainOf(m *Manifest, b *BatchState) []*BatchState {
	chain := []*BatchState{b}
	for next := b.FollowUp; next != 0; {
		fb := m.Batch(next)
		if fb == nil {
			break
		}
		chain = append(chain, fb)
		next = fb.FollowUp
	}
	return chain
}

// carriedKeys are the keys of the rows a --retry-failed follow-up carried:
// those of its result rows and its rejected rows.
func (r *Runner) carriedKeys(kf []keyField, fu *BatchState) (map[string]bool, error) {
	keys := map[string]bool{}
	for _, kind := range ResultKinds {
		f := fu.Results[kind]
		if f == nil || f.Rows == 0 {
			continue
		}
		err := eachCSVRow(f.Path, func(h, row []string) error {
			k, err := rowKey(kf, h, row)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
			keys[joinKey(k)] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if fu.Rejected > 0 && fu.RejectedFile != "" {
		rej, err := extract.ReadRejected(fu.RejectedFile, len(kf))
		if err != nil {
			return nil, err
		}
		for _, x := range rej {
			keys[joinKey(x.Key)] = true
		}
	}
	return keys, nil
}

// resentAfter returns, for an attempt chain, whether a row (by its key) of
// chain[i] was carried on by a later --retry-failed follow-up of the chain;
// nil when the chain has none.
func (r *Runner) resentAfter(kf []keyField, chain []*BatchState) (func(i int, key []string) bool, error) {
	carried := map[int]map[string]bool{}
	for j, b := range chain {
		if b.Via != ViaRetryFailed {
			continue
		}
		keys, err := r.carriedKeys(kf, b)
		if err != nil {
			return nil, fmt.Errorf("read the rows follow-up attempt %d carried: %w", b.AttemptNo(), err)
		}
		carried[j] = keys
	}
	if len(carried) == 0 {
		return nil, nil
	}
	return func(i int, key []string) bool {
		k := joinKey(key)
		for j, keys := range carried {
			if j > i && keys[k] {
				return true
			}
		}
		return false
	}, nil
}

// resentLater is resentAfter for finalResults: it tells the result rows of
// chain[i] a later --retry-failed follow-up carried on (nil: none).
func (r *Runner) resentLater(chain []*BatchState) (func(i int, header, row []string) bool, error) {
	has := false
	for _, b := range chain {
		has = has || b.Via == ViaRetryFailed
	}
	if !has {
		return nil, nil
	}
	kf, err := r.retryKeyFieldsQuiet()
	if err != nil {
		return nil, err
	}
	after, err := r.resentAfter(kf, chain)
	if err != nil || after == nil {
		return nil, err
	}
	return func(i int, header, row []string) bool {
		k, err := rowKey(kf, header, row)
		return err == nil && after(i, k)
	}, nil
}

// retryKeyFieldsQuiet is retryKeyFields for a run that already made a
// retry round: the checks passed then, and the table cannot change since.
func (r *Runner) retryKeyFieldsQuiet() ([]keyField, error) {
	m := r.store.Snapshot()
	kf, err := r.retryKeyFields(m)
	if err != nil {
		return nil, fmt.Errorf("trace the rows a retry round carried back to their keys: %w", err)
	}
	return kf, nil
}

// retryKeys collects the rows a round takes (see the top of this file).
func (r *Runner) retryKeys(m *Manifest, kf []keyField) (*retryPlan, error) {
	plan := &retryPlan{keys: extract.NewKeySet(), byKey: map[string]*retryKey{}, tips: map[int]int{}}
	for _, b := range m.Batches {
		if b.IsFollowUp() {
			continue
		}
		chain := chainOf(m, b)
		tip := chain[len(chain)-1]
		plan.tips[b.Index] = tip.Index
		results := tip.Results
		if len(chain) > 1 {
			if b.Final == nil {
				return nil, fmt.Errorf("batch %d has follow-ups but no merged final results: run 'sfmigrate task collect-results --run-id %s'", b.Index, r.runID)
			}
			results = b.Final
		}
		for _, c := range []struct {
			kind string
			cat  int
		}{{ResultFailed, catFailed}, {ResultUnprocessed, catUnprocessed}} {
			f := results[c.kind]
			if f == nil || f.Rows == 0 {
				continue
			}
			err := eachCSVRow(f.Path, func(h, row []string) error {
				k, err := rowKey(kf, h, row)
				if err != nil {
					return fmt.Errorf("%s: %w", f.Path, err)
				}
				plan.add(k, retryKey{origin: b.Index, cat: c.cat})
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("batch %d: read its %s rows: %w", b.Index, c.kind, err)
			}
		}
		if tip.Unprocessed() > 0 && (results[ResultUnprocessed] == nil || results[ResultUnprocessed].Rows == 0) {
			r.warn(fmt.Sprintf("batch %d: %d unprocessed rows have no unprocessed result rows to find their keys by; they are not retried", b.Index, tip.Unprocessed()))
		}
		var after func(int, []string) bool
		for i, cb := range chain {
			if cb.Rejected == 0 || cb.RejectedFile == "" {
				continue
			}
			if after == nil {
				var err error
				if after, err = r.resentAfter(kf, chain); err != nil {
					return nil, fmt.Errorf("batch %d: %w", b.Index, err)
				}
				if after == nil {
					after = func(int, []string) bool { return false }
				}
			}
			rej, err := extract.ReadRejected(cb.RejectedFile, len(kf))
			if err != nil {
				return nil, fmt.Errorf("batch %d: %w", b.Index, err)
			}
			for _, x := range rej {
				if !after(i, x.Key) {
					plan.add(x.Key, retryKey{origin: b.Index, cat: catRejected, from: cb.Index})
				}
			}
		}
	}
	return plan, nil
}

// reextract scans the source once for the plan's keys, into dir.
func (r *Runner) reextract(ctx context.Context, m *Manifest, plan *retryPlan, dir string) (extract.Result, error) {
	fields, err := r.targetFields(m)
	if err != nil {
		return extract.Result{}, err
	}
	src, err := r.openSource(ctx)
	if err != nil {
		return extract.Result{}, err
	}
	tc := r.settings.TableConfig
	t := extract.Table{Name: r.settings.Table, Query: tc.Query, From: tc.Table, OrderBy: tc.OrderBy, SourceTimeZone: tc.Location(), Fields: fields}
	if tc.Nulls == "clear" {
		t.NullAs = extract.NullClear
	}
	res, err := src.Extract(ctx, t, extract.Options{
		Dir:         filepath.Join(dir, "batches"),
		BatchSize:   max(plan.keys.Len(), 1),
		Start:       extract.Position{BatchIndex: 1},
		RejectDir:   filepath.Join(dir, "rejected"),
		MaxRejected: -1,
		OnlyKeys:    plan.keys,
	})
	if err != nil {
		return res, fmt.Errorf("retry: find the rows to retry at the source: %w", err)
	}
	return res, nil
}

// followUpBuild is the follow-up a round makes for one extracted batch.
type followUpBuild struct {
	origin, tip int
	fu          *BatchState
	header      []string
	rows        [][]string
	rejected    []extract.Rejected
	found       [3]int64      // keys found, by category
	rejFrom     map[int]int64 // rejected keys found, by the batch whose rejected file listed them
}

// routeRows sorts the re-extracted rows into one follow-up per extracted
// batch and writes their files. Nothing is recorded yet.
func (r *Runner) routeRows(m *Manifest, kf []keyField, plan *retryPlan, res extract.Result) ([]*followUpBuild, error) {
	builds := map[int]*followUpBuild{}
	take := func(key []string) (*followUpBuild, error) {
		k := plan.byKey[joinKey(key)]
		if k == nil {
			return nil, fmt.Errorf("retry: the source returned a row with key %q that was not asked for (do the order_by fields %s carry the key unchanged?)",
				strings.Join(key, ","), kf[0].field)
		}
		if k.found {
			return nil, fmt.Errorf("retry: the source returned the key %q twice", strings.Join(key, ","))
		}
		k.found = true
		b := builds[k.origin]
		if b == nil {
			b = &followUpBuild{origin: k.origin, tip: plan.tips[k.origin], rejFrom: map[int]int64{}}
			builds[k.origin] = b
		}
		b.found[k.cat]++
		if k.cat == catRejected {
			b.rejFrom[k.from]++
		}
		return b, nil
	}
	for _, eb := range res.Batches {
		if eb.Path != "" {
			err := eachCSVRow(eb.Path, func(h, row []string) error {
				key, err := rowKey(kf, h, row)
				if err != nil {
					return err
				}
				b, err := take(key)
				if err != nil {
					return err
				}
				b.header = h
				b.rows = append(b.rows, row)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("retry: read the re-extracted rows: %w", err)
			}
		}
		if eb.RejectedPath != "" {
			rej, err := extract.ReadRejected(eb.RejectedPath, len(kf))
			if err != nil {
				return nil, err
			}
			for _, x := range rej {
				b, err := take(x.Key)
				if err != nil {
					return nil, err
				}
				b.rejected = append(b.rejected, x)
			}
		}
	}
	if got := int64(plan.keys.Len() - len(res.Missing)); got != res.Rows+res.Rejected {
		return nil, fmt.Errorf("retry: %d keys found at the source, but %d rows re-extracted", got, res.Rows+res.Rejected)
	}
	var out []*followUpBuild
	for _, b := range builds {
		tip := m.Batch(b.tip)
		attempt := tip.AttemptNo() + 1
		b.fu = &BatchState{Index: followUpIndex(b.origin, attempt), Origin: b.origin, Attempt: attempt, Via: ViaRetryFailed, RetryFrom: attempt - 1}
		if m.Batch(b.fu.Index) != nil {
			return nil, fmt.Errorf("retry: batch %d already has an attempt %d (index %d) in the manifest", b.origin, attempt, b.fu.Index)
		}
		name := r.batchName(b.fu)
		if len(b.rows) > 0 {
			b.fu.File = filepath.Join("batches", name+".csv")
			size, sum, err := writeCSVFile(r.batchPath(b.fu), b.header, b.rows)
			if err != nil {
				return nil, fmt.Errorf("batch %d: write follow-up file %s: %w", b.origin, b.fu.File, err)
			}
			b.fu.Rows, b.fu.Bytes, b.fu.SHA256 = int64(len(b.rows)), size, sum
		}
		if len(b.rejected) > 0 {
			path := filepath.Join(r.logsDir, name+"_rejected.csv")
			var header []string
			for _, k := range r.settings.TableConfig.OrderBy {
				header = append(header, strings.TrimSpace(k))
			}
			header = append(header, extract.RejectedColumns...)
			recs := make([][]string, len(b.rejected))
			for i, x := range b.rejected {
				recs[i] = append(append([]string{}, x.Key...), x.Column, x.Field, x.Value, strconv.Itoa(x.ValueBytes), x.Reason, x.Fix)
			}
			if _, _, err := writeCSVFile(path, header, recs); err != nil {
				return nil, fmt.Errorf("batch %d: write the rows rejected again to %s: %w", b.origin, path, err)
			}
			b.fu.Rejected, b.fu.RejectedFile = int64(len(b.rejected)), path
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].origin < out[j].origin })
	return out, nil
}

// recordRetry records a round in one manifest write: the follow-ups, what
// the attempts before hand on, the round, and the steps to run again. A
// crash before it leaves the run as it was; after it, a plain resume
// loads the round.
func (r *Runner) recordRetry(builds []*followUpBuild) error {
	return r.store.Update(func(m *Manifest) error {
		for _, b := range builds {
			tip := m.Batch(b.tip)
			if tip == nil || tip.FollowUp != 0 {
				return fmt.Errorf("retry: batch %d changed while its rows were being re-extracted", b.origin)
			}
			tip.FollowUp, tip.Settled = b.fu.Index, true
			tip.RetriedFailed += b.found[catFailed]
			tip.RetriedUnprocessed += b.found[catUnprocessed]
			for idx, n := range b.rejFrom {
				rb := m.Batch(idx)
				if rb == nil {
					return fmt.Errorf("retry: batch %d vanished from the manifest", idx)
				}
				rb.RetriedRejected += n
			}
			m.Batches = append(m.Batches, b.fu)
		}
		sort.Slice(m.Batches, func(i, j int) bool { return m.Batches[i].Index < m.Batches[j].Index })
		m.RetryRounds++
		for _, name := range []string{StepUpload, StepCollectResults, StepUpdateStatus} {
			st := m.Step(name)
			st.State, st.Error = statePending, ""
		}
		return nil
	})
}

// writeCSVFile writes header and rows to path as a new 0600 file, through
// path.tmp renamed over it (never through a link), and returns its size
// and SHA-256.
func writeCSVFile(path string, header []string, rows [][]string) (size int64, sum string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, "", err
	}
	tmp := path + ".tmp"
	out, err := safefile.CreateNew(tmp)
	if err != nil {
		return 0, "", err
	}
	w := csv.NewWriter(out)
	if err = w.Write(header); err == nil {
		err = w.WriteAll(rows) // flushes
	}
	err = errors.Join(err, out.Sync(), out.Close())
	if err == nil {
		err = safefile.RefuseLink(path)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, "", err
	}
	sum, err = fileSHA256(path)
	return fi.Size(), sum, err
}
