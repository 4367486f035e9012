package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// Step states in plan.json.
const (
	StatePending     = "pending"     // not started yet
	StateRunning     = "running"     // started (a kill leaves it so; the rerun resumes it)
	StateSucceeded   = "succeeded"   // every record succeeded
	StatePartial     = "partial"     // finished, some records failed or were unprocessed
	StateFailed      = "failed"      // stopped by an error; the rerun resumes it
	StateInterrupted = "interrupted" // stopped by Ctrl-C or SIGTERM; the rerun resumes it
	StateSkipped     = "skipped"     // a step it waits for has failed rows (on_parent_failure: stop)
	StateWaiting     = "waiting"     // a step it waits for did not finish; the rerun may start it
)

// Exit codes of a plan, as the CLI defines them for single runs.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitPartial = 3
)

// StepState is what plan.json records about one step.
type StepState struct {
	State      string     `json:"state"`
	Reason     string     `json:"reason,omitempty"`
	Error      string     `json:"error,omitempty"`
	ExitCode   int        `json:"exit_code"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Attempts   int        `json:"attempts"`
	// Totals of the step's sub-run when it last ended.
	Rows        int64 `json:"rows"`
	Successful  int64 `json:"successful"`
	Failed      int64 `json:"failed"`
	Unprocessed int64 `json:"unprocessed"`
}

// State is plan.json: the plan and each step's state.
type State struct {
	Version      int                   `json:"version"`
	RunID        string                `json:"run_id"`
	CreatedAt    time.Time             `json:"created_at"`
	UpdatedAt    time.Time             `json:"updated_at"`
	TablesConfig string                `json:"tables_config"`
	StatusRef    string                `json:"plan_status_ref"`
	Plan         *Plan                 `json:"plan"`
	Steps        map[string]*StepState `json:"steps"`
}

// StateVersion is the plan.json format.
const StateVersion = 1

// StatePath is <work-dir>/runs/<run-id>/plan.json.
func StatePath(workDir, runID string) string {
	return filepath.Join(pipeline.RunDir(workDir, runID), "plan.json")
}

// Exists reports whether runID under workDir is a plan run.
func Exists(workDir, runID string) bool {
	_, err := os.Stat(StatePath(workDir, runID))
	return err == nil
}

// ReadState reads a plan run's plan.json.
func ReadState(workDir, runID string) (*State, error) {
	data, err := os.ReadFile(StatePath(workDir, runID))
	if err != nil {
		return nil, fmt.Errorf("read plan of run %s: %w", runID, err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("read plan of run %s: %s is damaged: %w", runID, StatePath(workDir, runID), err)
	}
	if st.Plan == nil || st.Steps == nil {
		return nil, fmt.Errorf("read plan of run %s: %s holds no plan", runID, StatePath(workDir, runID))
	}
	return &st, nil
}

// Options configure Execute.
type Options struct {
	WorkDir, LogsDir string
	// RunID is the plan's run id: an existing plan run is continued, a new
	// one started ("" names one PLAN-<UTC time>).
	RunID string
	// Tables selects the tables of a new plan (empty: all of them). A
	// continued plan keeps its tables.
	Tables []string
	Config *pipeline.TablesConfig
	// Conf is the run config (batch_size, parallel, max_jobs_in_flight,
	// record_retries only:
	// the other settings belong to each table's entry).
	Conf, ConfSource string
	Getenv           func(string) string
	// Reporter returns the progress reporter of a step (nil: none).
	Reporter func(step string) pipeline.Reporter
	// Log receives the plan's own progress lines (nil: none).
	Log          func(format string, a ...any)
	Logger       *slog.Logger
	HTTPClient   *http.Client
	PollInterval time.Duration
	// PollMaxInterval and MaxBatchBytes are passed on to every step
	// (pipeline.Options; 0: their defaults).
	PollMaxInterval time.Duration
	MaxBatchBytes   int64
	StopGrace       time.Duration
	KeepBatches     bool
	Now             func() time.Time
}

// StepSummary is one row of a plan's summary.
type StepSummary struct {
	ID          string `json:"id"`
	Table       string `json:"table"`
	Pass        int    `json:"pass"`
	Object      string `json:"sf_object"`
	Wave        int    `json:"wave"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
	ExitCode    int    `json:"exit_code"`
	Rows        int64  `json:"rows"`
	Successful  int64  `json:"successful"`
	Failed      int64  `json:"failed"`
	Unprocessed int64  `json:"unprocessed"`
	RunID       string `json:"run_id"`
	Manifest    string `json:"manifest"`
	ResultsDir  string `json:"results_dir"`
}

