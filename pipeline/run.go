package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sfmigrate/sfmigrate/airflow"
	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/salesforce"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// Options configure a Runner.
type Options struct {
	// WorkDir holds runs/<run-id>/ (manifest and batch files). Default ".".
	WorkDir string
	// LogsDir holds <run-id>/ result files and summary.json. Default "salesforce/logs".
	LogsDir string
	// RunID names the run; "" starts a new one named after the table and time.
	RunID string
	// Batch, when not 0, makes the Runner a mapped upload of that one
	// extracted batch (`task upload --batch N`, mapped.go): it owns the
	// batch and its follow-ups and runs beside the uploads of other batches.
	Batch int
	// Settings inputs (flags, run config, environment, tables config).
	Inputs Inputs
	// Reporter receives progress events (nil: none). It must be safe for
	// concurrent use.
	Reporter Reporter
	// Logger receives the client's diagnostic logs (nil: discarded).
	Logger *slog.Logger
	// HTTPClient is used for every Salesforce call (nil: the client's default).
	HTTPClient *http.Client
	// PollInterval overrides the client's first job-poll delay (0: default 2s).
	PollInterval time.Duration
	// PollMaxInterval overrides the longest delay between job polls the
	// backoff grows to (0: default 30s).
	PollMaxInterval time.Duration
	// MaxBatchBytes caps a batch file's size in bytes (0: 90,000,000, a
	// margin under the 100 MB one Bulk API job accepts; at most
	// 100,000,000), so no batch_size makes a job Salesforce refuses.
	MaxBatchBytes int64
	// KeepBatches keeps batch files after their job completed and its
	// results were saved (by default they are removed, so disk use stays
	// bounded by the files waiting and in flight).
	KeepBatches bool
	// StopGrace bounds how long in-flight uploads may take to finish after
	// the context is cancelled (default 20s); jobs still Open then are
	// aborted by the client and re-created by the next run.
	StopGrace time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// BeforeRecordJob, when set, is called after Salesforce created a job
	// and before its id is written to the manifest. It is a test hook:
	// tests stop the process or fill the disk at that moment. Leave it nil.
	BeforeRecordJob func(batch int, jobID string)
}

// Runner runs the steps of one run. Create it with Prepare; it holds the
// run's lock until Close.
type Runner struct {
	opts     Options
	settings *Settings
	conns    *Connections
	store    *RunStore
	runID    string
	logsDir  string // <LogsDir>/<run-id>
	report   Reporter
	client   *salesforce.Client
	started  time.Time
	resumed  bool
	// processedBefore is what Salesforce had processed for the run before
	// this Runner: the rate in the summary counts this invocation's only.
	processedBefore int64
	// window bounds the jobs in flight in the org (jobWindow); nil until
	// the first upload of this process.
	windowMu sync.Mutex
	window   *salesforce.Window
	// collector fetches results while run uploads; nil otherwise. Set
	// and cleared by extractAndUpload around the upload.
	collector *collector
	// stream is the running load's follow-up stream (nil when none); read
	// by the loader's callbacks.
	stream atomic.Pointer[followStream]
	// src is the source database, opened by openSource (nil until then).
	src *extract.Source
	// wroteHere holds the indexes of the batches this process extracted
	// (int keys): their files need no second reading to check their hash.
	wroteHere sync.Map

	warnMu   sync.Mutex
	warnings []string // guarded by warnMu

	failMu    sync.Mutex
	failClass map[int]salesforce.Class // guarded by failMu: how each batch's last load attempt failed
	recordErr error                    // guarded by failMu: the first failure to record a job; the run stops
}

