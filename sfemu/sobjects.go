package sfemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// sObject REST resources (salesforce-api.md §5, §7, §8):
// https://developer.salesforce.com/docs/platform/api-rest/guide/resources-sobject-upsert-patch.html
// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm

func (s *Server) objectParam(name string) (*object, *apiError) {
	ob := s.org.object(name)
	if ob == nil {
		return nil, errNotFound()
	}
	return ob, nil
}

// recordBody reads a REST write's JSON body (field API name -> value) and
// converts it to per-slot changes with the same rules as a Bulk row
// (convertField). key is the External ID field named in the URL of an
// upsert, which the body must not set again; insert refuses an Id.
func (s *Server) recordBody(rq *request, ob *object, key *field, insert bool) ([]change, []relCol, *apiError) {
	body, aerr := readBody(rq.r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, errJSON(nil, nil)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, nil, errJSON(body, err)
	}
	if m == nil {
		return nil, nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize instance of record from null value at [line:1, column:1]")
	}
	ch := make([]change, len(ob.data))
	var rels []relCol
	for name, val := range m {
		if strings.EqualFold(name, "attributes") {
			continue
		}
		f := ob.byName[strings.ToLower(name)]
		if f == nil {
			rf := ob.byRel[strings.ToLower(name)]
			if rf == nil {
				return nil, nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
					fmt.Sprintf("No such column '%s' on sobject of type %s", excerpt.Of(name), ob.name))
			}
			rc, v, err := relFromJSON(rf, val)
			if err != nil {
				return nil, nil, err
			}
			if v == nil {
				ch[rf.slot] = change{st: stNull}
			} else {
				ch[rf.slot] = change{st: stRel, v: v}
				rels = append(rels, rc)
			}
			continue
		}
		switch {
		case f == key:
			// [I]: older docs say the key must not be in the body (5.1).
			return nil, nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("The external ID field %s is given in the URL; do not also set it in the body", f.name), f.name)
		case f.kind == kindID && insert:
			return nil, nil, restErr(errIDOnInsert())
		case f.slot < 0:
			return nil, nil, restErr(errReadOnly(f))
		}
		var text []byte
		switch v := val.(type) {
		case nil:
			ch[f.slot] = change{st: stNull}
			continue
		case string:
			text = []byte(v)
		case bool:
			text = strconv.AppendBool(nil, v)
		case json.Number:
			text = []byte(v.String())
		default:
			return nil, nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR",
				fmt.Sprintf("Cannot deserialize instance of %s from %s value", f.def.Type, jsonKind(v)))
		}
		if len(text) == 0 && f.kind != kindString && f.kind != kindEmail {
			ch[f.slot] = change{st: stNull}
			continue
		}
		out, e := convertField(f, text, nil)
		if e != nil {
			return nil, nil, restErr(e)
		}
		if len(out) == 0 {
			ch[f.slot] = change{st: stNull}
			continue
		}
		ch[f.slot] = change{st: stSet, v: out}
	}
	return ch, rels, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "START_OBJECT"
	case []any:
		return "START_ARRAY"
	}
	return "VALUE"
}

// relFromJSON reads a parent given by key in a JSON body,
// {"Account__r": {"External_Id__c": "A-1"}}, and returns the key value
// (nil for a JSON null, which clears the lookup).
func relFromJSON(rf *field, val any) (relCol, []byte, *apiError) {
	if val == nil {
		return relCol{}, nil, nil
	}
	m, ok := val.(map[string]any)
	if !ok {
		return relCol{}, nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize instance of "+rf.refTo+" from "+jsonKind(val)+" value")
	}
	for k, v := range m {
		if strings.EqualFold(k, "attributes") {
			continue
		}
		tf := rf.refObj.byName[strings.ToLower(k)]
		if tf == nil || (!tf.extID && tf.kind != kindID) {
			return relCol{}, nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("Foreign key field %s on %s is not an External ID or idLookup field", excerpt.Of(k), rf.refTo))
		}
		var text string
		switch x := v.(type) {
		case string:
			text = x
		case json.Number:
			text = x.String()
		default:
			return relCol{}, nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize the key of "+rf.relName)
		}
		return relCol{ref: rf, key: tf}, []byte(text), nil
	}
	return relCol{}, nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD", "No key field given for relationship "+rf.relName)
}

