package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Operation is a Bulk API 2.0 ingest operation (salesforce-api.md §2.2).
type Operation string

// The ingest operations.
const (
	OpInsert     Operation = "insert"
	OpUpdate     Operation = "update"
	OpUpsert     Operation = "upsert"
	OpDelete     Operation = "delete"
	OpHardDelete Operation = "hardDelete"
)

// JobState is the state of an ingest job (salesforce-api.md §2.6).
type JobState string

// The job states, in the order a job passes through them.
const (
	JobOpen           JobState = "Open"
	JobUploadComplete JobState = "UploadComplete"
	JobInProgress     JobState = "InProgress"
	JobComplete       JobState = "JobComplete"
	JobFailed         JobState = "Failed"
	JobAborted        JobState = "Aborted"
)

// Terminal reports whether the job will not change any more
// (JobComplete, Failed or Aborted).
func (s JobState) Terminal() bool {
	return s == JobComplete || s == JobFailed || s == JobAborted
}

// closed reports whether the job got past Open by being closed: it is
// queued, processing or processed (Aborted does not count).
func (s JobState) closed() bool {
	return s == JobUploadComplete || s == JobInProgress || s == JobComplete || s == JobFailed
}

// JobSpec describes the ingest job to create (salesforce-api.md §2.2).
type JobSpec struct {
	// Object is the sObject API name, e.g. "Product2".
	Object string
	// Operation is insert, update, upsert, delete or hardDelete.
	Operation Operation
	// ExternalIDField is the upsert key's field API name (upsert only).
	ExternalIDField string
	// LineEnding is "LF" (default) or "CRLF"; it must match the file.
	LineEnding string
	// ColumnDelimiter is COMMA (default), TAB, PIPE, SEMICOLON, CARET or
	// BACKQUOTE.
	ColumnDelimiter string
}

var delimiters = map[string]bool{"COMMA": true, "TAB": true, "PIPE": true, "SEMICOLON": true, "CARET": true, "BACKQUOTE": true}

// validate checks a spec before any request.
func (s JobSpec) validate() error {
	var problems []string
	if strings.TrimSpace(s.Object) == "" {
		problems = append(problems, "object is empty")
	}
	switch s.Operation {
	case OpInsert, OpUpdate, OpDelete, OpHardDelete:
	case OpUpsert:
		if strings.TrimSpace(s.ExternalIDField) == "" {
			problems = append(problems, "an upsert needs the external id field (the column that identifies records)")
		}
	default:
		problems = append(problems, fmt.Sprintf("operation %q is not one of insert, update, upsert, delete, hardDelete", s.Operation))
	}
	if s.LineEnding != "" && s.LineEnding != "LF" && s.LineEnding != "CRLF" {
		problems = append(problems, fmt.Sprintf("line ending %q is not LF or CRLF", s.LineEnding))
	}
	if s.ColumnDelimiter != "" && !delimiters[s.ColumnDelimiter] {
		problems = append(problems, fmt.Sprintf("column delimiter %q is not one of COMMA, TAB, PIPE, SEMICOLON, CARET, BACKQUOTE", s.ColumnDelimiter))
	}
	if len(problems) > 0 {
		return fmt.Errorf("salesforce: job for %q: %s", s.Object, strings.Join(problems, "; "))
	}
	return nil
}

// JobInfo is what Salesforce says about an ingest job (salesforce-api.md
// §2.3). Only ID and State are always present; the other fields depend on
// the call and the job's progress and are zero when absent.
type JobInfo struct {
	ID                     string
	State                  JobState
	Object                 string
	Operation              Operation
	ExternalIDField        string
	CreatedByID            string
	CreatedDate            time.Time
	SystemModstamp         time.Time
	ConcurrencyMode        string
	ContentType            string
	APIVersion             string // e.g. "66.0"
	JobType                string
	LineEnding             string
	ColumnDelimiter        string
	NumberRecordsProcessed int64 // includes the failed ones
	NumberRecordsFailed    int64
	Retries                int64
	TotalProcessingTime    time.Duration
	ErrorMessage           string
}