// Prepare resolves settings and connections and opens (or creates) the
// run's manifest. It makes no call to Salesforce: every configuration
// problem is reported here as a *ConfigError.
func Prepare(opts Options) (*Runner, error) {
	if opts.WorkDir == "" {
		opts.WorkDir = "."
	}
	if opts.LogsDir == "" {
		opts.LogsDir = filepath.Join("salesforce", "logs")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 20 * time.Second
	}
	in := opts.Inputs
	var prev *Manifest
	if opts.RunID != "" {
		if err := ValidateRunID(opts.RunID); err != nil {
			return nil, err
		}
		if ManifestExists(opts.WorkDir, opts.RunID) {
			m, err := ReadManifest(opts.WorkDir, opts.RunID)
			if err != nil {
				return nil, err
			}
			prev = m
			in.Resume = m
		}
	}
	s, err := ResolveSettings(in)
	var ce *ConfigError
	if opts.RunID != "" && prev == nil && errors.As(err, &ce) && ce.Setting == "table" && ce.Value == "" {
		// Most likely a resume with a mistyped id or another --work-dir.
		return nil, &ConfigError{Setting: "--run-id", Value: opts.RunID, Source: "flag --run-id",
			Problem: fmt.Sprintf("no run with this id under --work-dir %s (%s does not exist), and no --table to start one",
				opts.WorkDir, filepath.Join(RunDir(opts.WorkDir, opts.RunID), "manifest.json")),
			Fix: "to resume, pass the run id and --work-dir the run started with; to start a new run with this id, add --table NAME"}
	}
	if err != nil {
		return nil, err
	}
	// Said at once: a warning (an unknown run config key, say) is most
	// useful exactly when something below stops the run.
	if opts.Reporter != nil {
		for _, w := range s.Warnings {
			opts.Reporter.Report(Event{Kind: EventWarning, Message: w})
		}
	}
	conns, err := ResolveConnections(in.Getenv, s)
	if err != nil {
		return nil, err
	}
	runID := opts.RunID
	if runID == "" {
		// A new run never takes over an existing one: runs started within
		// the same second get -2, -3, ...
		base := NewRunID(s.Table, opts.Now())
		runID = base
		for n := 2; ManifestExists(opts.WorkDir, runID) || dirExists(RunDir(opts.WorkDir, runID)); n++ {
			runID = fmt.Sprintf("%s-%d", base, n)
		}
	}
	var store *RunStore
	if opts.Batch != 0 {
		if opts.RunID == "" {
			return nil, &ConfigError{Setting: "--batch", Value: fmt.Sprint(opts.Batch), Source: "flag --batch",
				Problem: "a mapped upload needs the run it belongs to", Fix: "pass --run-id, the same as the extract step's"}
		}
		store, err = OpenRunBatch(opts.WorkDir, runID, opts.Batch)
	} else {
		store, err = OpenRun(opts.WorkDir, runID, func(m *Manifest) {
			m.Table = s.Table
			m.Settings = s.Sources
			m.TableHash = s.TableConfig.Hash()
			m.Tracker = TrackerState{Object: s.Tracker.SFObject, Ref: s.StatusRef}
		})
	}
	if err != nil {
		return nil, err
	}
	r := &Runner{opts: opts, settings: s, conns: conns, store: store, runID: runID,
		logsDir: filepath.Join(opts.LogsDir, RunDirName(runID)), report: opts.Reporter, started: opts.Now(), resumed: prev != nil,
		processedBefore: store.ownSnapshot().Totals().Processed}
	if r.report == nil {
		r.report = nopReporter{}
	}
	r.warnMu.Lock()
	r.warnings = append(r.warnings, s.Warnings...) // reported above; kept for the summary
	r.warnMu.Unlock()
	if r.resumed {
		// Under the run's lock (a mapped upload: its batch's lock): nothing
		// else writes these files now.
		if n := len(r.cleanTemp()); n > 0 {
			r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("removed %d temporary files an interrupted attempt left", n)})
		}
	}
	// Settings that may change between attempts (parallel) are recorded as
	// the latest attempt used them.
	if err := store.Update(func(m *Manifest) error {
		for k, v := range s.Sources {
			m.Settings[k] = v
		}
		// Identical once batches exist (checked by ResolveSettings).
		m.Table, m.TableHash, m.Tracker.Ref = s.Table, s.TableConfig.Hash(), s.StatusRef
		return nil
	}); err != nil {
		store.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the source database and releases the run's lock.
func (r *Runner) Close() error {
	if r.src != nil {
		r.src.Close() //nolint:errcheck // read-only source: nothing to lose
		r.src = nil
	}
	return r.store.Close()
}

// openSource opens the table's source database once per Runner. A source
// that cannot be opened is reported naming its connection and variable.
func (r *Runner) openSource(ctx context.Context) (*extract.Source, error) {
	if r.src != nil {
		return r.src, nil
	}
	conn := r.conns.Source
	src, err := extract.Open(ctx, conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// extract's message starts "extract: open <conn>:"; this one names
		// the connection and its variable itself.
		detail := err
		if inner := errors.Unwrap(err); inner != nil {
			detail = inner
		}
		env := airflow.EnvName(airflow.ConnEnvPrefix, conn.ID)
		if strings.EqualFold(conn.Type, "sqlite") {
			return nil, &ConfigError{Setting: "connection " + conn.ID, Source: env, Err: detail,
				Problem: "cannot open the source database: " + detail.Error(),
				Fix:     `point it at an existing SQLite file by absolute path, e.g. sqlite:////data/erp.db or {"conn_type": "sqlite", "host": "/data/erp.db"}`}
		}
		var se *extract.SettingsError
		if errors.As(err, &se) {
			return nil, &ConfigError{Setting: "connection " + conn.ID, Source: env, Err: detail,
				Problem: "does not describe a database: " + detail.Error(),
				Fix:     "correct the connection as the message says (docs/tables-config.md shows each source's forms)"}
		}
		// A network database may be down for a moment: not necessarily a
		// configuration problem, so not exit code 2.
		return nil, &fixError{err: fmt.Errorf("connection %s (from %s): cannot open the source database: %w", conn.ID, env, detail),
			fix: "check the connection's host, port, database and credentials, and that the database accepts connections from this machine"}
	}
	r.src = src
	return src, nil
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// RunID is the run's id.
func (r *Runner) RunID() string { return r.runID }

// Resumed reports whether the run existed before this Runner opened it.
func (r *Runner) Resumed() bool { return r.resumed }

// Settings are the resolved settings.
func (r *Runner) Settings() *Settings { return r.settings }

// ManifestPath is the run's manifest file.
func (r *Runner) ManifestPath() string { return filepath.Join(r.store.Dir(), "manifest.json") }

// LogsDir is where the run's results and summary go.
func (r *Runner) LogsDir() string { return r.logsDir }

// Manifest returns a copy of the run's current manifest.
func (r *Runner) Manifest() *Manifest { return r.store.Snapshot() }

func (r *Runner) warn(msg string) {
	r.warnMu.Lock()
	r.warnings = append(r.warnings, msg)
	r.warnMu.Unlock()
	r.report.Report(Event{Kind: EventWarning, Message: msg})
}

// newClient builds the Salesforce client (no network call).
func (r *Runner) newClient() (*salesforce.Client, error) {
	if r.client != nil {
		return r.client, nil
	}
	c, err := newSalesforceClient(r.conns, r.settings.Tracker, r.opts.PollInterval, r.opts.PollMaxInterval, r.opts.HTTPClient, r.opts.Logger)
	if err != nil {
		return nil, err
	}
	r.client = c
	return c, nil
}

// stepFunc runs one step's work.
type stepFunc func(ctx context.Context) error

// step records a step's start and end in the manifest around fn.
func (r *Runner) step(ctx context.Context, name string, fn stepFunc) error {
	now := r.opts.Now().UTC()
	if err := r.store.Update(func(m *Manifest) error {
		s := m.Step(name)
		s.State, s.StartedAt, s.FinishedAt, s.Error = StateRunning, now, nil, ""
		s.Attempts++
		return nil
	}); err != nil {
		return err
	}
	r.report.Report(Event{Kind: EventStepStarted, Step: name})
	err := fn(ctx)
	switch {
	case err == nil || ctx.Err() == nil || errors.Is(err, ErrSiblingFailed):
	case interrupted(ctx):
		// Stopped from outside (Ctrl-C, SIGTERM): what the step was doing
		// when its context ended ("read row 23184: context canceled") says
		// nothing the user needs, unless the error is already the step's
		// own account of the stop.
		if !errors.Is(err, ErrInterrupted) {
			err = &interruptedError{step: name, err: err}
		}
	default:
		// The step ran alongside another that failed first; that failure
		// is the run's error, this one only its consequence.
		err = stopped(ctx, name)
	}
	end := r.opts.Now().UTC()
	werr := r.store.Update(func(m *Manifest) error {
		s := m.Step(name)
		s.FinishedAt = &end
		var pe *PartialError
		switch {
		case err == nil || errors.As(err, &pe):
			s.State = StateDone
		default:
			s.State, s.Error = StateFailed, err.Error()
		}
		return nil
	})
	if err == nil {
		err = werr
	}
	r.report.Report(Event{Kind: EventStepDone, Step: name, Err: err})
	return err
}

// Run runs every step: authenticate, then extract and upload overlapped
// (a batch is uploaded as soon as its file is written), collect-results and
// update-status. Steps already done in the manifest are not repeated. The
// returned Summary is valid even with an error, except for configuration
// errors (reported by Prepare).
func (r *Runner) Run(ctx context.Context) (*Summary, error) {
	err := r.run(ctx)
	return r.finish(err)
}

func (r *Runner) run(ctx context.Context) error {
	m := r.store.Snapshot()
	if m.StepDone(StepUpdateStatus) {
		r.report.Report(Event{Kind: EventInfo, Message: "run " + r.runID + " is already complete; nothing to do"})
		return r.outcome()
	}
	// Local problems first, before anything is sent to Salesforce.
	if err := r.checkLogsDir(); err != nil {
		return err
	}
	if !m.Extract.Done {
		if _, err := r.openSource(ctx); err != nil {
			return err
		}
	}
	if err := r.step(ctx, StepAuthenticate, r.retrying(StepAuthenticate, r.authenticate)); err != nil {
		return err
	}
	if !m.StepDone(StepUpload) {
		if err := r.extractAndUpload(ctx); err != nil {
			return err
		}
	}
	if err := r.step(ctx, StepCollectResults, r.retrying(StepCollectResults, r.collectResults)); err != nil {
		return err
	}
	return r.step(ctx, StepUpdateStatus, r.retrying(StepUpdateStatus, r.updateStatus))
}

// Task runs one step against the run's manifest (`sfmigrate task STEP`).
func (r *Runner) Task(ctx context.Context, name string) (*Summary, error) {
	err := r.task(ctx, name)
	return r.finish(err)
}

func (r *Runner) task(ctx context.Context, name string) error {
	var needs, why string
	var fn stepFunc
	saves := false // the step writes under the logs dir
	switch name {
	case StepAuthenticate:
		return r.step(ctx, name, r.retrying(name, r.authenticate))
	case StepExtract:
		return r.step(ctx, name, func(ctx context.Context) error { return r.extract(ctx, nil) })
	case StepUpload:
		needs, why, fn = StepExtract, "every batch file must be written before they are uploaded", r.uploadAll
	case StepCollectResults:
		needs, why, fn, saves = StepUpload, "results exist only once every job has finished", r.retrying(name, r.collectResults), true
	case StepUpdateStatus:
		needs, why, fn, saves = StepCollectResults, "the status depends on the collected results", r.retrying(name, r.updateStatus), true
	default:
		return &ConfigError{Setting: "STEP", Value: name, Source: "command line", Problem: "unknown step", Fix: "use one of " + strings.Join(Steps, ", ")}
	}
	if m := r.store.Snapshot(); !m.StepDone(needs) && !(needs == StepUpload && uploadSettled(m)) {
		// Mapped uploads mark the step done when the last one ends; a run
		// without rows, whose mapped uploads were all skipped, has none
		// to do so, and nothing to upload either.
		return &OrderError{Step: name, Needs: needs, RunID: r.runID, What: why}
	}
	if saves {
		if err := r.checkLogsDir(); err != nil {
			return err
		}
	}
	if r.store.MappedBatch() != 0 {
		// Not recorded as the step's start and end: many processes run it
		// at once, one batch each (mapped.go).
		if err := r.checkMappedBatch(); err != nil {
			return err
		}
		if _, err := r.authenticateOnly(ctx); err != nil {
			return err
		}
		return r.uploadMapped(ctx)
	}
	return r.step(ctx, name, func(ctx context.Context) error {
		if _, err := r.authenticateOnly(ctx); err != nil {
			return err
		}
		return fn(ctx)
	})
}

// OrderError reports a task run before the step it depends on.
type OrderError struct{ Step, Needs, RunID, What string }

func (e *OrderError) Error() string {
	return fmt.Sprintf("step %s cannot run yet: %s has not finished for run %s (%s); run 'sfmigrate task %s --run-id %s' first",
		e.Step, e.Needs, e.RunID, e.What, e.Needs, e.RunID)
}

// ConfigError marks an out-of-order task as a usage problem (exit code 2).
func (e *OrderError) ConfigError() bool { return true }

// outcome turns the manifest's final state into the run's error: nil when
// every record succeeded, a *PartialError otherwise.
func (r *Runner) outcome() error {
	m := r.store.Snapshot()
	t := m.Totals()
	if m.Tracker.Status == StatusUploaded || noRows(m) {
		return nil
	}
	return &PartialError{Failed: t.Failed, Unprocessed: t.Unprocessed, Missing: missing(m), Failures: t.JobsFailed, Rejected: t.Rejected, Status: m.Tracker.Status}
}

func missing(m *Manifest) int64 {
	t := m.Totals()
	// Every row has one final outcome (Totals); the rest has none yet.
	if d := t.Rows - t.Successful - t.Failed - t.Unprocessed - t.Rejected; d > 0 {
		return d
	}
	return 0
}

// Tracker statuses written by update-status (the tracker's picklist values).
const (
	StatusUploaded   = "Uploaded"
	StatusInProgress = "In Progress"
)

// authenticateOnly signs in (each process does, the token is never stored).
func (r *Runner) authenticateOnly(ctx context.Context) (salesforce.Session, error) {
	c, err := r.newClient()
	if err != nil {
		return salesforce.Session{}, err
	}
	sess, err := c.Authenticate(ctx)
	if err != nil {
		return sess, r.loginError(ctx, err)
	}
	return sess, nil
}

// loginError says what to do about a failed login. A refusal by the token
// endpoint is a configuration problem (exit 2): the client id, secret or
// app settings must change; so is a login host whose name does not exist
// (the client fails that at once, wrapping the *net.DNSError), and an
// https host that answers in plain HTTP. A login
// that got no answer names the host it tried (the client's message does)
// and what to check.
func (r *Runner) loginError(ctx context.Context, err error) error {
	return loginError(ctx, err, r.conns.LoginURL)
}

// loginError is Runner.loginError for a client built outside a run.
func loginError(ctx context.Context, err error, loginURL string) error {
	if ctx.Err() != nil {
		return err
	}
	var ae *salesforce.AuthError
	if errors.As(err, &ae) {
		// A refusal (not a 5xx or a rate limit) is the client's
		// ClassConfig: the client id, secret or app settings must change.
		return &fixError{err: err, config: salesforce.Classify(err) == salesforce.ClassConfig}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &ConfigError{Setting: "connection " + SalesforceConnID + " host", Value: loginURL, Source: salesforceEnv,
			Problem: fmt.Sprintf("the host name %s does not exist (DNS: no such host)", dnsErr.Name),
			Fix:     "set host to your org's My Domain URL as Setup > My Domain shows it, e.g. https://MyDomain.my.salesforce.com"}
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		// The host answers plain HTTP on an https URL: the connection's
		// scheme is wrong, retrying cannot help.
		return &ConfigError{Setting: "connection " + SalesforceConnID + " host", Value: loginURL, Source: salesforceEnv,
			Problem: "the server there speaks plain HTTP, not HTTPS",
			Fix:     "write the host with http:// if it really is a plain-HTTP endpoint (such as sfmigrate emulator), else correct the port"}
	}
	return &fixError{err: err, fix: "check the host of " + salesforceEnv + " (scheme http or https, name, port) and that this machine can reach it (proxy, firewall)"}
}

// salesforceEnv is the variable that holds the salesforce_api connection.
var salesforceEnv = airflow.EnvName(airflow.ConnEnvPrefix, SalesforceConnID)

// checkLogsDir makes sure the run's results can be saved before anything
// is sent: a logs dir that cannot be written would otherwise only fail
// after every record was loaded.
func (r *Runner) checkLogsDir() error {
	src := "flag --logs-dir"
	if r.opts.LogsDir == filepath.Join("salesforce", "logs") {
		src = "default (--logs-dir DIR changes it)"
	}
	bad := func(err error) error {
		return &ConfigError{Setting: "--logs-dir", Value: r.opts.LogsDir, Source: src,
			Problem: "cannot hold the run's results: " + err.Error(), Fix: "pass a --logs-dir this user can create and write"}
	}
	if err := os.MkdirAll(r.logsDir, 0o755); err != nil {
		return bad(err)
	}
	if err := safefile.RefuseDirLink(r.logsDir); err != nil {
		return err
	}
	f, err := os.CreateTemp(r.logsDir, ".write-check-*")
	if err != nil {
		return bad(err)
	}
	name := f.Name()
	cerr := f.Close()
	if err := os.Remove(name); err != nil {
		return bad(err)
	}
	if cerr != nil {
		return bad(cerr)
	}
	return nil
}

// authenticate is the authenticate step: sign in, then make sure the
// tracker record exists (status "In Progress") unless the tables config
// says the records are created elsewhere.
func (r *Runner) authenticate(ctx context.Context) error {
	sess, err := r.authenticateOnly(ctx)
	if err != nil {
		return err
	}
	r.report.Report(Event{Kind: EventInfo, Message: "authenticated: instance " + sess.InstanceURL})
	// Every check that can fail on the configuration runs before the
	// tracker is written (preflight.go).
	if err := r.preflight(ctx); err != nil {
		return err
	}
	m := r.store.Snapshot()
	if m.Tracker.Status != "" {
		return nil
	}
	tr := r.settings.Tracker
	if !tr.CreateRecord() {
		// The record must exist already: prove it now, before any data
		// moves, with the same update-only call update-status makes.
		err := r.client.UpdateStatus(ctx, r.settings.StatusRef, StatusInProgress)
		if errors.Is(err, salesforce.ErrTrackerRecordNotFound) {
			return &ConfigError{Setting: "status_ref", Value: r.settings.StatusRef, Source: r.settings.Sources["status_ref"].Source,
				Problem: fmt.Sprintf("no %s record has %s = %q, and status_tracker.create is false", tr.SFObject, tr.ExternalIDField, r.settings.StatusRef),
				Fix:     "create that tracker record first, or set status_tracker.create: true to let sfmigrate create it"}
		}
		if err != nil {
			return fmt.Errorf("tracker status %q: %w", StatusInProgress, err) // the client's message names the record
		}
		return r.store.Update(func(m *Manifest) error {
			m.Tracker.Status, m.Tracker.UpdatedAt = StatusInProgress, r.opts.Now().UTC()
			return nil
		})
	}
	fields := map[string]any{}
	if f := r.settings.Tracker.RunIDField; f != "" {
		fields[f] = r.runID
	}
	if f := r.settings.Tracker.MessageField; f != "" {
		fields[f] = "sfmigrate run " + r.runID + " started"
	}
	if err := r.client.UpsertStatus(ctx, r.settings.StatusRef, StatusInProgress, fields); err != nil {
		return fmt.Errorf("tracker status %q: %w", StatusInProgress, err) // the client's message names the record
	}
	return r.store.Update(func(m *Manifest) error {
		m.Tracker.Status, m.Tracker.UpdatedAt = StatusInProgress, r.opts.Now().UTC()
		return nil
	})
}

// sumRows returns total rows in the manifest's extracted batches.
func sumRows(m *Manifest) int64 {
	var n int64
	for _, b := range m.Batches {
		if !b.IsFollowUp() {
			n += b.Rows
		}
	}
	return n
}

func (r *Runner) batchPath(b *BatchState) string { return filepath.Join(r.store.Dir(), b.File) }

// describeTarget compares the field mapping with the target object's
// describe before any data is sent: a misspelt field would otherwise fail
// every job. Problems are ConfigErrors (exit 2): nothing was loaded. It
// writes nothing; the types it returns go into the manifest.
func (r *Runner) describeTarget(ctx context.Context) (*TargetState, error) {
	s := r.settings
	tc := s.TableConfig
	cache := map[string]*salesforce.SObjectDescribe{}
	// describe reads an object's describe; setting and src say where its
	// name came from, for the message when the org has no such object.
	describe := func(object, setting, src string) (*salesforce.SObjectDescribe, error) {
		if d, ok := cache[object]; ok {
			return d, nil
		}
		d, err := r.client.Describe(ctx, object)
		if err != nil {
			var apiErr *salesforce.APIError
			if errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusBadRequest) {
				return nil, &ConfigError{Setting: setting, Value: object, Source: src,
					Problem: fmt.Sprintf("the org has no object with this API name, or the run-as user cannot see it (describe answered %d %s)", apiErr.Status, apiErr.Code()),
					Fix:     "use the object's API name as Setup > Object Manager shows it, e.g. Product2 or Product_Price__c"}
			}
			return nil, fmt.Errorf("describe %s: %w", object, err)
		}
		cache[object] = d
		return d, nil
	}
	d, err := describe(s.SFObject, "sf_object", s.Sources["sf_object"].Source)
	if err != nil {
		return nil, err
	}
	bad := func(f Field, problem, fix string) error {
		return &ConfigError{Setting: "tables." + s.Table + ".fields." + f.Column, Value: f.Name, Source: r.tablesSource(),
			Problem: problem, Fix: fix}
	}
	target := &TargetState{Object: s.SFObject, DescribedAt: r.opts.Now().UTC()}
	for _, f := range tc.Fields {
		rel, name, isRel := strings.Cut(f.Name, ".")
		if !isRel {
			fd := d.Field(f.Name)
			if fd == nil {
				return nil, bad(f, "the field does not exist on "+s.SFObject,
					withGuess(Suggest(f.Name, fieldNames(d)), "use a field API name of "+s.SFObject+" (custom fields end in __c)"))
			}
			if fd.Calculated || fd.AutoNumber || (!fd.Createable && !fd.Updateable) {
				return nil, bad(f, "the field is read-only on "+s.SFObject+" (formula, auto-number or system field)", "remove it from the mapping")
			}
			target.Fields = append(target.Fields, TargetField{Column: f.Column, Name: f.Name, Type: fd.Type, Length: textLength(fd)})
			continue
		}
		var lookup *salesforce.FieldDescribe
		for i := range d.Fields {
			if strings.EqualFold(d.Fields[i].RelationshipName, rel) {
				lookup = &d.Fields[i]
			}
		}
		if lookup == nil || len(lookup.ReferenceTo) == 0 {
			return nil, bad(f, "no lookup of "+s.SFObject+" has the relationship name "+rel,
				"use the lookup's relationship name (Parent__c -> Parent__r) followed by the parent's external id field")
		}
		pd, err := describe(lookup.ReferenceTo[0], "tables."+s.Table+".fields."+f.Column, "describe of "+s.SFObject+"."+lookup.Name)
		if err != nil {
			return nil, err
		}
		pf := pd.Field(name)
		if pf == nil || (!pf.ExternalID && !pf.IDLookup) {
			return nil, bad(f, fmt.Sprintf("%s.%s is not an external id (or idLookup) field, so it cannot identify the parent", lookup.ReferenceTo[0], name),
				"name an external id field of "+lookup.ReferenceTo[0])
		}
		target.Fields = append(target.Fields, TargetField{Column: f.Column, Name: f.Name, Type: pf.Type, Length: textLength(pf), Parent: lookup.ReferenceTo[0]})
	}
	if s.Operation == "upsert" {
		fd := d.Field(s.ExternalIDField)
		if fd == nil || (!fd.ExternalID && !fd.IDLookup) {
			return nil, &ConfigError{Setting: "external_id_field", Value: s.ExternalIDField, Source: s.Sources["external_id_field"].Source,
				Problem: "is not an external id field of " + s.SFObject, Fix: "name a field marked External ID (or an idLookup field such as Id)"}
		}
	}
	if err := r.checkTracker(describe); err != nil {
		return nil, err
	}
	return target, nil
}

// checkTracker makes sure the status tracker's object and fields exist
// before anything is loaded: otherwise every record could be loaded and
// the run still fail at update-status.
func (r *Runner) checkTracker(describe func(object, setting, src string) (*salesforce.SObjectDescribe, error)) error {
	tr := r.settings.Tracker
	src := func(value, def string) string {
		if value == def {
			return "default (status_tracker in " + r.tablesSource() + " changes it)"
		}
		return r.tablesSource() + ", status_tracker"
	}
	d, err := describe(tr.SFObject, "status_tracker.sf_object", src(tr.SFObject, "Migration_Status__c"))
	if err != nil {
		return err
	}
	for _, f := range []struct{ key, name, def string }{
		{"external_id_field", tr.ExternalIDField, "External_Ref__c"},
		{"status_field", tr.StatusField, "Status__c"},
		{"run_id_field", tr.RunIDField, ""},
		{"records_total_field", tr.RecordsTotalField, ""},
		{"records_failed_field", tr.RecordsFailedField, ""},
		{"message_field", tr.MessageField, ""},
	} {
		if f.name == "" {
			continue
		}
		fd := d.Field(f.name)
		problem := ""
		switch {
		case fd == nil:
			problem = "is not a field of " + tr.SFObject
		case f.key == "external_id_field" && !fd.ExternalID && !fd.IDLookup:
			problem = "is not an external id field of " + tr.SFObject + ", so it cannot find the tracker record"
		}
		if problem != "" {
			return &ConfigError{Setting: "status_tracker." + f.key, Value: f.name, Source: src(f.name, f.def), Problem: problem,
				Fix: withGuess(Suggest(f.name, fieldNames(d)), "name a field of "+tr.SFObject+", or create it")}
		}
	}
	return nil
}

// fieldNames lists the API names of an object's fields.
func fieldNames(d *salesforce.SObjectDescribe) []string {
	names := make([]string, len(d.Fields))
	for i, f := range d.Fields {
		names[i] = f.Name
	}
	return names
}

// textLength is the character limit describe gives a field whose values
// are text in the file; other types (numbers, dates, booleans) report 0 or
// a length that does not bound their text form.
func textLength(fd *salesforce.FieldDescribe) int {
	switch strings.ToLower(fd.Type) {
	case "string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox",
		"encryptedstring", "id", "reference":
		return fd.Length
	}
	return 0
}

// tablesSource names the tables config for messages.
func (r *Runner) tablesSource() string {
	if p := r.opts.Inputs.Tables; p != nil && p.Path != "" {
		return "tables config " + p.Path
	}
	return "tables config"
}