// restErr answers a record-level failure in the REST envelope (6.1):
// status 400 and the same code, message and fields as the Bulk sf__Error.
func restErr(e *rowErr) *apiError {
	return &apiError{status: http.StatusBadRequest, items: []errItem{e.item()}}
}

// saveResult is the REST DML answer: {"id","success","errors"[,"created"]}.
type saveResult struct {
	ID      string    `json:"id"`
	Success bool      `json:"success"`
	Errors  []errItem `json:"errors"`
	Created *bool     `json:"created,omitempty"`
}

// recordURL is a record's REST path in this API version.
func recordURL(version string, ob *object, id string) string {
	return "/services/data/v" + version + "/sobjects/" + ob.name + "/" + id
}

// multipleChoices is the 300 answer for a key that matches several
// records: the array of their URLs; nothing was written (5.2, body shape [I]).
func multipleChoices(rq *request, ob *object, ids []string) *reply {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = recordURL(rq.version, ob, id)
	}
	return &reply{status: http.StatusMultipleChoices, body: urls}
}

// keyField resolves the field of a /sobjects/{Object}/{Field}/{value} URL:
// it must exist (else 404, 5.2 [D]) and be an External ID or Id.
func keyField(ob *object, name string) (*field, *apiError) {
	kf := ob.byName[strings.ToLower(name)]
	if kf == nil {
		return nil, errNotFound()
	}
	if !kf.extID && kf.kind != kindID {
		// Status [O]; body [I] (text seen for SOAP/Metadata upserts).
		return nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
			"Invalid field for upsert, must be an External Id custom or standard indexed field: "+kf.name)
	}
	return kf, nil
}

// recordRequest reads the object of the path and the record body of a
// create (insert) or an update by ID.
func (s *Server) recordRequest(rq *request, insert bool) (*object, []change, []relCol, *apiError) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, nil, nil, aerr
	}
	ch, rels, aerr := s.recordBody(rq, ob, nil, insert)
	return ob, ch, rels, aerr
}

// handleCreate serves POST /sobjects/{Object}: 201 {"id","success":true,"errors":[]} (8).
func (s *Server) handleCreate(rq *request) (*reply, error) {
	ob, ch, rels, aerr := s.recordRequest(rq, true)
	if aerr != nil {
		return nil, aerr
	}
	id, aerr := s.store.createRecord(ob, ch, rels)
	if aerr != nil {
		return nil, aerr
	}
	return &reply{status: http.StatusCreated, location: recordURL(rq.version, ob, id),
		body: saveResult{ID: id, Success: true, Errors: []errItem{}}}, nil
}

func readBody(r *http.Request) ([]byte, *apiError) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 50<<20)); err != nil {
		return nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "could not read the request body: "+err.Error())
	}
	return buf.Bytes(), nil
}

// handleUpsert serves PATCH /sobjects/{Object}/{Field}/{value}[?updateOnly=true]
// (salesforce-api.md 5.1-5.4).
func (s *Server) handleUpsert(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	kf, aerr := keyField(ob, rq.params[1])
	if aerr != nil {
		return nil, aerr
	}
	// updateOnly exists from v61.0 (5.3); older versions ignore it [I].
	updateOnly := rq.major >= 61 && strings.EqualFold(rq.r.URL.Query().Get("updateOnly"), "true")
	ch, rels, aerr := s.recordBody(rq, ob, kf, false)
	if aerr != nil {
		return nil, aerr
	}
	res, aerr := s.store.upsertRecord(ob, kf, rq.params[2], ch, rels, updateOnly)
	if aerr != nil {
		return nil, aerr
	}
	if res.several != nil {
		return multipleChoices(rq, ob, res.several), nil
	}
	id, created := res.id, res.created
	switch {
	case created:
		res := saveResult{ID: id, Success: true, Errors: []errItem{}}
		if rq.major >= 46 {
			res.Created = &created
		}
		return &reply{status: http.StatusCreated, location: recordURL(rq.version, ob, id), body: res}, nil
	case rq.major < 46:
		return &reply{status: http.StatusNoContent}, nil // v45.0 and earlier [D]
	}
	return &reply{status: http.StatusOK, body: saveResult{ID: id, Success: true, Errors: []errItem{}, Created: &created}}, nil
}