// UnmarshalJSON reads a JobInfo leniently: id and state are required, the
// rest is taken when it parses (apiVersion arrives as a JSON number though
// documented as a string, §2.3).
func (j *JobInfo) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	str := func(k string) string {
		var s string
		if v, ok := raw[k]; ok && json.Unmarshal(v, &s) == nil {
			return s
		}
		if v, ok := raw[k]; ok && len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
			return string(v)
		}
		return ""
	}
	num := func(k string) int64 {
		s := str(k)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return int64(f)
		}
		return 0
	}
	*j = JobInfo{
		ID:                     str("id"),
		State:                  JobState(str("state")),
		Object:                 str("object"),
		Operation:              Operation(str("operation")),
		ExternalIDField:        str("externalIdFieldName"),
		CreatedByID:            str("createdById"),
		CreatedDate:            parseSFTime(str("createdDate")),
		SystemModstamp:         parseSFTime(str("systemModstamp")),
		ConcurrencyMode:        str("concurrencyMode"),
		ContentType:            str("contentType"),
		APIVersion:             str("apiVersion"),
		JobType:                str("jobType"),
		LineEnding:             str("lineEnding"),
		ColumnDelimiter:        str("columnDelimiter"),
		NumberRecordsProcessed: num("numberRecordsProcessed"),
		NumberRecordsFailed:    num("numberRecordsFailed"),
		Retries:                num("retries"),
		TotalProcessingTime:    time.Duration(num("totalProcessingTime")) * time.Millisecond,
		ErrorMessage:           str("errorMessage"),
	}
	if j.ID == "" || j.State == "" {
		return fmt.Errorf("job info without id or state: %s", shorten(string(b), 200))
	}
	return nil
}

// parseSFTime reads Salesforce's 2022-01-02T21:33:43.000+0000 (and RFC
// 3339 variants); zero when it does not parse.
func parseSFTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// jobIDRE accepts Salesforce record ids (15 or 18 alphanumerics); checking
// keeps a stray value from changing the request path.
var jobIDRE = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)

func checkJobID(id string) error {
	if !jobIDRE.MatchString(id) {
		return fmt.Errorf("salesforce: %q is not a job id (15 or 18 letters and digits, e.g. 7505g00000AbCdEAAV)", id)
	}
	return nil
}

func (c *Client) jobPath(id string, more ...string) string {
	return c.dataPath(append([]string{"jobs", "ingest", id}, more...)...)
}

// CreateJob creates an ingest job in state Open.
//
// Creation is repeated only after answers that prove nothing was created
// (429, 502, 503, a concurrency limit, 401 with a new token). After a lost
// answer (or a 500/504) it is not repeated here: the request may have
// created a job whose id only the answer carried. The error then wraps
// ErrJobMayExist. Such a job stays Open, holds no data and expires
// (salesforce-api.md §1.4, §2.6), so a caller may create another one for
// the data; LoadFiles does.
//
// https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/create_job.htm
func (c *Client) CreateJob(ctx context.Context, spec JobSpec) (*JobInfo, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	body := map[string]string{"object": spec.Object, "operation": string(spec.Operation), "contentType": "CSV"}
	if spec.Operation == OpUpsert {
		body["externalIdFieldName"] = spec.ExternalIDField
	}
	body["lineEnding"] = spec.LineEnding
	if spec.LineEnding == "" {
		body["lineEnding"] = "LF"
	}
	body["columnDelimiter"] = spec.ColumnDelimiter
	if spec.ColumnDelimiter == "" {
		body["columnDelimiter"] = "COMMA"
	}
	bf, err := jsonBody(body)
	if err != nil {
		return nil, err
	}
	var info JobInfo
	_, err = c.do(ctx, &request{
		method: http.MethodPost, path: c.dataPath("jobs", "ingest"),
		body: bf, contentType: "application/json", repeat: repeatIfRefused,
	}, &info)
	if err != nil {
		if isNoAnswer(err) || isAmbiguous(err) {
			return nil, fmt.Errorf("create %s job for %s: %w: %w; such a job stays Open and empty until it expires", spec.Operation, spec.Object, ErrJobMayExist, err)
		}
		return nil, fmt.Errorf("create %s job for %s: %w", spec.Operation, spec.Object, err)
	}
	return &info, nil
}