// Summary describes a plan run: one row per step.
type Summary struct {
	RunID    string        `json:"run_id"`
	Plan     bool          `json:"plan"` // always true: tells a plan's summary from a table's
	Outcome  string        `json:"outcome"`
	ExitCode int           `json:"exit_code"`
	Steps    []StepSummary `json:"steps"`
	PlanFile string        `json:"plan_file"`
	Tracker  string        `json:"tracker_ref"`
	Seconds  float64       `json:"seconds"`
	Error    string        `json:"error,omitempty"`
}

// Error is a plan's overall failure: its exit code is the worst of its
// steps' (2 > 1 > 3 > 0).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// PartialFailure marks exit code 3.
func (e *Error) PartialFailure() bool { return e.Code == exitPartial }

// ConfigError marks exit code 2.
func (e *Error) ConfigError() bool { return e.Code == exitUsage }

// exitOf maps a step's error to its exit code, as the CLI does.
func exitOf(err error) int {
	if err == nil {
		return exitOK
	}
	var pe interface{ PartialFailure() bool }
	if errors.As(err, &pe) && pe.PartialFailure() {
		return exitPartial
	}
	var ce interface{ ConfigError() bool }
	if errors.As(err, &ce) && ce.ConfigError() {
		return exitUsage
	}
	return exitFailure
}

// worse reports whether exit code a is worse than b (2 > 1 > 3 > 0).
func worse(a, b int) bool {
	rank := map[int]int{exitOK: 0, exitPartial: 1, exitFailure: 2, exitUsage: 3}
	return rank[a] > rank[b]
}

// planConfKeys are the run-config keys a plan accepts.
var planConfKeys = []string{"batch_size", "parallel", "max_jobs_in_flight", "record_retries"}

// executor runs one plan.
type executor struct {
	opts     Options
	parallel int // the plan's parallel: a step uploads at most this many files at once
	dir      string
	state    *State
	org      *pipeline.Org
	conf     map[string]json.RawMessage
	logf     func(format string, a ...any)
	mu       sync.Mutex // guards state and plan.json
	trackMu  sync.Mutex
}

// Describe reads the describe of every target object of the named tables
// (all when names is empty) and reduces it to what Build needs. Every
// mapped plain field must exist on its object: a misspelt field in the
// last table would otherwise stop the plan after the first tables loaded.
func Describe(ctx context.Context, org *pipeline.Org, cfg *pipeline.TablesConfig, names []string) (map[string]*Object, error) {
	if len(names) == 0 {
		names = cfg.TableNames()
	}
	objects := map[string]*Object{}
	described := map[string]*salesforce.SObjectDescribe{}
	for _, n := range names {
		tc, ok := cfg.Tables[n]
		if !ok {
			continue // Build names the unknown table
		}
		key := strings.ToLower(tc.SFObject)
		d, ok := described[key]
		if !ok {
			var err error
			d, err = org.Describe(ctx, tc.SFObject, "tables."+n+".sf_object", "tables config "+cfg.Path)
			if err != nil {
				return nil, err
			}
			described[key] = d
			o := &Object{Name: d.Name}
			for _, f := range d.Fields {
				if len(f.ReferenceTo) == 0 || f.RelationshipName == "" {
					continue
				}
				o.Lookups = append(o.Lookups, Lookup{Field: f.Name, Relationship: f.RelationshipName, ReferenceTo: f.ReferenceTo,
					Required: f.Createable && !f.Nillable && !f.DefaultedOnCreate})
			}
			objects[key] = o
		}
		for _, f := range tc.Fields {
			if strings.Contains(f.Name, ".") {
				continue // the table's authenticate step checks lookups and their parents
			}
			if d.Field(f.Name) == nil {
				return nil, &pipeline.ConfigError{Setting: "tables." + n + ".fields." + f.Column, Value: f.Name, Source: "tables config " + cfg.Path,
					Problem: "the field does not exist on " + tc.SFObject, Fix: "use a field API name of " + tc.SFObject + " (custom fields end in __c)"}
			}
		}
	}
	return objects, nil
}

