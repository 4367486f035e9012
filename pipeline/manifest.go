package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
	"github.com/sfmigrate/sfmigrate/internal/safefile"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// ManifestVersion is the manifest format written by this version. Older
// formats are read when they can be; newer ones are refused.
const ManifestVersion = 1

// Step names, as `sfmigrate task STEP` takes them.
const (
	StepAuthenticate   = "authenticate"
	StepExtract        = "extract"
	StepUpload         = "upload"
	StepCollectResults = "collect-results"
	StepUpdateStatus   = "update-status"
)

// Steps lists the steps in order.
var Steps = []string{StepAuthenticate, StepExtract, StepUpload, StepCollectResults, StepUpdateStatus}

// Step states.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Result kinds as they appear in result file names.
const (
	ResultSuccessful  = "successful"
	ResultFailed      = "failed"
	ResultUnprocessed = "unprocessed"
)

// ResultKinds lists the three result sets in file-name form.
var ResultKinds = []string{ResultSuccessful, ResultFailed, ResultUnprocessed}

// Manifest is the durable state of one run: <work-dir>/runs/<run-id>/manifest.json.
// It is rewritten atomically after every change of state, so that a crash at
// any point leaves a manifest a rerun can continue from.
type Manifest struct {
	Version   int                   `json:"version"`
	RunID     string                `json:"run_id"`
	Table     string                `json:"table"`
	CreatedAt time.Time             `json:"created_at"`
	UpdatedAt time.Time             `json:"updated_at"`
	Settings  map[string]Setting    `json:"settings"`   // resolved value and source of each setting
	TableHash string                `json:"table_hash"` // Hash of the table definition the run started with
	Steps     map[string]*StepState `json:"steps"`
	Extract   ExtractState          `json:"extract"`
	Batches   []*BatchState         `json:"batches"` // ordered by Index
	Tracker   TrackerState          `json:"tracker"`
	// PossiblyOpenJobs lists the times Salesforce may have created a job
	// for this run whose id the run never received. Data goes only to
	// recorded jobs, so such a job is empty; it is never adopted, closed
	// or aborted, and stays Open until Salesforce expires it.
	PossiblyOpenJobs []PossiblyOpenJob `json:"possibly_open_jobs,omitempty"`
	// Target is the target object's fields as the authenticate step read
	// them from describe; the extract step (possibly in another process)
	// formats and checks values by them. Nil until authenticate ran.
	Target *TargetState `json:"target,omitempty"`
	// RetryRounds counts the `run --retry-failed` rounds recorded
	// (retryfailed.go): each adds follow-up batches and sets the upload,
	// collect-results and update-status steps pending again.
	RetryRounds int `json:"retry_rounds,omitempty"`
}

// TargetState is what describe said about the mapped fields of the target
// object: the Salesforce type decides a value's form (a timestamp column
// into a date field is written yyyy-MM-dd) and the length its limit.
type TargetState struct {
	Object      string        `json:"object"`
	DescribedAt time.Time     `json:"described_at"`
	Fields      []TargetField `json:"fields"` // in the order of the tables config's fields
}

// TargetField is one mapped column and its Salesforce field's describe.
// For a relationship column (Parent__r.Ext__c) Type and Length are the
// parent's external id field's, the value the file carries.
type TargetField struct {
	Column string `json:"column"`
	Name   string `json:"name"`             // as mapped (header of the batch files)
	Type   string `json:"type"`             // describe type: string, date, datetime, boolean, double, ...
	Length int    `json:"length,omitempty"` // describe length in characters (text types; 0 = no field limit)
	Parent string `json:"parent,omitempty"` // object a relationship column looks up
}

// StepState is the last known state of one step.
type StepState struct {
	State      string     `json:"state"` // running, done, failed; pending: a --retry-failed round set it to run again
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Error      string     `json:"error,omitempty"`
	Attempts   int        `json:"attempts"`
}

// ExtractState says how far extraction got.
type ExtractState struct {
	Done bool  `json:"done"` // every batch of the query is written
	Rows int64 `json:"rows"` // rows in all batch files
}

