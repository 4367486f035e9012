package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// SObjectDescribe is the part of an sObject's describe the tool uses
// (salesforce-api.md §7.2).
type SObjectDescribe struct {
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	KeyPrefix  string          `json:"keyPrefix"`
	Createable bool            `json:"createable"`
	Updateable bool            `json:"updateable"`
	Custom     bool            `json:"custom"`
	Fields     []FieldDescribe `json:"fields"`
}

// FieldDescribe is one entry of SObjectDescribe.Fields (salesforce-api.md §7.2).
type FieldDescribe struct {
	Name              string          `json:"name"`
	Type              string          `json:"type"`
	Length            int             `json:"length"`
	Precision         int             `json:"precision"`
	Scale             int             `json:"scale"`
	Digits            int             `json:"digits"`
	Nillable          bool            `json:"nillable"`
	Createable        bool            `json:"createable"`
	Updateable        bool            `json:"updateable"`
	DefaultedOnCreate bool            `json:"defaultedOnCreate"`
	ExternalID        bool            `json:"externalId"`
	IDLookup          bool            `json:"idLookup"`
	Unique            bool            `json:"unique"`
	CaseSensitive     bool            `json:"caseSensitive"`
	Calculated        bool            `json:"calculated"`
	AutoNumber        bool            `json:"autoNumber"`
	Custom            bool            `json:"custom"`
	ReferenceTo       []string        `json:"referenceTo"`
	RelationshipName  string          `json:"relationshipName"`
	PicklistValues    []PicklistValue `json:"picklistValues"`
}

// PicklistValue is one allowed value of a picklist field.
type PicklistValue struct {
	Active       bool   `json:"active"`
	DefaultValue bool   `json:"defaultValue"`
	Label        string `json:"label"`
	Value        string `json:"value"`
}

// Field returns the field with the given API name (case-insensitive, as
// Salesforce matches names), or nil.
func (d *SObjectDescribe) Field(name string) *FieldDescribe {
	for i := range d.Fields {
		if strings.EqualFold(d.Fields[i].Name, name) {
			return &d.Fields[i]
		}
	}
	return nil
}

var apiNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

func checkAPIName(what, name string) error {
	if !apiNameRE.MatchString(name) {
		return fmt.Errorf("salesforce: %s %q is not an API name (letters, digits and _, starting with a letter)", what, name)
	}
	return nil
}

// Describe returns the object's metadata. An unknown object is an
// *APIError with status 404 (NOT_FOUND).
//
// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
func (c *Client) Describe(ctx context.Context, object string) (*SObjectDescribe, error) {
	if err := checkAPIName("object", object); err != nil {
		return nil, err
	}
	d, err := c.describe(ctx, object)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", object, err)
	}
	return d, nil
}

// describe is Describe without the "describe <object>" wrapping, for
// callers that say what they were doing themselves (the request path
// names the object and the describe already).
func (c *Client) describe(ctx context.Context, object string) (*SObjectDescribe, error) {
	var d SObjectDescribe
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: c.dataPath("sobjects", object, "describe") + "/"}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// CheckAPIVersion asks the org which REST API versions it offers
// (GET /services/data/, salesforce-api.md §6.5) and fails, naming them,
// when Config.APIVersion is not among them.
//
// https://developer.salesforce.com/docs/platform/api-rest/guide/resources-versions.html
func (c *Client) CheckAPIVersion(ctx context.Context) error {
	var versions []struct {
		Label   string `json:"label"`
		Version string `json:"version"`
	}
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: "/services/data/", noAuth: true}, &versions); err != nil {
		return fmt.Errorf("list API versions: %w", err)
	}
	want := strings.TrimPrefix(c.version, "v")
	var have []string
	for _, v := range versions {
		if v.Version == want {
			return nil
		}
		have = append(have, v.Version)
	}
	return &VersionError{Version: c.version, Offered: have}
}

// Query runs a SOQL query and calls fn with each record, page after page
// (nextRecordsUrl), so a large answer is never held whole. It returns the
// query's totalSize. Numbers arrive as json.Number.
//
// https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html
func (c *Client) Query(ctx context.Context, soql string, fn func(record map[string]any) error) (total int64, err error) {
	path, query := c.dataPath("query"), url.Values{"q": {soql}}
	for page := 1; ; page++ {
		var resp struct {
			TotalSize      int64             `json:"totalSize"`
			Done           bool              `json:"done"`
			Records        []json.RawMessage `json:"records"`
			NextRecordsURL string            `json:"nextRecordsUrl"`
		}
		if _, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: query}, &resp); err != nil {
			return total, fmt.Errorf("query %q (page %d): %w", shorten(soql, 120), page, err)
		}
		total = resp.TotalSize
		for _, raw := range resp.Records {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var rec map[string]any
			if err := dec.Decode(&rec); err != nil {
				return total, fmt.Errorf("query %q: record is not a JSON object: %w", shorten(soql, 120), err)
			}
			if fn != nil {
				if err := fn(rec); err != nil {
					return total, err
				}
			}
		}
		if resp.Done || resp.NextRecordsURL == "" {
			return total, nil
		}
		next, err := url.Parse(resp.NextRecordsURL)
		if err != nil || !strings.HasPrefix(next.EscapedPath(), "/services/data/") {
			return total, fmt.Errorf("query %q: unusable nextRecordsUrl %q", shorten(soql, 120), resp.NextRecordsURL)
		}
		path, query = next.EscapedPath(), next.Query()
	}
}