// Execute runs (or continues) a plan. The returned Summary is valid with an
// error too, except when the plan could not be made (configuration errors,
// a refused cycle): then nothing was sent to Salesforce.
func Execute(ctx context.Context, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WorkDir == "" {
		opts.WorkDir = "."
	}
	if opts.LogsDir == "" {
		opts.LogsDir = filepath.Join("salesforce", "logs")
	}
	e := &executor{opts: opts, logf: opts.Log}
	if e.logf == nil {
		e.logf = func(string, ...any) {}
	}
	if err := e.parseConf(); err != nil {
		return nil, err
	}
	resumed := opts.RunID != "" && Exists(opts.WorkDir, opts.RunID)
	if opts.RunID == "" {
		base := pipeline.NewRunID("PLAN", opts.Now())
		opts.RunID = base
		for n := 2; dirExists(pipeline.RunDir(opts.WorkDir, opts.RunID)); n++ {
			opts.RunID = fmt.Sprintf("%s-%d", base, n)
		}
		e.opts.RunID = opts.RunID
	} else if err := pipeline.ValidateRunID(opts.RunID); err != nil {
		return nil, err
	}
	e.dir = pipeline.RunDir(opts.WorkDir, opts.RunID)
	if resumed {
		st, err := ReadState(opts.WorkDir, opts.RunID)
		if err != nil {
			return nil, err
		}
		if len(opts.Tables) > 0 && !sameSet(opts.Tables, st.Plan.Tables) {
			return nil, &pipeline.ConfigError{Setting: "--tables", Value: strings.Join(opts.Tables, ","), Source: "flag --tables",
				Problem: "plan run " + opts.RunID + " loads " + strings.Join(st.Plan.Tables, ",") + "; a plan run keeps its tables",
				Fix:     "leave --tables out to continue the run, or start a new plan run without --run-id"}
		}
		e.state = st
	} else if dirExists(e.dir) {
		return nil, &pipeline.ConfigError{Setting: "--run-id", Value: opts.RunID, Source: "flag --run-id",
			Problem: "a run with this id exists under --work-dir and is not a plan run", Fix: "pick another run id, or leave --run-id out"}
	}
	// Everything that can be checked without sending data is checked now.
	org, err := pipeline.OpenOrg(pipeline.Options{Inputs: pipeline.Inputs{Getenv: opts.Getenv, Tables: opts.Config},
		HTTPClient: opts.HTTPClient, Logger: opts.Logger, PollInterval: opts.PollInterval, PollMaxInterval: opts.PollMaxInterval, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	e.org = org
	if err := org.Authenticate(ctx); err != nil {
		return nil, err
	}
	if e.state == nil {
		objects, err := Describe(ctx, org, opts.Config, opts.Tables)
		if err != nil {
			return nil, err
		}
		p, err := Build(opts.Config, opts.Tables, objects)
		if err != nil {
			return nil, err
		}
		now := opts.Now().UTC()
		e.state = &State{Version: StateVersion, RunID: opts.RunID, CreatedAt: now, TablesConfig: opts.Config.Path,
			StatusRef: opts.Config.PlanRef(), Plan: p, Steps: map[string]*StepState{}}
		for _, s := range p.Steps {
			e.state.Steps[s.ID] = &StepState{State: StatePending}
		}
	}
	budget, err := e.preflight()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, &pipeline.ConfigError{Setting: "--work-dir", Value: opts.WorkDir, Source: "flag --work-dir",
			Problem: "cannot hold the plan run: " + err.Error(), Fix: "pass a --work-dir this user can create and write"}
	}
	lock, err := pipeline.LockDir(e.dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := e.save(); err != nil {
		return nil, err
	}
	if resumed {
		e.logf("resuming plan run %s (%s)", opts.RunID, StatePath(opts.WorkDir, opts.RunID))
	} else {
		e.logf("plan run %s: %d steps in %d waves (%s)", opts.RunID, len(e.state.Plan.Steps), len(e.state.Plan.Waves), StatePath(opts.WorkDir, opts.RunID))
	}
	if err := e.setTracker(ctx, pipeline.StatusInProgress); err != nil {
		return nil, err
	}
	runErr := e.schedule(ctx, budget)
	sum := e.summary(start)
	if runErr == nil && ctx.Err() == nil {
		status := pipeline.StatusInProgress
		if sum.ExitCode == exitOK {
			status = pipeline.StatusUploaded
		}
		if err := e.setTracker(ctx, status); err != nil {
			runErr = err
		}
	}
	if runErr != nil {
		sum.Outcome, sum.ExitCode, sum.Error = "failed", exitFailure, runErr.Error()
		if ctx.Err() != nil {
			sum.Outcome = "interrupted"
		}
		return sum, runErr
	}
	if sum.ExitCode != exitOK {
		return sum, &Error{Code: sum.ExitCode, Msg: sum.Error}
	}
	return sum, nil
}

// parseConf keeps the run config for the steps; keys that belong to a
// table's entry are refused.
func (e *executor) parseConf() error {
	e.conf = map[string]json.RawMessage{}
	if strings.TrimSpace(e.opts.Conf) == "" {
		return nil
	}
	src := "run config"
	if e.opts.ConfSource != "" {
		src = "run config (" + e.opts.ConfSource + ")"
	}
	if err := json.Unmarshal([]byte(e.opts.Conf), &e.conf); err != nil {
		return &pipeline.ConfigError{Setting: "run config", Source: src, Problem: "is not a JSON object: " + err.Error(),
			Fix: `pass a JSON object such as {"batch_size": 5000}`}
	}
	for k := range e.conf {
		ok := false
		for _, allowed := range planConfKeys {
			ok = ok || k == allowed
		}
		if !ok {
			return &pipeline.ConfigError{Setting: k, Source: src,
				Problem: "cannot be given for a plan: it belongs to each table's entry of the tables config",
				Fix:     "use only " + strings.Join(planConfKeys, ", ") + " in a plan's run config, and set the rest per table in the tables config"}
		}
	}
	return nil
}

// stepConf is the run config of one step: the plan's, with
// max_jobs_in_flight set to the step's share of the plan's jobs in flight
// and parallel (uploads at once) at most that share.
func (e *executor) stepConf(share int) string {
	c := map[string]any{}
	for k, v := range e.conf {
		c[k] = v
	}
	c["max_jobs_in_flight"] = share
	c["parallel"] = min(share, e.parallel)
	data, _ := json.Marshal(c) // numbers and raw JSON always marshal
	return string(data)
}

// preflight resolves every step's settings and connections (no network):
// a bad setting or a missing connection of the last table stops the plan
// before the first table sends anything. It returns the plan's budget of
// jobs in flight (max_jobs_in_flight), shared by the steps running at once,
// and notes its parallel.
func (e *executor) preflight() (int, error) {
	budget := 0
	for _, s := range e.state.Plan.Steps {
		in, err := e.inputs(&s, 1)
		if err != nil {
			return 0, err
		}
		in.Conf = e.rawConf() // the plan's settings, before they are split
		settings, err := pipeline.ResolveSettings(in)
		if err != nil {
			return 0, err
		}
		if _, err := pipeline.ResolveConnections(e.opts.Getenv, settings); err != nil {
			return 0, err
		}
		budget, e.parallel = settings.MaxJobsInFlight, settings.Parallel
	}
	return budget, nil
}

// rawConf is the plan's run config as given.
func (e *executor) rawConf() string {
	data, _ := json.Marshal(e.conf)
	return string(data)
}

// inputs are the settings inputs of a step.
func (e *executor) inputs(s *Step, parallel int) (pipeline.Inputs, error) {
	tc, err := e.state.Plan.TableConfig(e.opts.Config, s)
	if err != nil {
		return pipeline.Inputs{}, err
	}
	derived := *e.opts.Config
	derived.Tables = map[string]*pipeline.TableConfig{s.Table: tc}
	src := "plan " + e.opts.RunID
	if e.opts.ConfSource != "" {
		src = e.opts.ConfSource + ", " + src
	}
	return pipeline.Inputs{Table: s.Table, Conf: e.stepConf(parallel), ConfSource: src, Getenv: e.opts.Getenv, Tables: &derived}, nil
}

// Verdicts of a step while the plan runs (not stored).
const (
	vDone    = "done"    // succeeded or partial
	vRunning = "running" // started by this process, not finished
	vReady   = "ready"   // every step it waits for is done: may start
	vNotYet  = "not yet" // a step it waits for has not finished yet
	vSkipped = "skipped" // will not run: a step it waits for has failed rows (or was skipped)
	vBlocked = "blocked" // will not run in this attempt: a step it waits for failed
)

// schedule runs the plan: a step starts as soon as every step it waits for
// has finished (so a wave is the steps that can run together at the
// earliest, not a barrier), in plan order, within the plan's
// max_jobs_in_flight: a starting step gets the jobs not in use divided by the steps
// ready to start (at least 1), and no step starts while every job is in use
// by others. A step's failure stops only the steps that wait for it. The
// returned error is for the plan itself (plan.json could not be written,
// the run was interrupted).
func (e *executor) schedule(ctx context.Context, parallel int) error {
	type result struct {
		id  string
		err error
	}
	done := make(chan result)
	running := map[string]int{} // step -> the jobs it was given
	attempted := map[string]bool{}
	inUse := 0
	var planErr error
	for {
		if ctx.Err() == nil && planErr == nil {
			ready := e.settle(running, attempted)
			if err := e.save(); err != nil {
				planErr = err
				continue
			}
			for len(ready) > 0 && (inUse < parallel || len(running) == 0) {
				share := max(1, (parallel-inUse)/len(ready))
				s := ready[0]
				ready = ready[1:]
				running[s.ID], attempted[s.ID] = share, true
				inUse += share
				go func() { done <- result{s.ID, e.runStep(ctx, s, share)} }()
			}
		}
		if len(running) == 0 {
			break
		}
		r := <-done
		inUse -= running[r.id]
		delete(running, r.id)
		if r.err != nil && planErr == nil {
			planErr = r.err
		}
		e.progress(ctx)
	}
	if planErr != nil {
		return planErr
	}
	if ctx.Err() != nil {
		return e.interrupted()
	}
	return e.save()
}

// settle gives every step not finished its verdict, in plan order (waits
// come first), records skipped and waiting steps with the reason, and
// returns the steps that may start now.
func (e *executor) settle(running map[string]int, attempted map[string]bool) []*Step {
	e.mu.Lock()
	defer e.mu.Unlock()
	verdict := map[string]string{}
	var ready []*Step
	for i := range e.state.Plan.Steps {
		s := &e.state.Plan.Steps[i]
		st := e.state.Steps[s.ID]
		switch {
		case running[s.ID] > 0:
			verdict[s.ID] = vRunning
			continue
		case st.State == StateSucceeded || st.State == StatePartial:
			verdict[s.ID] = vDone
			continue
		case attempted[s.ID]:
			verdict[s.ID] = vBlocked // ran in this attempt and failed
			continue
		}
		v, reason := vReady, ""
		for _, w := range s.Waits {
			ws := e.state.Steps[w]
			switch verdict[w] {
			case vRunning, vReady, vNotYet:
				v = vNotYet
			case vSkipped:
				if v == vReady {
					v, reason = vSkipped, "waits for "+w+", which was skipped"
				}
			case vBlocked:
				if v == vReady {
					v, reason = vBlocked, "waits for "+w+", which did not finish ("+ws.State+"); rerun the plan run id to continue"
				}
			case vDone:
				if ws.State == StatePartial && v == vReady && e.parentFailure(s) != pipeline.OnParentFailureContinue {
					v, reason = vSkipped, fmt.Sprintf("waits for %s, which ended with %d failed and %d unprocessed rows (on_parent_failure: stop; set continue to load it anyway)",
						w, ws.Failed, ws.Unprocessed)
				}
			}
		}
		verdict[s.ID] = v
		switch v {
		case vReady:
			ready = append(ready, s)
		case vSkipped, vBlocked:
			state := StateSkipped
			if v == vBlocked {
				state = StateWaiting
			}
			if st.State != state || st.Reason != reason {
				st.State, st.Reason = state, reason
				e.logf("%s %s: %s", s.ID, state, reason)
			}
		}
	}
	return ready
}

// parentFailure is the table's on_parent_failure as the tables config says
// now (a rerun after setting continue loads the table), else as planned.
func (e *executor) parentFailure(s *Step) string {
	if tc, ok := e.opts.Config.Tables[s.Table]; ok {
		return tc.ParentFailure()
	}
	return s.OnParentFailure
}

// runStep runs one step's sub-run to its end and records the outcome. The
// error is only for the plan (plan.json not written); the step's own
// failure is recorded in its state.
func (e *executor) runStep(ctx context.Context, s *Step, parallel int) error {
	now := e.opts.Now().UTC()
	e.mu.Lock()
	st := e.state.Steps[s.ID]
	st.State, st.Reason, st.Error, st.StartedAt, st.FinishedAt = StateRunning, "", "", &now, nil
	st.Attempts++
	e.mu.Unlock()
	if err := e.save(); err != nil {
		return err
	}
	e.logf("%s started (%s, parallel %d)", s.ID, s.Object, parallel)
	sum, err := e.runSub(ctx, s, parallel)
	end := e.opts.Now().UTC()
	e.mu.Lock()
	st.FinishedAt = &end
	st.ExitCode = exitOf(err)
	if sum != nil {
		st.Rows, st.Successful, st.Failed, st.Unprocessed = sum.Rows, sum.Successful, sum.Failed, sum.Unprocessed
	}
	switch st.ExitCode {
	case exitOK:
		st.State = StateSucceeded
	case exitPartial:
		st.State = StatePartial
	case exitFailure:
		st.State, st.Error = StateFailed, err.Error()
		if ctx.Err() != nil {
			st.State = StateInterrupted
		}
	default:
		st.State, st.Error = StateFailed, err.Error()
	}
	e.mu.Unlock()
	switch st.State {
	case StateInterrupted:
		e.logf("%s interrupted: %v", s.ID, err)
	case StateFailed:
		e.logf("%s failed: %v", s.ID, err)
	default:
		e.logf("%s %s: %d rows, %d succeeded, %d failed, %d unprocessed", s.ID, st.State, st.Rows, st.Successful, st.Failed, st.Unprocessed)
	}
	return e.save()
}

// runSub prepares and runs the step's pipeline run under the plan's directory.
func (e *executor) runSub(ctx context.Context, s *Step, parallel int) (*pipeline.Summary, error) {
	in, err := e.inputs(s, parallel)
	if err != nil {
		return nil, err
	}
	var rep pipeline.Reporter
	if e.opts.Reporter != nil {
		rep = e.opts.Reporter(s.ID)
	}
	r, err := pipeline.Prepare(pipeline.Options{
		WorkDir: e.dir, LogsDir: filepath.Join(e.opts.LogsDir, e.opts.RunID), RunID: s.ID, Inputs: in,
		Reporter: rep, Logger: e.opts.Logger, HTTPClient: e.opts.HTTPClient,
		PollInterval: e.opts.PollInterval, PollMaxInterval: e.opts.PollMaxInterval, MaxBatchBytes: e.opts.MaxBatchBytes,
		KeepBatches: e.opts.KeepBatches, StopGrace: e.opts.StopGrace, Now: e.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Run(ctx)
}

// progress writes how far the plan is into its tracker record's message
// (best effort: the final status is written at the end).
func (e *executor) progress(ctx context.Context) {
	if err := e.setTracker(ctx, pipeline.StatusInProgress); err != nil && ctx.Err() == nil {
		e.logf("warning: plan tracker %s not updated: %v", e.state.StatusRef, err)
	}
}

// setTracker writes the plan's tracker record: status, run id and "k of n
// steps done".
func (e *executor) setTracker(ctx context.Context, status string) error {
	e.trackMu.Lock()
	defer e.trackMu.Unlock()
	e.mu.Lock()
	done, n := 0, len(e.state.Plan.Steps)
	var detail []string
	for _, s := range e.state.Plan.Steps {
		st := e.state.Steps[s.ID]
		if st.State == StateSucceeded || st.State == StatePartial {
			done++
		}
		detail = append(detail, s.ID+" "+st.State)
	}
	e.mu.Unlock()
	msg := fmt.Sprintf("sfmigrate plan run %s: %d of %d steps finished (%s)", e.opts.RunID, done, n, strings.Join(detail, ", "))
	return e.org.SetStatus(ctx, e.state.StatusRef, status, e.opts.RunID, msg)
}

// save writes plan.json atomically.
func (e *executor) save() error {
	e.mu.Lock()
	e.state.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(e.state, "", "  ")
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	return writeFileAtomic(filepath.Join(e.dir, "plan.json"), append(data, '\n'))
}

// summary builds the plan's summary from plan.json's step states.
func (e *executor) summary(start time.Time) *Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	sum := &Summary{RunID: e.opts.RunID, Plan: true, PlanFile: StatePath(e.opts.WorkDir, e.opts.RunID), Tracker: e.state.StatusRef,
		Seconds: time.Since(start).Seconds()}
	worst := exitOK
	var problems []string
	for _, s := range e.state.Plan.Steps {
		st := e.state.Steps[s.ID]
		code := st.ExitCode
		switch st.State {
		case StateSkipped:
			code = exitPartial
		case StateWaiting, StatePending, StateRunning, StateInterrupted:
			code = exitFailure
		}
		if worse(code, worst) {
			worst = code
		}
		if code != exitOK {
			what := st.State
			if st.Reason != "" {
				what += ": " + st.Reason
			} else if st.Error != "" {
				what += ": " + st.Error
			} else if st.State == StatePartial {
				what += fmt.Sprintf(": %d failed, %d unprocessed rows", st.Failed, st.Unprocessed)
			}
			problems = append(problems, s.ID+" "+what)
		}
		sum.Steps = append(sum.Steps, StepSummary{ID: s.ID, Table: s.Table, Pass: s.Pass, Object: s.Object, Wave: s.Wave,
			State: st.State, Reason: st.Reason, Error: st.Error, ExitCode: code,
			Rows: st.Rows, Successful: st.Successful, Failed: st.Failed, Unprocessed: st.Unprocessed,
			RunID: s.ID, Manifest: filepath.Join(pipeline.RunDir(e.dir, s.ID), "manifest.json"),
			ResultsDir: filepath.Join(e.opts.LogsDir, e.opts.RunID, s.ID)})
	}
	sum.ExitCode = worst
	switch worst {
	case exitOK:
		sum.Outcome = "succeeded"
	case exitPartial:
		sum.Outcome = "partial"
	default:
		sum.Outcome = "failed"
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		sum.Error = fmt.Sprintf("plan run %s: %s", e.opts.RunID, strings.Join(problems, "; "))
	}
	return sum
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// writeFileAtomic replaces path with data: a temporary file, fsync, rename,
// fsync of the directory, so a kill leaves the old or the new file.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".plan-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// interrupted is the plan's error when it was stopped from outside.
func (e *executor) interrupted() error {
	return fmt.Errorf("plan run %s was stopped before it finished", e.opts.RunID)
}