// BatchState is one batch file and its ingest job.
type BatchState struct {
	Index    int      `json:"index"`
	File     string   `json:"file"` // path relative to the run directory
	Rows     int64    `json:"rows"`
	Bytes    int64    `json:"bytes"`
	SHA256   string   `json:"sha256"`
	FirstRow int64    `json:"first_row"`          // 0-based offset in the ordered query
	LastKey  []string `json:"last_key,omitempty"` // order_by values of the last source row

	// Rejected counts the batch's source rows whose values could not be
	// sent; they are in RejectedFile (<logs-dir>/<run-id>/
	// <TABLE>_<NNNNN>_rejected.csv, a path as result files give theirs),
	// not in File. The batch spans Rows+Rejected source rows. A batch whose
	// rows were all rejected has no File and never gets a job.
	Rejected     int64  `json:"rejected,omitempty"`
	RejectedFile string `json:"rejected_file,omitempty"`
	// Truncated counts the values cut to their field's length (truncate).
	Truncated int64 `json:"truncated,omitempty"`

	// HandedAt is when the creation of the batch's job was last started.
	// With JobID set, that job must have been created after it (checked
	// when the job is followed). Without, a job created then may exist
	// that the run never learnt the id of (lost answer, process ended): it
	// holds no data and is only listed (Manifest.PossiblyOpenJobs).
	HandedAt *time.Time `json:"handed_at,omitempty"`

	JobID        string   `json:"job_id,omitempty"`
	JobState     string   `json:"job_state,omitempty"` // Bulk API state last seen; "" before a job exists
	Processed    int64    `json:"processed"`
	Failed       int64    `json:"failed"`
	ErrorMessage string   `json:"error_message,omitempty"`
	PreviousJobs []string `json:"previous_jobs,omitempty"` // jobs abandoned before any record was processed

	Results     map[string]*ResultFile `json:"results,omitempty"` // by ResultKinds
	FileRemoved bool                   `json:"file_removed,omitempty"`

	// Record-level retry (followup.go). A follow-up batch re-submits, in a
	// job of its own, the rows of an earlier attempt that failed for a
	// transient reason or were never processed.
	Origin   int `json:"origin,omitempty"`    // follow-up: the extracted batch whose rows it carries (0: extracted)
	Attempt  int `json:"attempt,omitempty"`   // follow-up: 2, 3, ... (an extracted batch is attempt 1)
	FollowUp int `json:"follow_up,omitempty"` // index of the follow-up carrying this batch's retried rows
	// Settled: the batch's results were examined for rows to retry, and
	// its follow-up (if any) is recorded; its file is no longer needed.
	Settled            bool  `json:"settled,omitempty"`
	RetriedFailed      int64 `json:"retried_failed,omitempty"`      // failed rows re-submitted in FollowUp
	RetriedUnprocessed int64 `json:"retried_unprocessed,omitempty"` // unprocessed rows re-submitted in FollowUp
	// RetriedRejected counts rows of this batch's rejected file that a
	// --retry-failed round found again at the source (their outcome is in
	// that round's follow-up).
	RetriedRejected int64 `json:"retried_rejected,omitempty"`
	// Via is "retry-failed" on a follow-up made by `run --retry-failed`
	// (re-extracted from the source), "" on one made by record-level retry.
	Via string `json:"via,omitempty"`
	// RetryFrom is the attempt record_retries counts from: the attempt
	// before the latest --retry-failed follow-up of the chain (0: none).
	RetryFrom int `json:"retry_from,omitempty"`
	// Final is, on an extracted batch with follow-ups, its result files
	// merged over every attempt: each row's final outcome.
	Final map[string]*ResultFile `json:"final,omitempty"`
}

// IsFollowUp reports whether the batch re-submits rows of an earlier one.
func (b *BatchState) IsFollowUp() bool { return b.Origin != 0 }

// AttemptNo is the batch's attempt number: 1 for an extracted batch.
func (b *BatchState) AttemptNo() int { return max(b.Attempt, 1) }

// ResultFile is one downloaded result set.
type ResultFile struct {
	Path string `json:"path"`
	Rows int64  `json:"rows"`
}

// Terminal reports whether the batch's job reached a final state, or the
// batch needs no job (Empty).
func (b *BatchState) Terminal() bool {
	if b.Empty() {
		return true
	}
	switch b.JobState {
	case "JobComplete", "Failed", "Aborted":
		return true
	}
	return false
}

// Abandoned reports a batch whose job was aborted before it processed a
// record: the batch gets a new job (replaceAbandonedJobs).
func (b *BatchState) Abandoned() bool {
	return b.JobID != "" && b.JobState == string(salesforce.JobAborted) && b.Processed == 0
}

// NeedsLoad reports whether the upload must load b: its job has not
// reached a final state, or was abandoned and is replaced.
func (b *BatchState) NeedsLoad() bool { return !b.Terminal() || b.Abandoned() }