// isAmbiguous reports a 5xx answer after which the work may or may not
// have been done (500, 504, ...).
func isAmbiguous(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 500 &&
		apiErr.Status != http.StatusBadGateway && apiErr.Status != http.StatusServiceUnavailable
}

// UploadJobData sends the CSV file at path as the job's data, streamed
// from disk (the file is never read into memory). The file must already
// use the job's line ending and delimiter; Salesforce checks the content
// only when processing (salesforce-api.md §2.4).
//
// A job takes exactly one upload. So the PUT is repeated only when it got
// no answer at all (§1.4, §6.4); if the repeat is refused with
// BULK_API_ERROR "Found multipe contents", that refusal proves the first
// upload arrived and UploadJobData returns nil. An error answer (even 503)
// is never followed by a second PUT. When the very first attempt is
// refused that way the error wraps ErrAlreadyUploaded.
//
// https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/upload_job_data.htm
func (c *Client) UploadJobData(ctx context.Context, jobID, path string) error {
	if err := checkJobID(jobID); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("upload %s to job %s: %w", path, jobID, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("upload %s to job %s: not a regular file", path, jobID)
	}
	size := fi.Size()
	if size == 0 {
		return fmt.Errorf("upload %s to job %s: the file is empty; a Bulk API upload needs at least a header row", path, jobID)
	}
	if c.cfg.MaxUploadBytes > 0 && size > c.cfg.MaxUploadBytes {
		return fmt.Errorf("upload %s to job %s: the file has %d bytes, more than the %d allowed per job (Salesforce takes 150 MB after base64, about 100 MB of CSV); split it into smaller batch files",
			path, jobID, size, c.cfg.MaxUploadBytes)
	}
	req := &request{
		method: http.MethodPut, path: c.jobPath(jobID, "batches"),
		contentType: "text/csv", repeat: repeatIfNoAnswer,
		// Each attempt reopens the file, so a repeat sends it whole.
		body: func() (io.ReadCloser, int64, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, 0, err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, err
			}
			if fi.Size() != size {
				f.Close()
				return nil, 0, fmt.Errorf("%s changed size during the upload (%d, now %d bytes)", path, size, fi.Size())
			}
			return f, size, nil
		},
	}
	_, err = c.do(ctx, req, nil)
	if err == nil {
		return nil
	}
	if isMultipleContents(err) {
		if req.noAnswerCount > 0 {
			// The earlier PUT got no answer but did arrive: done.
			c.log.Info("salesforce: upload answer was lost; the repeat was refused as a second upload, so the first arrived",
				"job", jobID, "path", path)
			return nil
		}
		return fmt.Errorf("upload %s to job %s: %w: %w", path, jobID, ErrAlreadyUploaded, err)
	}
	return fmt.Errorf("upload %s to job %s: %w", path, jobID, err)
}

// CloseJob marks the job's data complete (state UploadComplete), which
// queues it for processing. If the answer is lost, or the PATCH is refused
// as an illegal state change, the job is read: a state at or past
// UploadComplete means the close took effect (salesforce-api.md §1.4).
// The returned JobInfo is Salesforce's answer to the PATCH, or the job as
// read then.
//
// https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/close_job.htm
func (c *Client) CloseJob(ctx context.Context, jobID string) (*JobInfo, error) {
	return c.setJobState(ctx, jobID, JobUploadComplete)
}

// AbortJob aborts the job (state Aborted). Rows already processed are not
// rolled back (salesforce-api.md §2.5). Lost answers are settled by
// reading the job, as for CloseJob. Aborting a job that already finished
// returns its JobInfo with an error saying so.
//
// https://developer.salesforce.com/docs/platform/api-asynch/guide/abort-job.html
func (c *Client) AbortJob(ctx context.Context, jobID string) (*JobInfo, error) {
	return c.setJobState(ctx, jobID, JobAborted)
}

// reached reports whether a job in state s shows that a request to move
// it to want took effect (or that it is past the point where it matters).
func reached(s, want JobState) bool {
	if want == JobAborted {
		return s == JobAborted
	}
	return s.closed()
}