// keyParams resolves the object and the key field of
// /sobjects/{Object}/{Field}/{value}; a key field that is not one answers
// 404 here, as Salesforce does for GET and DELETE.
func (s *Server) keyParams(rq *request) (*object, *field, *apiError) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, nil, aerr
	}
	kf, aerr := keyField(ob, rq.params[1])
	if aerr != nil {
		return nil, nil, errNotFound()
	}
	return ob, kf, nil
}

// handleGetRecord serves GET /sobjects/{Object}/{id}[?fields=a,b] (8).
func (s *Server) handleGetRecord(rq *request) (*reply, error) {
	if o := s.sysObjectNamed(rq.params[0]); o != nil {
		return s.getSysRecord(rq, o)
	}
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	fields, ferr := fieldsParam(ob, rq.r.URL.Query().Get("fields"))
	raw, aerr := s.store.recordJSON(ob, rq.params[1], fields, ferr, rq.version)
	if aerr != nil {
		return nil, aerr
	}
	return recordReply(raw), nil
}

// handleGetByExternalID serves GET /sobjects/{Object}/{Field}/{value}.
func (s *Server) handleGetByExternalID(rq *request) (*reply, error) {
	ob, kf, aerr := s.keyParams(rq)
	if aerr != nil {
		return nil, aerr
	}
	fields, ferr := fieldsParam(ob, rq.r.URL.Query().Get("fields"))
	raw, several, aerr := s.store.recordJSONByKey(ob, kf, rq.params[2], fields, ferr, rq.version)
	if aerr != nil {
		return nil, aerr
	}
	if several != nil {
		return multipleChoices(rq, ob, several), nil
	}
	return recordReply(raw), nil
}

// handleUpdateRecord serves PATCH /sobjects/{Object}/{id}: 204 on success.
func (s *Server) handleUpdateRecord(rq *request) (*reply, error) {
	ob, ch, rels, aerr := s.recordRequest(rq, false)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.store.updateRecord(ob, rq.params[1], ch, rels); aerr != nil {
		return nil, aerr
	}
	return &reply{status: http.StatusNoContent}, nil
}

// handleDeleteRecord serves DELETE /sobjects/{Object}/{id}: 204, or
// UNABLE_TO_LOCK_ROW for a record locked with LockRecords.
func (s *Server) handleDeleteRecord(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.store.deleteRecord(ob, rq.params[1]); aerr != nil {
		return nil, aerr
	}
	return &reply{status: http.StatusNoContent}, nil
}

// handleDeleteByExternalID serves DELETE /sobjects/{Object}/{Field}/{value}.
func (s *Server) handleDeleteByExternalID(rq *request) (*reply, error) {
	ob, kf, aerr := s.keyParams(rq)
	if aerr != nil {
		return nil, aerr
	}
	several, aerr := s.store.deleteRecordByKey(ob, kf, rq.params[2])
	if aerr != nil {
		return nil, aerr
	}
	if several != nil {
		return multipleChoices(rq, ob, several), nil
	}
	return &reply{status: http.StatusNoContent}, nil
}

// fieldsParam parses ?fields=a,b; empty means every field.
func fieldsParam(ob *object, list string) ([]*field, *apiError) {
	if list == "" {
		return ob.fields, nil
	}
	var out []*field
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		f := ob.byName[strings.ToLower(name)]
		if f == nil {
			return nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", excerpt.Of(name), ob.name))
		}
		out = append(out, f)
	}
	return out, nil
}

// recordReply answers a REST GET of one record.
func recordReply(raw []byte) *reply {
	return &reply{status: http.StatusOK, contentType: "application/json;charset=UTF-8", raw: raw}
}

// appendRecordJSONLocked renders a record: "attributes" first, then the
// fields in the order asked (8). The caller holds the store lock.
func appendRecordJSONLocked(dst []byte, version string, t *table, seq uint32, fields []*field) []byte {
	rec := t.rec(seq)
	id := t.id(seq)
	dst = appendAttributes(dst, version, t.obj, id)
	for _, f := range fields {
		dst = append(dst, ',')
		dst = appendJSONString(dst, f.name)
		dst = append(dst, ':')
		dst = appendFieldJSON(dst, f, rec, id)
	}
	return append(dst, '}')
}