// Empty reports a batch with no row to upload: every source row of it was
// rejected. It has no file and no job.
func (b *BatchState) Empty() bool { return b.Rows == 0 && b.JobID == "" }

// Unprocessed is the number of rows of the batch that no job processed.
func (b *BatchState) Unprocessed() int64 {
	if !b.Terminal() {
		return 0
	}
	if r := b.Results[ResultUnprocessed]; r != nil && r.Rows > 0 {
		return r.Rows
	}
	if u := b.Rows - b.Processed; b.JobState != "JobComplete" && u > 0 {
		return u
	}
	return 0
}

// PossiblyOpenJob is one job creation whose answer the run never got.
type PossiblyOpenJob struct {
	Batch int       `json:"batch"`
	From  time.Time `json:"from"` // the create request was sent after this
	To    time.Time `json:"to"`   // and before this
	Why   string    `json:"why"`
}

// notePossiblyOpen records that a job may have been created for b between
// b.HandedAt and now, and clears HandedAt.
func (m *Manifest) notePossiblyOpen(b *BatchState, now time.Time, why string) {
	m.PossiblyOpenJobs = append(m.PossiblyOpenJobs, PossiblyOpenJob{Batch: b.Index, From: *b.HandedAt, To: now, Why: why})
	b.HandedAt = nil
}

