package sfemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// errItem is one element of the REST error array (salesforce-api.md 6.1).
// Field order matches the real bodies: message, errorCode, fields.
// Fields is present for record-level (DML) errors, even when empty, and
// absent (nil) for request-level errors.
type errItem struct {
	Message   string
	ErrorCode string
	Fields    []string
}

// MarshalJSON writes the item with "fields" only when Fields is not nil:
// encoding/json's omitempty would also drop an empty list.
func (e errItem) MarshalJSON() ([]byte, error) {
	type withFields struct {
		Message   string   `json:"message"`
		ErrorCode string   `json:"errorCode"`
		Fields    []string `json:"fields"`
	}
	type noFields struct {
		Message   string `json:"message"`
		ErrorCode string `json:"errorCode"`
	}
	if e.Fields == nil {
		return json.Marshal(noFields{e.Message, e.ErrorCode})
	}
	return json.Marshal(withFields(e))
}

// apiError is what a handler returns to fail a request: one HTTP status and
// the error array. writeError is the only place that turns it into bytes.
type apiError struct {
	status int
	items  []errItem
	allow  string // Allow header for 405
}

func (e *apiError) Error() string {
	if len(e.items) == 0 {
		return strconv.Itoa(e.status)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.items[0].ErrorCode, e.items[0].Message)
}

func newAPIError(status int, code, msg string, fields ...string) *apiError {
	return &apiError{status: status, items: []errItem{{Message: msg, ErrorCode: code, Fields: fields}}}
}

// Errors of salesforce-api.md 6.3 and 2.10 used in several places.
func errNotFound() *apiError {
	return newAPIError(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

func errSession() *apiError {
	return newAPIError(http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
}

// errMethod is the 405 of salesforce-api.md 6.3: "HTTP Method 'PATCH' not
// allowed. Allowed are GET,HEAD,POST" [O].
func errMethod(method string, allowed []string) *apiError {
	e := newAPIError(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
		fmt.Sprintf("HTTP Method '%s' not allowed. Allowed are %s", method, strings.Join(allowed, ",")))
	e.allow = strings.Join(allowed, ", ")
	return e
}

// errJobState is the [I] body for illegal job state changes and uploads to
// a job that is not Open (salesforce-api.md 2.4, 2.6, §9 item 5).
func errJobState(msg string) *apiError {
	return newAPIError(http.StatusBadRequest, "INVALIDJOBSTATE", msg)
}

// errJSON builds JSON_PARSER_ERROR (salesforce-api.md 6.3). Salesforce's
// messages come from Jackson and end with "at [line:L, column:C]"; the
// position is computed from Go's decoder offset [I: wording approximated].
func errJSON(body []byte, err error) *apiError {
	if len(body) == 0 {
		return newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR",
			"The HTTP entity body is required, but this request has no entity body.")
	}
	var off int64
	msg := "Unexpected end-of-input"
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
		if off > 0 && int(off) <= len(body) {
			c := body[off-1]
			msg = fmt.Sprintf("Unexpected character ('%c' (code %d))", c, c)
		}
		if strings.Contains(e.Error(), "unexpected end") {
			msg = "Unexpected end-of-input"
		}
	case *json.UnmarshalTypeError:
		off = e.Offset
		msg = fmt.Sprintf("Cannot deserialize value of type %s from %s value", javaType(e.Type.Kind().String()), strings.ToUpper(e.Value))
	default:
		off = int64(len(body))
	}
	line, col := 1, 1
	for i := 0; i < int(off)-1 && i < len(body); i++ {
		if body[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", fmt.Sprintf("%s at [line:%d, column:%d]", msg, line, col))
}

func javaType(goKind string) string {
	switch goKind {
	case "string":
		return "java.lang.String"
	case "bool":
		return "boolean"
	case "map", "struct":
		return "java.util.LinkedHashMap"
	}
	return goKind
}

// errUnknown is Salesforce's 500 body: an UNKNOWN_EXCEPTION with an error id.
func errUnknown(id string) *apiError {
	return newAPIError(http.StatusInternalServerError, "UNKNOWN_EXCEPTION",
		"An unexpected error occurred. Please include this ErrorId if you contact support: "+id)
}

// writeError writes e as Salesforce's error envelope: a JSON array of
// {message, errorCode, fields} with the status (salesforce-api.md 6.1).
// maxErrorMessage bounds the message of an error answer, in bytes.
const maxErrorMessage = 2000

func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	if e.allow != "" {
		h.Set("Allow", e.allow)
	}
	for i := range e.items {
		// A message quotes what the client sent; a huge value is quoted
		// as an excerpt with its length, never whole.
		e.items[i].Message = excerpt.N(e.items[i].Message, maxErrorMessage)
	}
	body, _ := json.Marshal(e.items) // errItem always marshals
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body) // a failed write means the client went away; nothing to do
}

// oauthError is the token endpoint's error body {"error","error_description"}
// (salesforce-api.md 1.3): a JSON object, not an array.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }
