package sfemu

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bulk API 2.0 ingest endpoints (salesforce-api.md §2):
// https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/

// Job states (salesforce-api.md 2.3).
const (
	StateOpen           = "Open"
	StateUploadComplete = "UploadComplete"
	StateInProgress     = "InProgress"
	StateJobComplete    = "JobComplete"
	StateFailed         = "Failed"
	StateAborted        = "Aborted"
)

func terminal(state string) bool {
	return state == StateJobComplete || state == StateFailed || state == StateAborted
}

// job is one ingest job. Its mutable fields are guarded by orgStore.mu;
// data is written once by the upload before the state leaves Open.
type job struct {
	id  string // 18 characters
	seq uint64
	jobSpec

	created   time.Time
	modstamp  time.Time
	state     string
	data      []byte
	uploading bool
	uploaded  bool
	deleted   bool
	claimed   bool          // a processor took the job
	done      chan struct{} // closed when res is set

	processed, failed int64
	retries           int
	errorMessage      string
	totalMs           int64
	res               *jobResults // set when processing ends
}

// jobInfo is the JSON of a job. Pointers and omitempty select the fields
// each call shows (salesforce-api.md 2.3): create, PATCH, GET and list
// differ. Field order follows Salesforce's examples.
type jobInfo struct {
	ID                      string      `json:"id"`
	Operation               string      `json:"operation"`
	Object                  string      `json:"object"`
	CreatedByID             string      `json:"createdById"`
	CreatedDate             string      `json:"createdDate"`
	SystemModstamp          string      `json:"systemModstamp"`
	State                   string      `json:"state"`
	ExternalIDFieldName     string      `json:"externalIdFieldName,omitempty"`
	ConcurrencyMode         string      `json:"concurrencyMode"`
	ContentType             string      `json:"contentType"`
	APIVersion              json.Number `json:"apiVersion"`
	JobType                 string      `json:"jobType,omitempty"`
	ContentURL              string      `json:"contentUrl,omitempty"`
	LineEnding              string      `json:"lineEnding,omitempty"`
	ColumnDelimiter         string      `json:"columnDelimiter,omitempty"`
	AssignmentRuleID        string      `json:"assignmentRuleId,omitempty"`
	NumberRecordsProcessed  *int64      `json:"numberRecordsProcessed,omitempty"`
	NumberRecordsFailed     *int64      `json:"numberRecordsFailed,omitempty"`
	Retries                 *int        `json:"retries,omitempty"`
	TotalProcessingTime     *int64      `json:"totalProcessingTime,omitempty"`
	APIActiveProcessingTime *int64      `json:"apiActiveProcessingTime,omitempty"`
	ApexProcessingTime      *int64      `json:"apexProcessingTime,omitempty"`
	ErrorMessage            string      `json:"errorMessage,omitempty"`
}

type jobView int

const (
	viewCreate jobView = iota
	viewPatch
	viewGet
	viewList
)

// infoLocked renders the job for one kind of call.
func (j *job) infoLocked(v jobView) jobInfo {
	in := jobInfo{
		ID: j.id, Operation: j.operation, Object: j.obj.name, CreatedByID: userID,
		CreatedDate: fmtTime(j.created), SystemModstamp: fmtTime(j.modstamp), State: j.state,
		ConcurrencyMode: "Parallel", ContentType: "CSV", APIVersion: json.Number(j.apiVersion),
	}
	if j.extField != nil && v != viewList {
		// The list example of an upsert job has no externalIdFieldName (2.9 [D]).
		in.ExternalIDFieldName = j.extField.name
	}
	switch v {
	case viewCreate:
		in.ContentURL = j.contentURL()
		in.LineEnding, in.ColumnDelimiter = j.lineEnding, j.delimiter
		in.AssignmentRuleID = j.ruleID
	case viewPatch:
		// PATCH answers the short form (2.3).
	case viewList:
		in.JobType = "V2Ingest"
		in.LineEnding, in.ColumnDelimiter = j.lineEnding, j.delimiter
	case viewGet:
		in.JobType = "V2Ingest"
		if j.state == StateOpen {
			in.ContentURL = j.contentURL()
		}
		in.LineEnding, in.ColumnDelimiter = j.lineEnding, j.delimiter
		in.AssignmentRuleID = j.ruleID
		if j.state != StateOpen && j.state != StateUploadComplete || j.claimed {
			p, f := j.processed, j.failed
			in.NumberRecordsProcessed, in.NumberRecordsFailed = &p, &f
		}
		r, t, zero := j.retries, j.totalMs, int64(0)
		api := t
		in.Retries, in.TotalProcessingTime, in.APIActiveProcessingTime, in.ApexProcessingTime = &r, &t, &api, &zero
		in.ErrorMessage = j.errorMessage
	}
	return in
}