func (c *Client) setJobState(ctx context.Context, jobID string, want JobState) (*JobInfo, error) {
	if err := checkJobID(jobID); err != nil {
		return nil, err
	}
	verb := map[JobState]string{JobUploadComplete: "close", JobAborted: "abort"}[want]
	bf, err := jsonBody(map[string]string{"state": string(want)})
	if err != nil {
		return nil, err
	}
	for round := 1; ; round++ {
		var info JobInfo
		_, err := c.do(ctx, &request{
			method: http.MethodPatch, path: c.jobPath(jobID),
			body: bf, contentType: "application/json", repeat: repeatIfRefused,
		}, &info)
		if err == nil {
			return &info, nil
		}
		var apiErr *APIError
		refused := errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest &&
			(apiErr.HasCode("INVALIDJOBSTATE") || apiErr.HasCode("INVALID_JOB_STATE"))
		if ctx.Err() != nil || !(isNoAnswer(err) || isAmbiguous(err) || refused) {
			return nil, fmt.Errorf("%s job %s: %w", verb, jobID, err)
		}
		// Lost answer, 5xx of unknown effect, or "not in a state for
		// that": the job's own state tells whether our PATCH took effect.
		cur, gerr := c.GetJob(ctx, jobID)
		if gerr != nil {
			return nil, fmt.Errorf("%s job %s: %w; reading the job to see whether it took effect failed too: %v", verb, jobID, err, gerr)
		}
		if reached(cur.State, want) {
			if isNoAnswer(err) || isAmbiguous(err) {
				c.log.Info("salesforce: answer to a job state change was lost; the job shows it took effect",
					"job", jobID, "want", want, "state", cur.State)
			}
			return cur, nil
		}
		if want == JobAborted && cur.State.Terminal() {
			return cur, fmt.Errorf("abort job %s: the job had already finished as %s; nothing to abort", jobID, cur.State)
		}
		if refused || cur.State != JobOpen && want == JobUploadComplete || round >= c.cfg.MaxAttempts {
			return cur, fmt.Errorf("%s job %s (now %s): %w", verb, jobID, cur.State, err)
		}
		// Still Open (or abortable): the PATCH did not happen; send it again.
		if serr := sleep(ctx, c.backoff(round)); serr != nil {
			return nil, fmt.Errorf("%s job %s: %w (last failure: %v)", verb, jobID, context.Cause(ctx), err)
		}
	}
}

// GetJob reads the job's current information.
//
// https://developer.salesforce.com/docs/platform/api-asynch/guide/get-job-info.html
func (c *Client) GetJob(ctx context.Context, jobID string) (*JobInfo, error) {
	if err := checkJobID(jobID); err != nil {
		return nil, err
	}
	var info JobInfo
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: c.jobPath(jobID)}, &info); err != nil {
		return nil, fmt.Errorf("get job %s: %w", jobID, err)
	}
	return &info, nil
}

// DeleteJob deletes a job that is UploadComplete or terminal, with its
// data and results (salesforce-api.md §2.8). A 404 after an attempt whose
// answer was lost counts as deleted.
//
// https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/delete_job.htm
func (c *Client) DeleteJob(ctx context.Context, jobID string) error {
	if err := checkJobID(jobID); err != nil {
		return err
	}
	req := &request{method: http.MethodDelete, path: c.jobPath(jobID)}
	_, err := c.do(ctx, req, nil)
	var apiErr *APIError
	if err != nil && req.noAnswerCount > 0 && errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete job %s: %w", jobID, err)
	}
	return nil
}