// appendAttributes opens a record's JSON with its "attributes" (type and
// URL), as every REST record and query row starts (8).
func appendAttributes(dst []byte, version string, ob *object, id string) []byte {
	dst = append(dst, `{"attributes":{"type":`...)
	dst = appendJSONString(dst, ob.name)
	dst = append(dst, `,"url":`...)
	dst = appendJSONString(dst, recordURL(version, ob, id))
	return append(dst, '}')
}

// appendFieldJSON writes one field value with its JSON type: text, dates
// and IDs as strings, booleans as true/false, numbers as numbers.
func appendFieldJSON(dst []byte, f *field, rec *record, id string) []byte {
	switch f.system {
	case "Id":
		return appendJSONString(dst, id)
	case "CreatedDate":
		return appendJSONString(dst, fmtTime(time.UnixMilli(rec.created)))
	case "LastModifiedDate", "SystemModstamp":
		return appendJSONString(dst, fmtTime(time.UnixMilli(rec.modified)))
	}
	v := valueAt(rec.vals, f.slot)
	if v == "" {
		return append(dst, "null"...)
	}
	switch f.kind {
	case kindBoolean, kindInt, kindDouble:
		return append(dst, v...)
	}
	return appendJSONString(dst, v)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // strings always marshal
	return append(dst, b...)
}

// describeField is one entry of describe's fields[] (salesforce-api.md 7.2).
type describeField struct {
	Name               string          `json:"name"`
	Label              string          `json:"label"`
	Type               string          `json:"type"`
	SoapType           string          `json:"soapType"`
	Length             int             `json:"length"`
	ByteLength         int             `json:"byteLength"`
	Precision          int             `json:"precision"`
	Scale              int             `json:"scale"`
	Digits             int             `json:"digits"`
	Nillable           bool            `json:"nillable"`
	Createable         bool            `json:"createable"`
	Updateable         bool            `json:"updateable"`
	DefaultedOnCreate  bool            `json:"defaultedOnCreate"`
	ExternalID         bool            `json:"externalId"`
	IDLookup           bool            `json:"idLookup"`
	Unique             bool            `json:"unique"`
	CaseSensitive      bool            `json:"caseSensitive"`
	ReferenceTo        []string        `json:"referenceTo"`
	RelationshipName   *string         `json:"relationshipName"`
	Calculated         bool            `json:"calculated"`
	AutoNumber         bool            `json:"autoNumber"`
	Custom             bool            `json:"custom"`
	Filterable         bool            `json:"filterable"`
	Sortable           bool            `json:"sortable"`
	RestrictedPicklist bool            `json:"restrictedPicklist"`
	PicklistValues     []picklistEntry `json:"picklistValues"`
}

type picklistEntry struct {
	Active       bool    `json:"active"`
	DefaultValue bool    `json:"defaultValue"`
	Label        string  `json:"label"`
	ValidFor     *string `json:"validFor"`
	Value        string  `json:"value"`
}

var soapTypes = map[fieldKind]string{
	kindString: "xsd:string", kindEmail: "xsd:string", kindPicklist: "xsd:string", kindMultiPicklist: "xsd:string",
	kindBoolean: "xsd:boolean", kindInt: "xsd:int", kindDouble: "xsd:double", kindDate: "xsd:date",
	kindDateTime: "xsd:dateTime", kindReference: "tns:ID", kindID: "tns:ID",
}