// checkRef refuses tracker references the REST API cannot route
// (salesforce-api.md §5.4): a '/' (whether an encoded %2F is accepted is
// not established) and anything after a dot, since values ending in what
// looks like a file extension or domain (user@example.inc) are documented
// to be misrouted and answer 404. Control characters are refused too.
func checkRef(ref string) error {
	const advice = "use letters, digits, '_' and '-' (e.g. PRODUCT_PRICE)"
	switch {
	case strings.TrimSpace(ref) == "":
		return errors.New("salesforce: status tracker: the reference is empty; " + advice)
	case strings.Contains(ref, "/"):
		return fmt.Errorf("salesforce: status tracker: reference %q contains '/', which Salesforce cannot route as an external id in a URL; %s", ref, advice)
	case strings.Contains(ref, "."):
		return fmt.Errorf("salesforce: status tracker: reference %q contains '.'; Salesforce misroutes external ids that end like a file extension or domain (e.g. x.inc) and answers 404; %s", ref, advice)
	case strings.IndexFunc(ref, unicode.IsControl) >= 0:
		return fmt.Errorf("salesforce: status tracker: reference %q contains control characters; %s", ref, advice)
	}
	return nil
}

// escapeSegment percent-encodes s as one path segment, leaving only RFC
// 3986 unreserved characters as they are (space becomes %20, never '+').
func escapeSegment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '.' || ch == '~' {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

func (c *Client) trackerPath(ref string) string {
	t := c.cfg.Tracker
	return c.dataPath("sobjects", t.SFObject, t.ExternalIDField) + "/" + escapeSegment(ref)
}

// ensureTracker checks once, by describe, that the tracker object and its
// fields exist and fit (salesforce-api.md §5.3): afterwards a 404 on an
// updateOnly upsert can only mean "no record with this reference".
func (c *Client) ensureTracker(ctx context.Context) (*SObjectDescribe, error) {
	c.mu.Lock()
	ready, meta := c.trackerReady, c.trackerMeta
	c.mu.Unlock()
	if ready {
		return meta, nil
	}
	t := c.cfg.Tracker // its names were checked by New (TrackerConfig.Validate)
	// The wrapped error already says "salesforce:", the describe request
	// (method, path with the object) and the answer: the messages below
	// add only what the tracker makes of it, so nothing reads twice.
	d, err := c.describe(ctx, t.SFObject)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return nil, fmt.Errorf("status tracker: object %s does not exist in the org or the run-as user cannot see it; deploy it or configure the tracker object: %w", t.SFObject, err)
		}
		return nil, fmt.Errorf("status tracker: check the tracker object: %w", err)
	}
	var problems []string
	if f := d.Field(t.ExternalIDField); f == nil {
		problems = append(problems, fmt.Sprintf("it has no field %s (the tracker's external id field)", t.ExternalIDField))
	} else if !f.ExternalID && !f.IDLookup {
		problems = append(problems, fmt.Sprintf("its field %s is not an External ID field, so records cannot be addressed by it", t.ExternalIDField))
	}
	if f := d.Field(t.StatusField); f == nil {
		problems = append(problems, fmt.Sprintf("it has no field %s (the tracker's status field)", t.StatusField))
	} else if !f.Updateable {
		problems = append(problems, fmt.Sprintf("its field %s is not updateable by the run-as user", t.StatusField))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("salesforce: status tracker object %s: %s; fix the object or the tracker settings", t.SFObject, strings.Join(problems, "; "))
	}
	c.mu.Lock()
	c.trackerReady, c.trackerMeta = true, d
	c.mu.Unlock()
	return d, nil
}