// contentURL is relative, without a leading slash, as Salesforce returns it (2.2).
func (j *job) contentURL() string {
	return "services/data/v" + j.apiVersion + "/jobs/ingest/" + j.id + "/batches"
}

// fmtTime formats a JSON timestamp as Salesforce does:
// 2022-01-02T21:33:43.000+0000 (salesforce-api.md §0).
func fmtTime(t time.Time) string { return t.UTC().Format(jsonTime) }

// JobSnapshot is a job's state for test assertions (Server.Jobs).
type JobSnapshot struct {
	ID                     string
	Object                 string
	Operation              string
	ExternalIDFieldName    string
	State                  string
	NumberRecordsProcessed int64
	NumberRecordsFailed    int64
	Retries                int
	ErrorMessage           string
	UploadedBytes          int
}

// Jobs returns every job not deleted, in creation order.
func (s *Server) Jobs() []JobSnapshot { return s.store.jobSnapshots() }

// createJobRequest is the create body (salesforce-api.md 2.2). Unknown
// properties are ignored [I].
type createJobRequest struct {
	Object              *string `json:"object"`
	Operation           *string `json:"operation"`
	ExternalIDFieldName *string `json:"externalIdFieldName"`
	ContentType         *string `json:"contentType"`
	LineEnding          *string `json:"lineEnding"`
	ColumnDelimiter     *string `json:"columnDelimiter"`
	AssignmentRuleID    *string `json:"assignmentRuleId"`
}

func errInvalidValue(value, property string) *apiError {
	// salesforce-api.md 2.10 [O], status 400 [I].
	return newAPIError(http.StatusBadRequest, "API_ERROR",
		fmt.Sprintf("Invalid value: '%s' supplied for property: '%s'", value, property))
}

func errInvalidJob(msg string) *apiError {
	return newAPIError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : "+msg)
}

// readJSON reads a JSON request body (at most 1 MiB: job bodies are a few
// hundred bytes; a longer one is refused, not read in part [I]).
func readJSON(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "could not read the request body: "+err.Error())
	}
	if len(body) > 1<<20 {
		return newAPIError(http.StatusRequestEntityTooLarge, "JSON_PARSER_ERROR", "the request body is larger than 1048576 bytes (1 MiB), the most a job request takes")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return errJSON(nil, nil)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errJSON(body, err)
	}
	return nil
}