// ListJobs returns every Bulk API 2.0 ingest job of the org (jobType
// V2Ingest), following nextRecordsUrl through all pages (up to 1,000 jobs
// each, in no particular order; salesforce-api.md §2.9).
//
// https://developer.salesforce.com/docs/platform/api-asynch/guide/get-all-jobs.html
func (c *Client) ListJobs(ctx context.Context) ([]JobInfo, error) {
	var all []JobInfo
	path, query := c.dataPath("jobs", "ingest"), url.Values{"jobType": {"V2Ingest"}}
	seen := map[string]bool{}
	for page := 1; ; page++ {
		var resp struct {
			Done           bool      `json:"done"`
			Records        []JobInfo `json:"records"`
			NextRecordsURL string    `json:"nextRecordsUrl"`
		}
		if _, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: query}, &resp); err != nil {
			return all, fmt.Errorf("list jobs (page %d): %w", page, err)
		}
		all = append(all, resp.Records...)
		if resp.Done || resp.NextRecordsURL == "" {
			return all, nil
		}
		next, err := url.Parse(resp.NextRecordsURL)
		if err != nil || !strings.HasPrefix(next.EscapedPath(), "/services/data/") || seen[resp.NextRecordsURL] {
			return all, fmt.Errorf("list jobs (page %d): unusable nextRecordsUrl %q", page, resp.NextRecordsURL)
		}
		seen[resp.NextRecordsURL] = true
		path, query = next.EscapedPath(), next.Query()
	}
}

// WaitJob polls the job until it is JobComplete, Failed or Aborted and
// returns its final information (salesforce-api.md §2.7). It waits
// Config.PollInterval before the first poll too: a job just closed is
// UploadComplete for at least a moment (the close answer itself says so,
// §2.5), so asking at once would cost an API call that can only say "not
// yet". Each next wait is twice as long, up to Config.PollMaxInterval,
// whatever the first interval: a job of 10 minutes costs about 20 polls
// with the defaults (2s to 30s) and about 30 starting from 1ms.
// A caller that already holds a terminal JobInfo (say, from CloseJob after
// a lost answer, or from GetJob) has no reason to call WaitJob.
//
// Failures that a later poll may not meet (no answer, 5xx, 429) are logged
// and polling goes on; the wait ends with ctx or after Config.JobTimeout
// (the error then wraps ErrJobTimeout and names the last state seen). Other
// errors (the job is gone, bad credentials) end it at once.
func (c *Client) WaitJob(ctx context.Context, jobID string) (*JobInfo, error) {
	if err := checkJobID(jobID); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(c.cfg.JobTimeout)
	interval := c.cfg.PollInterval
	var last *JobInfo
	var lastErr error
	for {
		if err := sleep(ctx, min(interval, time.Until(deadline))); err != nil {
			return last, fmt.Errorf("wait for job %s: %w", jobID, context.Cause(ctx))
		}
		interval = min(2*interval+1, c.cfg.PollMaxInterval)
		info, err := c.GetJob(ctx, jobID)
		switch {
		case err == nil:
			last, lastErr = info, nil
			if info.State.Terminal() {
				return info, nil
			}
		case ctx.Err() != nil:
			return last, fmt.Errorf("wait for job %s: %w", jobID, context.Cause(ctx))
		case Classify(err) == ClassTransient:
			lastErr = err
			c.log.Warn("salesforce: polling a job failed; polling on", "job", jobID, "error", err.Error())
		default:
			return last, fmt.Errorf("wait for job %s: %w", jobID, err)
		}
		if now := time.Now(); !now.Before(deadline) {
			state := JobState("unknown")
			if last != nil {
				state = last.State
			}
			err := fmt.Errorf("wait for job %s: %w: still %s after %s (the wait for one job ends after %s)", jobID, ErrJobTimeout, state,
				now.Sub(start).Round(time.Millisecond), c.cfg.JobTimeout)
			if lastErr != nil {
				err = fmt.Errorf("%w; last poll failed: %v", err, lastErr)
			}
			return last, err
		}
	}
}

// ResultKind names one of a job's three result sets (salesforce-api.md §3).
type ResultKind string

// The result sets.
const (
	ResultSuccessful  ResultKind = "successfulResults"
	ResultFailed      ResultKind = "failedResults"
	ResultUnprocessed ResultKind = "unprocessedrecords"
)

