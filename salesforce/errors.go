package salesforce

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// maxErrorBody caps how much of an error answer is read (error bodies go
// through a 1 MiB LimitReader). Salesforce error arrays are a few
// hundred bytes; anything bigger is an edge/proxy page.
const maxErrorBody = 1 << 20

// ErrorItem is one element of Salesforce's REST error array
// (salesforce-api.md §6.1): {"errorCode": ..., "message": ..., "fields": [...]}.
type ErrorItem struct {
	ErrorCode string   `json:"errorCode"`
	Message   string   `json:"message"`
	Fields    []string `json:"fields,omitempty"`
}

// APIError is a non-success answer from a Salesforce data call (everything
// except the token endpoint, whose failures are *AuthError). It carries the
// HTTP status, the request's method and path (never its headers, so never
// the bearer token) and the error list Salesforce returned. When the body
// was not Salesforce's JSON error array (an HTML page from an edge proxy on
// a 502/503, say), Errors is empty and Body keeps the text.
//
// Callers inspect it with errors.As:
//
//	var apiErr *salesforce.APIError
//	if errors.As(err, &apiErr) && apiErr.HasCode("UNABLE_TO_LOCK_ROW") { ... }
type APIError struct {
	// Status is the HTTP status code, e.g. 400.
	Status int
	// Method and Path identify the request, e.g. "PATCH" and
	// "/services/data/v66.0/jobs/ingest/7505g00000AbCdEAAV". The query
	// string is not included.
	Method, Path string
	// Errors is Salesforce's error list (usually one element).
	Errors []ErrorItem
	// Body is the raw answer when it was not a JSON error list, cut to
	// 1 MiB; empty otherwise.
	Body string
	// RetryAfter is the Retry-After header of the answer, if any.
	RetryAfter string
}

// Error describes the failure in one line: status, request and every
// errorCode with its message.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "salesforce: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	for i, it := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if it.ErrorCode != "" {
			b.WriteString(it.ErrorCode)
			b.WriteString(": ")
		}
		b.WriteString(it.Message)
		if len(it.Fields) > 0 {
			fmt.Fprintf(&b, " (fields %s)", strings.Join(it.Fields, ", "))
		}
	}
	if len(e.Errors) == 0 && e.Body != "" {
		b.WriteString(": ")
		b.WriteString(shorten(e.Body, 300))
	}
	return b.String()
}

// HasCode reports whether Salesforce returned the given errorCode
// (compared case-insensitively).
func (e *APIError) HasCode(code string) bool {
	for _, it := range e.Errors {
		if strings.EqualFold(it.ErrorCode, code) {
			return true
		}
	}
	return false
}

// Code returns the first errorCode, or "" when there is none.
func (e *APIError) Code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].ErrorCode
}

// messageOf returns the message of the first item with the given code.
func (e *APIError) messageOf(code string) string {
	for _, it := range e.Errors {
		if strings.EqualFold(it.ErrorCode, code) {
			return it.Message
		}
	}
	return ""
}

// parseErrorBody turns an error answer into its items (salesforce-api.md
// §6.1): a JSON array of {errorCode, message, fields}. A single object of
// the same shape, or an OAuth-style {"error","error_description"} object, is
// accepted too; anything else is kept as text.
func parseErrorBody(body []byte) ([]ErrorItem, string) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, ""
	}
	switch trimmed[0] {
	case '[':
		var items []ErrorItem
		if err := json.Unmarshal(trimmed, &items); err == nil && len(items) > 0 && items[0].hasContent() {
			return items, ""
		}
	case '{':
		var one struct {
			ErrorItem
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		if err := json.Unmarshal(trimmed, &one); err == nil {
			if one.ErrorItem.hasContent() {
				return []ErrorItem{one.ErrorItem}, ""
			}
			if one.Error != "" {
				return []ErrorItem{{ErrorCode: one.Error, Message: one.ErrorDescription}}, ""
			}
		}
	}
	return nil, textOf(trimmed)
}

func (it ErrorItem) hasContent() bool { return it.ErrorCode != "" || it.Message != "" }

// textOf makes a body printable: invalid UTF-8 is replaced, so an error
// message never carries binary garbage.
func textOf(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// shorten folds s onto one line and cuts it to n bytes for a message,
// marking the cut with the whole length (internal/excerpt).
func shorten(s string, n int) string {
	return excerpt.N(strings.Join(strings.Fields(s), " "), n)
}

// ConfigError reports settings that make a Client unusable, found before
// any request is sent. Problems lists every problem at once, each naming
// the connection field and the fix.
type ConfigError struct {
	// Connection is the name of the connection the settings came from
	// (Config.Connection), e.g. "salesforce_api".
	Connection string
	// Problems are the individual findings.
	Problems []string
}

// Error lists every problem found.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("salesforce: connection %q: %s", e.Connection, strings.Join(e.Problems, "; "))
}

// ErrAlreadyUploaded is wrapped by UploadJobData's error when Salesforce
// refuses the upload because the job already holds data (BULK_API_ERROR
// "Found multipe contents for job", salesforce-api.md §2.4). A caller that
// resumes a job it may have uploaded to before treats it as success.
var ErrAlreadyUploaded = errors.New("salesforce: the job already holds uploaded data")

// ErrJobMayExist is wrapped by CreateJob's error when the request got no
// answer, or a 5xx after which the work may have been done: Salesforce may
// have created a job that nobody knows the id of. It holds no data, stays
// Open and expires (salesforce-api.md §2.6).
var ErrJobMayExist = errors.New("salesforce: the job may have been created, but its id was not received")

// ErrJobTimeout is wrapped by WaitJob's error when a job did not reach a
// final state within Config.JobTimeout.
var ErrJobTimeout = errors.New("salesforce: job did not finish in time")

// ErrTrackerRecordNotFound is wrapped by UpdateStatus's error when no
// tracker record has the given external reference.
var ErrTrackerRecordNotFound = errors.New("salesforce: tracker record not found")

// noAnswerError is a request that got no HTTP answer: connection refused,
// reset or cut, a timeout, or an answer whose body broke off. Whether the
// server did the work is unknown, which is what the retry rules care about.
type noAnswerError struct {
	method, path string
	// call, when set, names the request in the message instead of
	// "METHOD path: no answer from Salesforce" (the login names its URL
	// and connection: the host may not be Salesforce at all).
	call string
	err  error
}

func (e *noAnswerError) Error() string {
	if e.call != "" {
		return fmt.Sprintf("salesforce: %s: %v", e.call, e.err)
	}
	return fmt.Sprintf("salesforce: %s %s: no answer from Salesforce: %v", e.method, e.path, e.err)
}

func (e *noAnswerError) Unwrap() error { return e.err }

// isNoAnswer reports whether err (or what it wraps) is a request that got
// no answer.
func isNoAnswer(err error) bool {
	var na *noAnswerError
	return errors.As(err, &na)
}

// isMultipleContents recognises the refusal of a second upload to one job
// (salesforce-api.md §2.4). The message is matched, typo included, and
// also in its corrected spelling in case Salesforce ever fixes it.
func isMultipleContents(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !apiErr.HasCode("BULK_API_ERROR") {
		return false
	}
	msg := strings.ToLower(apiErr.messageOf("BULK_API_ERROR"))
	return strings.Contains(msg, "found multipe contents") || strings.Contains(msg, "found multiple contents")
}

var (
	_ error = (*APIError)(nil)
	_ error = (*ConfigError)(nil)
	_ error = (*noAnswerError)(nil)
)