// handleCreateJob serves POST jobs/ingest (salesforce-api.md 2.2, 2.10).
func (s *Server) handleCreateJob(rq *request) (*reply, error) {
	var req createJobRequest
	if err := readJSON(rq.r, &req); err != nil {
		return nil, err
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	op := str(req.Operation)
	switch op {
	case "insert", "update", "upsert", "delete", "hardDelete":
	case "":
		// [I]: the wording for a missing operation is not established.
		return nil, errInvalidJob("Operation is required")
	default:
		return nil, errInvalidValue(op, "operation")
	}
	if ct := str(req.ContentType); ct != "" && ct != "CSV" {
		return nil, errInvalidValue(ct, "contentType")
	}
	le := str(req.LineEnding)
	switch le {
	case "":
		le = "LF"
	case "LF", "CRLF":
	default:
		return nil, errInvalidValue(le, "lineEnding")
	}
	cd := str(req.ColumnDelimiter)
	if cd == "" {
		cd = "COMMA"
	}
	delim, ok := delimiters[cd]
	if !ok {
		return nil, errInvalidValue(cd, "columnDelimiter")
	}
	objName := str(req.Object)
	if objName == "" {
		// [I]: the wording for a missing object is not established.
		return nil, errInvalidJob("Object is required")
	}
	ob := s.org.object(objName)
	if ob == nil {
		return nil, errInvalidJob("Unable to find object: " + objName)
	}
	var ext *field
	if op == "upsert" {
		name := str(req.ExternalIDFieldName)
		if name == "" {
			// [I]: Salesforce requires the property for upsert; wording assumed.
			return nil, errInvalidJob("External ID Field Name is required for upsert operation")
		}
		ext = ob.byName[strings.ToLower(name)]
		if ext == nil || !(ext.extID || ext.kind == kindID) {
			return nil, errInvalidJob(fmt.Sprintf("Field name provided, %s does not match an External ID for %s", name, ob.name))
		}
	}
	info := s.store.createJob(jobSpec{obj: ob, operation: op, extField: ext, lineEnding: le, delimiter: cd, delim: delim,
		ruleID: str(req.AssignmentRuleID), apiVersion: rq.version}, s.now())
	return &reply{status: http.StatusOK, body: info}, nil
}

// handleGetJob serves GET jobs/ingest/{id} (salesforce-api.md 2.3).
func (s *Server) handleGetJob(rq *request) (*reply, error) {
	info, err := s.store.jobInfo(rq.params[0], viewGet)
	if err != nil {
		return nil, err
	}
	return &reply{status: http.StatusOK, body: info}, nil
}

// handlePatchJob serves PATCH jobs/ingest/{id}: close or abort (2.5, 2.6).
func (s *Server) handlePatchJob(rq *request) (*reply, error) {
	var req struct {
		State *string `json:"state"`
	}
	if err := readJSON(rq.r, &req); err != nil {
		return nil, err
	}
	want := ""
	if req.State != nil {
		want = *req.State
	}
	j, info, spawn, aerr := s.store.setJobState(rq.params[0], want, s.opts.mode == ProcessAsync)
	if aerr != nil {
		return nil, aerr
	}
	if j != nil { // closed: process it as the mode says
		switch s.opts.mode {
		case ProcessInstant:
			s.processJob(j)
		case ProcessAsync:
			if spawn {
				go s.processLater(j)
			}
		}
	}
	return &reply{status: http.StatusOK, body: info}, nil
}

// handleDeleteJob serves DELETE jobs/ingest/{id} (salesforce-api.md 2.8).
func (s *Server) handleDeleteJob(rq *request) (*reply, error) {
	if err := s.store.deleteJob(rq.params[0]); err != nil {
		return nil, err
	}
	return &reply{status: http.StatusNoContent}, nil
}

// handleListJobs serves GET jobs/ingest with paging (salesforce-api.md 2.9).
// The queryLocator is this emulator's own opaque form: "01g...-<offset>".
func (s *Server) handleListJobs(rq *request) (*reply, error) {
	q := rq.r.URL.Query()
	offset := 0
	if loc := q.Get("queryLocator"); loc != "" {
		_, n, ok := strings.Cut(loc, "-")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 0 || !strings.HasPrefix(loc, "01g") {
			// [I]: the wire body for a bad locator is not established.
			return nil, newAPIError(http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator: "+loc)
		}
		offset = v
	}
	jobType := q.Get("jobType")
	switch jobType {
	case "", "V2Ingest", "Classic", "BigObjectIngest":
	default:
		return nil, errInvalidValue(jobType, "jobType")
	}
	type page struct {
		Done           bool      `json:"done"`
		Records        []jobInfo `json:"records"`
		NextRecordsURL *string   `json:"nextRecordsUrl"`
	}
	infos, end, total := s.store.listJobs(offset, s.opts.listPageSize, jobType == "" || jobType == "V2Ingest")
	p := page{Done: true, Records: append([]jobInfo{}, infos...)}
	if end < total {
		p.Done = false
		next := fmt.Sprintf("/services/data/v%s/jobs/ingest?queryLocator=01g5g00000%s-%d", rq.version, "opRTIAY", end)
		if jobType != "" {
			next += "&jobType=" + jobType
		}
		p.NextRecordsURL = &next
	}
	return &reply{status: http.StatusOK, body: p}, nil
}

// handleUpload serves PUT jobs/ingest/{id}/batches: the job's one CSV
// upload (salesforce-api.md 2.4). The CSV is not validated here.
func (s *Server) handleUpload(rq *request) (*reply, error) {
	r := rq.r
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "text/csv" {
			// [I]: Salesforce answers 415 for an unsupported media type (6.2).
			return nil, newAPIError(http.StatusUnsupportedMediaType, "INVALIDCONTENTTYPE",
				"Unsupported content type: "+ct+"; upload job data as text/csv")
		}
	}
	j, aerr := s.store.beginUpload(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	data, err := readUpload(r, s.opts.maxUpload)
	if err := s.store.endUpload(j, data, err); err != nil {
		return nil, err
	}
	return &reply{status: http.StatusCreated}, nil
}

// readUpload reads the CSV body, chunked or not, gzip-encoded or not.
func readUpload(r *http.Request, limit int64) ([]byte, error) {
	var body io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, newAPIError(http.StatusBadRequest, "ClientInputError", "the body is not valid gzip: "+err.Error())
		}
		body = zr
	}
	if r.ContentLength > limit {
		return nil, errTooLarge(limit)
	}
	if r.ContentLength > 0 && body == r.Body {
		// Known length: one allocation of fresh (already zero) memory.
		data := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, newAPIError(http.StatusBadRequest, "ClientInputError", "could not read the uploaded data: "+err.Error())
		}
		return data, nil
	}
	// Unknown length (chunked or gzip): read growing blocks, then copy them
	// once into a buffer of the exact size. The upload is kept as long as
	// the job's results, and a bytes.Buffer would keep up to twice its size.
	var blocks [][]byte
	var total int64
	lr := io.LimitReader(body, limit+1)
	for size := 64 << 10; ; size = min(2*size, 8<<20) {
		b := make([]byte, size)
		n, err := fill(lr, b)
		blocks = append(blocks, b[:n])
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			// Including io.ErrUnexpectedEOF: a chunked body cut before its last chunk.
			return nil, newAPIError(http.StatusBadRequest, "ClientInputError", "could not read the uploaded data: "+err.Error())
		}
	}
	if total > limit {
		return nil, errTooLarge(limit)
	}
	data := make([]byte, 0, total)
	for _, b := range blocks {
		data = append(data, b...)
	}
	return data, nil
}

// fill reads into b until it is full or r fails. Unlike io.ReadFull, it
// returns io.EOF for a normal end, so that an io.ErrUnexpectedEOF from r
// itself (a body cut short) is not mistaken for one.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// errTooLarge refuses an upload over the per-job limit (2.4, 4.5). The
// real limit is 150 MB after base64; status and body are [I].
func errTooLarge(limit int64) *apiError {
	return newAPIError(http.StatusRequestEntityTooLarge, "EXCEEDED_QUOTA",
		fmt.Sprintf("ExceededQuota : Job data exceeds the maximum of %d bytes per job; split the data into several jobs", limit))
}