// DownloadResults saves one result set of a finished job as a CSV file at
// path and returns its number of data rows (records, not lines: quoted
// values may span lines). The answer is copied to a temporary file in the
// same directory as it arrives, synced, then renamed over path, so path
// is either the complete result or untouched. An empty answer is saved as
// an empty file with 0 rows (§3.2: Salesforce may send a header-only or
// an empty body). A transfer that breaks off, or fails in another
// transient way (Classify), is started again from the beginning, within
// Config.MaxAttempts.
//
// Ask only once the job is terminal: Salesforce does not document what an
// earlier request returns (§3.4).
//
// https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_job_successful_results.htm
func (c *Client) DownloadResults(ctx context.Context, jobID string, kind ResultKind, path string) (rows int64, err error) {
	if err := checkJobID(jobID); err != nil {
		return 0, err
	}
	switch kind {
	case ResultSuccessful, ResultFailed, ResultUnprocessed:
	default:
		return 0, fmt.Errorf("salesforce: unknown result kind %q (want %s, %s or %s)", kind, ResultSuccessful, ResultFailed, ResultUnprocessed)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("download %s of job %s: %w", kind, jobID, err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for attempt := 1; ; attempt++ {
		rows, err = c.downloadOnce(ctx, jobID, kind, tmp)
		if err == nil {
			break
		}
		if ctx.Err() != nil || Classify(err) != ClassTransient || attempt >= c.cfg.MaxAttempts {
			return 0, fmt.Errorf("download %s of job %s to %s: %w", kind, jobID, path, err)
		}
		wait := c.backoff(attempt)
		c.log.Warn("salesforce: result download failed; starting again", "job", jobID, "kind", kind, "attempt", attempt, "wait", wait, "error", err.Error())
		if serr := sleep(ctx, wait); serr != nil {
			return 0, fmt.Errorf("download %s of job %s: %w (last failure: %v)", kind, jobID, context.Cause(ctx), err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("download %s of job %s: sync %s: %w", kind, jobID, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("download %s of job %s: close %s: %w", kind, jobID, tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("download %s of job %s: %w", kind, jobID, err)
	}
	tmp = nil
	return rows, nil
}

// downloadOnce makes one GET and copies the body into f from its start.
func (c *Client) downloadOnce(ctx context.Context, jobID string, kind ResultKind, f *os.File) (int64, error) {
	if err := f.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	req := &request{method: http.MethodGet, path: c.jobPath(jobID, string(kind)) + "/", accept: "text/csv", stream: true}
	resp, err := c.do(ctx, req, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var counter csvRecordCounter
	n, err := io.Copy(io.MultiWriter(f, &counter), resp.Body)
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			return 0, err // our disk, not the network
		}
		return 0, &noAnswerError{method: req.method, path: req.path, err: fmt.Errorf("body broke off after %d bytes: %w", n, err)}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return 0, &noAnswerError{method: req.method, path: req.path, err: fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)}
	}
	return counter.rows(), nil
}

// csvRecordCounter counts CSV records as bytes stream through, tracking
// quotes so a line break inside a quoted value does not count (results
// echo values with line breaks, salesforce-api.md §3.2). A doubled quote
// inside a quoted value toggles twice and so leaves the state unchanged.
type csvRecordCounter struct {
	inQuotes  bool
	records   int64
	lineBytes bool // the current record has bytes
}

func (c *csvRecordCounter) Write(p []byte) (int, error) {
	n := len(p)
	// Line by line: within a line only the parity of its quotes matters,
	// and both searches run on the library's vectorised byte scans (this
	// sees every byte of every result set).
	for len(p) > 0 {
		end := bytes.IndexByte(p, '\n')
		line := p
		if end >= 0 {
			line = p[:end]
		}
		if bytes.Count(line, quote)%2 == 1 {
			c.inQuotes = !c.inQuotes
		}
		if !c.lineBytes {
			c.lineBytes = hasNonCR(line)
		}
		if end < 0 {
			break
		}
		p = p[end+1:]
		if c.inQuotes {
			continue // a line break inside a quoted value
		}
		if c.lineBytes {
			c.records++
		}
		c.lineBytes = false
	}
	return n, nil
}

var quote = []byte{'"'}

// hasNonCR reports whether b holds a byte other than a carriage return
// (part of CRLF, or inside a value).
func hasNonCR(b []byte) bool {
	for _, x := range b {
		if x != '\r' {
			return true
		}
	}
	return false
}

// rows is the number of data records: every record but the header.
func (c *csvRecordCounter) rows() int64 {
	n := c.records
	if c.lineBytes {
		n++ // last record without a final line break
	}
	if n > 0 {
		n-- // header
	}
	return n
}