func describeOf(f *field) describeField {
	d := describeField{Name: f.name, Label: f.label, Type: f.def.Type, SoapType: soapTypes[f.kind],
		ReferenceTo: []string{}, PicklistValues: []picklistEntry{}, Custom: f.custom,
		Filterable: true, Sortable: f.kind != kindMultiPicklist}
	switch f.system {
	case "Id":
		d.Type, d.Length, d.ByteLength, d.IDLookup, d.DefaultedOnCreate = "id", 18, 18, true, true
		d.CaseSensitive = true
		return d
	case "CreatedDate", "LastModifiedDate", "SystemModstamp":
		d.Type, d.DefaultedOnCreate = "datetime", true
		return d
	}
	d.Createable, d.Updateable = true, true
	d.Nillable = !f.required && f.kind != kindBoolean
	d.DefaultedOnCreate = f.kind == kindBoolean
	d.ExternalID, d.Unique, d.CaseSensitive = f.extID, f.unique, f.caseSens
	d.IDLookup = f.extID
	switch f.kind {
	case kindString, kindEmail, kindPicklist, kindMultiPicklist, kindReference:
		d.Length, d.ByteLength = f.length, f.length*3
	case kindInt:
		d.Digits = f.precision
	case kindDouble:
		d.Precision, d.Scale = f.precision, f.scale
	}
	if f.kind == kindReference {
		d.ReferenceTo = []string{f.refTo}
		rn := f.relName
		d.RelationshipName = &rn
	}
	if f.values != nil {
		d.RestrictedPicklist = f.restricted
		for _, v := range f.values {
			d.PicklistValues = append(d.PicklistValues, picklistEntry{Active: true, Label: v, Value: v})
		}
	}
	return d
}

// handleDescribe serves GET /sobjects/{Object}/describe (salesforce-api.md 7).
func (s *Server) handleDescribe(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	if since, err := http.ParseTime(rq.r.Header.Get("If-Modified-Since")); err == nil && !s.started.Truncate(time.Second).After(since) {
		// The definitions have not changed since then (7.1 [D]).
		return &reply{status: http.StatusNotModified}, nil
	}
	fields := make([]describeField, 0, len(ob.fields))
	for _, f := range ob.fields {
		fields = append(fields, describeOf(f))
	}
	type describe struct {
		Name        string            `json:"name"`
		Label       string            `json:"label"`
		LabelPlural string            `json:"labelPlural"`
		KeyPrefix   string            `json:"keyPrefix"`
		Custom      bool              `json:"custom"`
		Createable  bool              `json:"createable"`
		Updateable  bool              `json:"updateable"`
		Deletable   bool              `json:"deletable"`
		Queryable   bool              `json:"queryable"`
		Fields      []describeField   `json:"fields"`
		URLs        map[string]string `json:"urls"`
	}
	base := "/services/data/v" + rq.version + "/sobjects/" + ob.name
	return &reply{status: http.StatusOK, body: describe{
		Name: ob.name, Label: ob.label, LabelPlural: ob.label + "s", KeyPrefix: ob.prefix, Custom: ob.custom,
		Createable: true, Updateable: true, Deletable: true, Queryable: true, Fields: fields,
		URLs: map[string]string{"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}"},
	}}, nil
}

type sobjectSummary struct {
	Name       string            `json:"name"`
	Label      string            `json:"label"`
	KeyPrefix  string            `json:"keyPrefix"`
	Custom     bool              `json:"custom"`
	Createable bool              `json:"createable"`
	Updateable bool              `json:"updateable"`
	Queryable  bool              `json:"queryable"`
	URLs       map[string]string `json:"urls"`
}

func summaryOf(rq *request, ob *object) sobjectSummary {
	base := "/services/data/v" + rq.version + "/sobjects/" + ob.name
	return sobjectSummary{Name: ob.name, Label: ob.label, KeyPrefix: ob.prefix, Custom: ob.custom,
		Createable: true, Updateable: true, Queryable: true,
		URLs: map[string]string{"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}"}}
}

// handleGlobalDescribe serves GET /sobjects: the org's objects.
func (s *Server) handleGlobalDescribe(rq *request) (*reply, error) {
	out := struct {
		Encoding     string           `json:"encoding"`
		MaxBatchSize int              `json:"maxBatchSize"`
		SObjects     []sobjectSummary `json:"sobjects"`
	}{Encoding: "UTF-8", MaxBatchSize: 200}
	for _, ob := range s.org.objects {
		out.SObjects = append(out.SObjects, summaryOf(rq, ob))
	}
	return &reply{status: http.StatusOK, body: out}, nil
}

// handleSObjectInfo serves GET /sobjects/{Object}: basic information.
func (s *Server) handleSObjectInfo(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	return &reply{status: http.StatusOK, body: map[string]any{"objectDescribe": summaryOf(rq, ob), "recentItems": []any{}}}, nil
}