// TrackerState is the status-tracker record as this run last wrote it.
type TrackerState struct {
	Object    string    `json:"object"`
	Ref       string    `json:"ref"`
	Status    string    `json:"status,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Totals adds up the batches. Every source row read by extraction has
// exactly one final outcome:
//
//	Rows = Successful + Failed + Unprocessed + Rejected
//
// where a row sent again (record-level follow-up or --retry-failed) counts
// in the attempt that decided it: Failed, Unprocessed and Rejected add
// every batch's own and subtract the rows it handed on (Retried*).
type Totals struct {
	Batches     int   `json:"batches"` // extracted batches (follow-ups not counted)
	Rows        int64 `json:"rows"`    // source rows read by extraction: written to batch files + rejected
	Bytes       int64 `json:"bytes"`
	Jobs        int   `json:"jobs"`
	JobsDone    int   `json:"jobs_done"`
	JobsFailed  int   `json:"jobs_failed"` // Failed or Aborted, and not healed by a follow-up
	Processed   int64 `json:"processed"`
	Successful  int64 `json:"successful"`
	Failed      int64 `json:"failed"`      // final outcome: rows not retried again
	Unprocessed int64 `json:"unprocessed"` // final outcome: rows not retried again
	// Retried counts rows re-submitted in follow-up jobs (a row retried
	// twice counts twice); FollowUpJobs the follow-up batches.
	Retried      int64 `json:"retried"`
	FollowUpJobs int   `json:"follow_up_jobs"`
	// Rejected are the source rows whose values could not be sent (in the
	// rejected files) and were not sent since; they count as failed for
	// the tracker and the exit code.
	Rejected int64 `json:"rejected"`
	// Truncated are the values cut to their field's length.
	Truncated int64 `json:"truncated"`
}

// Totals adds up rows, jobs and record counts over all batches.
func (m *Manifest) Totals() Totals {
	var t Totals
	for _, b := range m.Batches {
		if b.IsFollowUp() {
			t.FollowUpJobs++
		} else {
			t.Batches++
			t.Rows += b.Rows + b.Rejected
			t.Bytes += b.Bytes
			t.Truncated += b.Truncated
		}
		if b.JobID != "" {
			t.Jobs++
		}
		if b.Terminal() && !b.Empty() {
			t.JobsDone++
			if b.JobState != "JobComplete" && b.FollowUp == 0 {
				t.JobsFailed++
			}
		}
		t.Processed += b.Processed
		t.Failed += b.Failed - b.RetriedFailed
		t.Successful += b.Processed - b.Failed
		t.Unprocessed += b.Unprocessed() - b.RetriedUnprocessed
		t.Rejected += b.Rejected - b.RetriedRejected
		t.Retried += b.RetriedFailed + b.RetriedUnprocessed + b.RetriedRejected
	}
	return t
}

// LastExtracted returns the extracted batch with the highest index (follow-up
// batches come after every extracted one), or nil.
func (m *Manifest) LastExtracted() *BatchState {
	for i := len(m.Batches) - 1; i >= 0; i-- {
		if !m.Batches[i].IsFollowUp() {
			return m.Batches[i]
		}
	}
	return nil
}

// Batch returns the batch with the given index, or nil.
func (m *Manifest) Batch(index int) *BatchState {
	for _, b := range m.Batches {
		if b.Index == index {
			return b
		}
	}
	return nil
}

// Step returns the state of the named step, creating it.
func (m *Manifest) Step(name string) *StepState {
	if m.Steps == nil {
		m.Steps = map[string]*StepState{}
	}
	s := m.Steps[name]
	if s == nil {
		s = &StepState{}
		m.Steps[name] = s
	}
	return s
}

// StepDone reports whether the named step finished.
func (m *Manifest) StepDone(name string) bool {
	s := m.Steps[name]
	return s != nil && s.State == StateDone
}

// MaxRunIDLen is the longest run id, in characters: Airflow's run_id
// column holds 250.
const MaxRunIDLen = 250

// ValidateRunID checks a run id given by the user. Every id Airflow can
// hold is accepted as it is: its default pattern allows letters, digits
// and _ . ~ : + -, and a deployment may widen it (scheduler
// allowed_run_id_pattern), so only what no run id can hold is refused:
// nothing, more than MaxRunIDLen characters, invalid UTF-8 or control
// characters. The id is kept as given in the manifest; the run's
// directories are named by RunDirName.
func ValidateRunID(id string) error {
	problem := ""
	switch {
	case id == "":
		problem = "is empty"
	case !utf8.ValidString(id):
		problem = "is not valid UTF-8"
	case utf8.RuneCountInString(id) > MaxRunIDLen:
		problem = fmt.Sprintf("is %d characters long; a run id holds at most %d (as Airflow's does)", utf8.RuneCountInString(id), MaxRunIDLen)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		problem = "contains control characters (line breaks, tabs)"
	}
	if problem != "" {
		return &ConfigError{Setting: "--run-id", Value: excerpt.N(id, 60), Source: "flag --run-id", Problem: problem,
			Fix: "pass a plain id such as PRODUCT_PRICE-2026-11-25 (in Airflow: --run-id {{ run_id }}), or leave --run-id out to get a new one"}
	}
	return nil
}

// RunDirName maps a run id to the name of its directories (under
// <work-dir>/runs and <logs-dir>): the same id always gives the same name,
// and different ids different names. Letters, digits and _ - + : . stay as
// they are (so every id the earlier, stricter rule allowed keeps its
// directory); any other byte, and a leading '.', becomes %XX, as in a URL
// (a name can be turned back into its id with url.PathUnescape). A name
// that would be longer than 200 bytes is cut and ends in '~' and a hash
// of the whole id instead; the manifest inside keeps the id as given.
func RunDirName(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == '-' || c == '+' || c == ':' || c == '.' && i > 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	name := b.String()
	const maxName, keep = 200, 180
	if len(name) > maxName {
		cut := keep
		for cut > 0 && (name[cut-1] == '%' || cut > 1 && name[cut-2] == '%') {
			cut-- // never split an escape
		}
		name = name[:cut] + "~" + sha256Hex([]byte(id))[:16]
	}
	return name
}

// NewRunID makes a run id from the table name and the time.
func NewRunID(table string, now time.Time) string {
	return table + "-" + now.UTC().Format("20060102T150405Z")
}

// RunStore owns one run's directory and manifest. It is the manifest's only
// writer: every change goes through Update, which writes the file atomically
// before returning. A RunStore holds an exclusive lock on the run directory
// (where the platform supports it), so two processes never write one run.
type RunStore struct {
	dir  string
	lock io.Closer
	// batch is, in a mapped upload (OpenRunBatch), the extracted batch
	// this process owns; 0 for a process that owns the whole run.
	batch int

	mu    sync.Mutex
	m     *Manifest          // guarded by mu
	lines map[int]*batchLine // guarded by mu: each batch's encoded line, by index
}

// batchLine is one batch's encoded manifest line and the state it encodes.
type batchLine struct {
	state BatchState // a deep copy
	line  []byte
}

// RunDir is <work-dir>/runs/<run-id>, the id mapped by RunDirName.
func RunDir(workDir, runID string) string { return filepath.Join(workDir, "runs", RunDirName(runID)) }

// ManifestExists reports whether a run's manifest exists.
func ManifestExists(workDir, runID string) bool {
	_, err := os.Stat(filepath.Join(RunDir(workDir, runID), "manifest.json"))
	return err == nil
}

// ReadManifest reads a run's manifest without locking it.
func ReadManifest(workDir, runID string) (*Manifest, error) {
	return readManifestAt(RunDir(workDir, runID), runID)
}

// readManifestAt reads the manifest in run directory dir.
func readManifestAt(dir, runID string) (*Manifest, error) {
	path := filepath.Join(dir, "manifest.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest of run %s: %w", runID, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s is damaged: %w (it is only ever replaced whole; restore it or start a new run)", path, err)
	}
	if m.Version > ManifestVersion {
		return nil, fmt.Errorf("manifest %s has format version %d; this sfmigrate reads up to %d: use a newer sfmigrate", path, m.Version, ManifestVersion)
	}
	if m.RunID != runID {
		return nil, fmt.Errorf("manifest %s belongs to run %q, not %q", path, m.RunID, runID)
	}
	sort.Slice(m.Batches, func(i, j int) bool { return m.Batches[i].Index < m.Batches[j].Index })
	return &m, nil
}

// OpenRun locks the run directory and loads its manifest, or creates a new
// manifest with init when there is none.
func OpenRun(workDir, runID string, init func(*Manifest)) (*RunStore, error) {
	dir := RunDir(workDir, runID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		src := "flag --work-dir"
		if workDir == "." {
			src = "default (--work-dir DIR changes it)"
		}
		return nil, &ConfigError{Setting: "--work-dir", Value: workDir, Source: src,
			Problem: "cannot hold the run: " + err.Error(), Fix: "pass a --work-dir this user can create and write (runs/<run-id>/ go under it)"}
	}
	// runs/ and runs/<run-id>/ are made by sfmigrate: a link there was
	// planted and is not followed.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := safefile.RefuseDirLink(d); err != nil {
			return nil, err
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &RunStore{dir: dir, lock: lock}
	if ManifestExists(workDir, runID) {
		m, err := ReadManifest(workDir, runID)
		if err != nil {
			lock.Close()
			return nil, err
		}
		s.m = m
		return s, nil
	}
	now := time.Now().UTC()
	s.m = &Manifest{Version: ManifestVersion, RunID: runID, CreatedAt: now, Steps: map[string]*StepState{}}
	if init != nil {
		init(s.m)
	}
	if err := s.writeLocked(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Dir is the run directory.
func (s *RunStore) Dir() string { return s.dir }

// Close releases the run's lock.
func (s *RunStore) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Update applies fn to the manifest and writes it. If fn returns an error
// the manifest is still written (fn may have recorded the failure). In a
// mapped upload the manifest is first read again under the manifest lock
// and this process's batches laid over it (mergeOwned), so that writers of
// other batches lose nothing.
func (s *RunStore) Update(fn func(m *Manifest) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch != 0 {
		unlock, err := s.mergeOwned()
		if err != nil {
			return err
		}
		defer unlock()
	}
	ferr := fn(s.m)
	if err := s.writeLocked(); err != nil {
		return errors.Join(ferr, err)
	}
	return ferr
}

// View calls fn with the manifest under the lock; fn must not keep it.
func (s *RunStore) View(fn func(m *Manifest)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.m)
}

// Snapshot returns a deep copy of the manifest.
func (s *RunStore) Snapshot() *Manifest {
	s.mu.Lock()
	data, err := json.Marshal(s.m)
	s.mu.Unlock()
	if err != nil {
		panic(err) // a Manifest always marshals
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		panic(err)
	}
	return &m
}

func (s *RunStore) writeLocked() error {
	s.m.UpdatedAt = time.Now().UTC()
	if s.lines == nil {
		s.lines = map[int]*batchLine{}
	}
	data, err := encodeManifest(s.m, func(b *BatchState) ([]byte, error) {
		if c := s.lines[b.Index]; c != nil && sameBatch(&c.state, b) {
			return c.line, nil
		}
		line, err := json.Marshal(b)
		if err == nil {
			s.lines[b.Index] = &batchLine{state: cloneBatch(b), line: line}
		}
		return line, err
	})
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.dir, "manifest.json"), data)
}

// encodeManifest writes the manifest as indented JSON except for the
// batches, which come last, one compact object per line as encodeBatch
// gives it (nil: json.Marshal). The manifest is rewritten after every
// change and grows with every batch: re-indenting all of it each time cost
// 11 ms of 15 ms per write with 1,000 batches, and encoding every batch
// again most of the rest, when a change touches one batch. A line per
// batch is as easy to read and to grep.
func encodeManifest(m *Manifest, encodeBatch func(*BatchState) ([]byte, error)) ([]byte, error) {
	if encodeBatch == nil {
		encodeBatch = func(b *BatchState) ([]byte, error) { return json.Marshal(b) }
	}
	head := *m
	head.Batches = nil
	data, err := json.MarshalIndent(struct {
		*Manifest
		Batches []*BatchState `json:"batches"` // shadows Manifest.Batches, and comes last
	}{Manifest: &head}, "", "  ")
	if err != nil {
		return nil, err
	}
	const tail = `"batches": null` + "\n}"
	if !bytes.HasSuffix(data, []byte(tail)) {
		return nil, fmt.Errorf("unexpected manifest encoding ending %q", data[max(0, len(data)-40):])
	}
	data = append(data[:len(data)-len(tail)], `"batches": [`...)
	for i, b := range m.Batches {
		line, err := encodeBatch(b)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			data = append(data, ',')
		}
		data = append(data, "\n    "...)
		data = append(data, line...)
	}
	if len(m.Batches) > 0 {
		data = append(data, "\n  "...)
	}
	return append(data, "]\n}\n"...), nil
}

// writeFileAtomic writes data to path.tmp, syncs it and renames it over
// path, so readers (and a crash) see either the old or the new file whole.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp := path + ".tmp"
	// The os errors name the operation and the file ("write x.tmp: no
	// space left on device"): returned as they are.
	// 0600: manifests hold source keys, summaries paths. A leftover tmp
	// (or a link planted there) is removed, never written through; O_EXCL
	// refuses whatever appears in between.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp) // best effort: the old file is intact
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = safefile.RefuseLink(path); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		// Make the rename itself durable; not every platform supports it.
		_ = d.Sync() // best effort, see above
		d.Close()
	}
	return nil
}

// sameBatch reports whether a and b hold the same state, field by field
// (TestSameBatchSeesEveryField keeps it complete). It runs for every batch
// on every manifest write, hence no reflection.
func sameBatch(a, b *BatchState) bool {
	if a.Index != b.Index || a.File != b.File || a.Rows != b.Rows || a.Bytes != b.Bytes || a.SHA256 != b.SHA256 ||
		a.FirstRow != b.FirstRow || !slices.Equal(a.LastKey, b.LastKey) ||
		a.Rejected != b.Rejected || a.RejectedFile != b.RejectedFile || a.Truncated != b.Truncated ||
		a.JobID != b.JobID || a.JobState != b.JobState || a.Processed != b.Processed || a.Failed != b.Failed ||
		a.ErrorMessage != b.ErrorMessage || !slices.Equal(a.PreviousJobs, b.PreviousJobs) || a.FileRemoved != b.FileRemoved {
		return false
	}
	if a.Origin != b.Origin || a.Attempt != b.Attempt || a.FollowUp != b.FollowUp || a.Settled != b.Settled ||
		a.RetriedFailed != b.RetriedFailed || a.RetriedUnprocessed != b.RetriedUnprocessed ||
		a.RetriedRejected != b.RetriedRejected || a.Via != b.Via || a.RetryFrom != b.RetryFrom {
		return false
	}
	if (a.HandedAt == nil) != (b.HandedAt == nil) || a.HandedAt != nil && *a.HandedAt != *b.HandedAt {
		return false
	}
	return sameResults(a.Results, b.Results) && sameResults(a.Final, b.Final)
}

func sameResults(a, b map[string]*ResultFile) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k, ra := range a {
		rb, ok := b[k]
		if !ok || (ra == nil) != (rb == nil) || ra != nil && *ra != *rb {
			return false
		}
	}
	return true
}

// cloneBatch is a deep copy of b.
func cloneBatch(b *BatchState) BatchState {
	c := *b
	c.LastKey = slices.Clone(b.LastKey)
	c.PreviousJobs = slices.Clone(b.PreviousJobs)
	if b.HandedAt != nil {
		t := *b.HandedAt
		c.HandedAt = &t
	}
	c.Results = cloneResults(b.Results)
	c.Final = cloneResults(b.Final)
	return c
}

func cloneResults(m map[string]*ResultFile) map[string]*ResultFile {
	if m == nil {
		return nil
	}
	c := make(map[string]*ResultFile, len(m))
	for k, r := range m {
		if r != nil {
			rc := *r
			r = &rc
		}
		c[k] = r
	}
	return c
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// fileSHA256 hashes a file by streaming it.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close() // read-only
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