// UpsertStatus writes status (and the extra fields, API name → JSON value)
// to the tracker record whose external id is ref, creating the record when
// none exists (PATCH by external id without updateOnly, salesforce-api.md
// §5.1–5.2). ref must be routable (letters, digits, '_', '-', spaces...;
// no '/' or '.'), see §5.4. The first call checks the tracker object by
// describe. The call is repeated on lock contention and lost answers: the
// same upsert twice leaves the same record.
//
// https://developer.salesforce.com/docs/platform/api-rest/guide/resources-sobject-upsert-patch.html
func (c *Client) UpsertStatus(ctx context.Context, ref, status string, fields map[string]any) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	d, err := c.ensureTracker(ctx)
	if err != nil {
		return err
	}
	body, err := trackerBody(c.cfg.Tracker, d, ref, status, fields)
	if err != nil {
		return err
	}
	return c.patchTracker(ctx, ref, body, false)
}

// trackerBody is the JSON body of a tracker write: the status and the
// extra fields, each checked against the tracker object's describe.
func trackerBody(t TrackerConfig, d *SObjectDescribe, ref, status string, fields map[string]any) (map[string]any, error) {
	body := map[string]any{t.StatusField: status}
	var unknown []string
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case strings.EqualFold(k, "Id"), strings.EqualFold(k, t.ExternalIDField):
			return nil, fmt.Errorf("salesforce: status tracker %q: field %s identifies the record and must not be in the body (salesforce-api.md §5.1)", ref, k)
		case strings.EqualFold(k, t.StatusField):
			return nil, fmt.Errorf("salesforce: status tracker %q: the status goes in the status argument, not in fields[%q]", ref, k)
		case d.Field(k) == nil:
			unknown = append(unknown, k)
		}
		body[k] = fields[k]
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("salesforce: status tracker %q: %s has no field %s", ref, t.SFObject, strings.Join(unknown, ", "))
	}
	return body, nil
}

// UpdateStatus sets the status of the existing tracker record whose
// external id is ref, never creating one (PATCH ?updateOnly=true,
// salesforce-api.md §5.3, API v61.0 and later). When no record has that
// reference the error wraps ErrTrackerRecordNotFound and says how to
// create it.
//
// https://help.salesforce.com/s/articleView?id=release-notes.rn_api_new_updateonly_param.htm&release=250&type=5
func (c *Client) UpdateStatus(ctx context.Context, ref, status string) error {
	return c.UpdateStatusFields(ctx, ref, status, nil)
}

// UpdateStatusFields is UpdateStatus writing the extra fields (API name →
// JSON value) in the same PATCH, checked as UpsertStatus checks them.
func (c *Client) UpdateStatusFields(ctx context.Context, ref, status string, fields map[string]any) error {
	if c.apiMajor() < 61 {
		return fmt.Errorf("salesforce: status tracker: updating the status without creating a record needs updateOnly, which Salesforce added in API v61.0; the connection uses %s: set its extra api_version to 61.0 or later", c.version)
	}
	if err := checkRef(ref); err != nil {
		return err
	}
	d, err := c.ensureTracker(ctx)
	if err != nil {
		return err
	}
	body, err := trackerBody(c.cfg.Tracker, d, ref, status, fields)
	if err != nil {
		return err
	}
	return c.patchTracker(ctx, ref, body, true)
}

func (c *Client) patchTracker(ctx context.Context, ref string, body map[string]any, updateOnly bool) error {
	t := c.cfg.Tracker
	bf, err := jsonBody(body)
	if err != nil {
		return fmt.Errorf("salesforce: status tracker %q: %w", ref, err)
	}
	req := &request{method: http.MethodPatch, path: c.trackerPath(ref), body: bf, contentType: "application/json", repeat: repeatIdempotent}
	if updateOnly {
		req.query = url.Values{"updateOnly": {"true"}}
	}
	_, err = c.do(ctx, req, nil)
	if err == nil {
		return nil
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Status == http.StatusNotFound && updateOnly:
			// ensureTracker proved object and field exist, so the 404
			// means no record matched (§5.3).
			return fmt.Errorf("%w: no %s record has %s = %q, and this update never creates one; create it first (in Salesforce, or let sfmigrate create it: status_tracker.create: true in the tables config, the default, and 'sfmigrate task authenticate --run-id ID'), then rerun: %w",
				ErrTrackerRecordNotFound, t.SFObject, t.ExternalIDField, ref, err)
		case apiErr.Status == http.StatusMultipleChoices:
			return fmt.Errorf("salesforce: status tracker: several %s records have %s = %q; make the field unique and remove the duplicates: %w",
				t.SFObject, t.ExternalIDField, ref, err)
		}
	}
	return fmt.Errorf("salesforce: status tracker: set %s of %s %q: %w", t.StatusField, t.SFObject, ref, err)
}

// apiMajor is the major number of the configured API version (66 for v66.0).
func (c *Client) apiMajor() int {
	m := versionRE.FindStringSubmatch(c.version)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1]) // the pattern guarantees digits
	return n
}
