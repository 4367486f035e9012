package sfemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
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

// jsonPatch turns a JSON record body into per-slot changes. forbidden
// names fields that may not appear in the body (the upsert key).
func (s *Server) jsonPatch(ob *object, body []byte, forbidden *field) ([]change, map[int]*relRef, *apiError) {
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
	rels := map[int]*relRef{}
	for name, val := range m {
		if strings.EqualFold(name, "attributes") {
			continue
		}
		f := ob.byName[strings.ToLower(name)]
		if f == nil {
			if rf := ob.byRel[strings.ToLower(name)]; rf != nil {
				ref, err := relFromJSON(rf, val)
				if err != nil {
					return nil, nil, err
				}
				if ref == nil {
					ch[rf.slot] = change{st: stNull}
				} else {
					rels[rf.slot] = ref
				}
				continue
			}
			return nil, nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("No such column '%s' on sobject of type %s", name, ob.name))
		}
		if f == forbidden {
			// [I]: older docs say the key must not be in the body (5.1).
			return nil, nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("The external ID field %s is given in the URL; do not also set it in the body", f.name), f.name)
		}
		if f.slot < 0 {
			return nil, nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE",
				"Unable to create/update fields: "+f.name+". Please check the security settings of this field and verify that it is read/write for your profile or permission set.", f.name)
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
		var out []byte
		var e *rowErr
		if f.kind == kindReference {
			out, e = convertReference(f, text, nil)
		} else {
			out, e = convertValue(f, text, nil)
		}
		if e != nil {
			return nil, nil, &apiError{status: http.StatusBadRequest, items: []errItem{e.item()}}
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

// relRef is a parent given by external ID in a JSON body:
// {"Account__r": {"External_Id__c": "A-1"}}.
type relRef struct {
	f      *field // the reference field
	target *field // the parent's key field
	value  []byte
}

func relFromJSON(rf *field, val any) (*relRef, *apiError) {
	if val == nil {
		return nil, nil
	}
	m, ok := val.(map[string]any)
	if !ok {
		return nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize instance of "+rf.refTo+" from "+jsonKind(val)+" value")
	}
	for k, v := range m {
		if strings.EqualFold(k, "attributes") {
			continue
		}
		tf := rf.refObj.byName[strings.ToLower(k)]
		if tf == nil || (!tf.extID && tf.kind != kindID) {
			return nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("Foreign key field %s on %s is not an External ID or idLookup field", k, rf.refTo))
		}
		var text string
		switch x := v.(type) {
		case string:
			text = x
		case json.Number:
			text = x.String()
		default:
			return nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize the key of "+rf.relName)
		}
		return &relRef{f: rf, target: tf, value: []byte(text)}, nil
	}
	return nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD", "No key field given for relationship "+rf.relName)
}

// resolveRelsLocked turns parent keys into IDs and checks lookups given by ID.
func (s *Server) resolveRelsLocked(ob *object, ch []change, rels map[int]*relRef) *rowErr {
	for slot, ref := range rels {
		pt := s.tables[ref.f.refObj]
		var pseq uint32
		if ref.target.kind == kindID {
			sq, ok := pt.seqOf(string(ref.value))
			if !ok {
				return &rowErr{"INVALID_FIELD", "Foreign key external ID: " + string(ref.value) + " not found for field Id in entity " + pt.obj.name, nil}
			}
			pseq = sq
		} else {
			first, n := pt.lookup(ref.target, ref.value, new([]byte))
			if n == 0 {
				return &rowErr{"INVALID_FIELD", "Foreign key external ID: " + string(ref.value) + " not found for field " + ref.target.name + " in entity " + pt.obj.name, nil}
			}
			if n > 1 {
				return &rowErr{"DUPLICATE_EXTERNAL_ID", "Foreign key external ID: " + string(ref.value) + " matched more than one record for field " + ref.target.name + " in entity " + pt.obj.name, nil}
			}
			pseq = first
		}
		ch[slot] = change{st: stSet, v: appendID(nil, pt.obj.prefix, uint64(pseq))}
	}
	for _, f := range ob.data {
		if f.kind == kindReference && ch[f.slot].st == stSet && rels[f.slot] == nil {
			if _, ok := s.tables[f.refObj].seqOf(string(ch[f.slot].v)); !ok {
				return &rowErr{"INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []string{f.name}}
			}
		}
	}
	return nil
}

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

func (s *Server) recordURL(rq *request, ob *object, id string) string {
	return "/services/data/v" + rq.version + "/sobjects/" + ob.name + "/" + id
}

// handleCreate serves POST /sobjects/{Object}: 201 {"id","success":true,"errors":[]} (8).
func (s *Server) handleCreate(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	body, err := readBody(rq.r)
	if err != nil {
		return nil, err
	}
	ch, rels, aerr := s.jsonPatch(ob, body, nil)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.resolveRelsLocked(ob, ch, rels); e != nil {
		return nil, restErr(e)
	}
	t := s.tables[ob]
	if e := s.checkLocksREST(ob, ch, 0); e != nil {
		return nil, restErr(e)
	}
	var sc applyScratch
	seq, e := t.insertLocked(ch, s.now().UnixMilli(), &sc)
	if e != nil {
		return nil, restErr(e)
	}
	id := t.id(seq)
	return &reply{status: http.StatusCreated, location: s.recordURL(rq, ob, id),
		body: saveResult{ID: id, Success: true, Errors: []errItem{}}}, nil
}

func readBody(r *http.Request) ([]byte, *apiError) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 50<<20)); err != nil {
		return nil, newAPIError(http.StatusBadRequest, "JSON_PARSER_ERROR", "could not read the request body: "+err.Error())
	}
	return buf.Bytes(), nil
}

// checkLocksREST applies LockRecords to REST writes.
func (s *Server) checkLocksREST(ob *object, ch []change, target uint32) *rowErr {
	locked := s.locks[ob]
	if len(locked) == 0 {
		return nil
	}
	t := s.tables[ob]
	for _, f := range ob.indexed {
		if !f.extID {
			continue
		}
		hit := ch[f.slot].st == stSet && locked[strings.ToLower(string(ch[f.slot].v))]
		if target != 0 {
			if v := valueAt(t.recs[target-1].vals, f.slot); v != "" && locked[strings.ToLower(v)] {
				hit = true
			}
		}
		if hit {
			id := ""
			if target != 0 {
				id = t.id(target)
			}
			return errLocked(id)
		}
	}
	return nil
}

// handleUpsert serves PATCH /sobjects/{Object}/{Field}/{value}[?updateOnly=true]
// (salesforce-api.md 5.1-5.4).
func (s *Server) handleUpsert(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	kf := ob.byName[strings.ToLower(rq.params[1])]
	if kf == nil {
		return nil, errNotFound() // 5.2: unknown field in the path [D]
	}
	if !kf.extID && kf.kind != kindID {
		// Status [O]; body [I] (text seen for SOAP/Metadata upserts).
		return nil, newAPIError(http.StatusBadRequest, "INVALID_FIELD",
			"Invalid field for upsert, must be an External Id custom or standard indexed field: "+kf.name)
	}
	key := rq.params[2] // decoded once by the router (5.4)
	// updateOnly exists from v61.0 (5.3); older versions ignore it [I].
	updateOnly := rq.major >= 61 && strings.EqualFold(rq.r.URL.Query().Get("updateOnly"), "true")
	body, err := readBody(rq.r)
	if err != nil {
		return nil, err
	}
	ch, rels, aerr := s.jsonPatch(ob, body, kf)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[ob]
	var matches []uint32
	if kf.kind == kindID {
		if sq, ok := t.seqOf(key); ok {
			matches = []uint32{sq}
		}
	} else {
		canon, e := convertValue(kf, []byte(key), nil)
		if e != nil {
			return nil, restErr(e)
		}
		matches = t.lookupAll(kf, canon)
		if kf.kind != kindID {
			ch[kf.slot] = change{st: stSet, v: canon}
		}
	}
	if len(matches) > 1 {
		// 300 with the matching records' URLs; nothing written (5.2, body shape [I]).
		urls := make([]string, len(matches))
		for i, sq := range matches {
			urls[i] = s.recordURL(rq, ob, t.id(sq))
		}
		return &reply{status: http.StatusMultipleChoices, body: urls}, nil
	}
	if e := s.resolveRelsLocked(ob, ch, rels); e != nil {
		return nil, restErr(e)
	}
	var target uint32
	if len(matches) == 1 {
		target = matches[0]
	}
	if e := s.checkLocksREST(ob, ch, target); e != nil {
		return nil, restErr(e)
	}
	var sc applyScratch
	now := s.now().UnixMilli()
	if target == 0 {
		if updateOnly || kf.kind == kindID {
			return nil, errNotFound() // 5.3: body [I]
		}
		seq, e := t.insertLocked(ch, now, &sc)
		if e != nil {
			return nil, restErr(e)
		}
		id := t.id(seq)
		res := saveResult{ID: id, Success: true, Errors: []errItem{}}
		if rq.major >= 46 {
			created := true
			res.Created = &created
		}
		return &reply{status: http.StatusCreated, location: s.recordURL(rq, ob, id), body: res}, nil
	}
	if e := t.updateLocked(target, ch, now, &sc); e != nil {
		return nil, restErr(e)
	}
	if rq.major < 46 {
		return &reply{status: http.StatusNoContent}, nil // v45.0 and earlier [D]
	}
	created := false
	return &reply{status: http.StatusOK, body: saveResult{ID: t.id(target), Success: true, Errors: []errItem{}, Created: &created}}, nil
}

// recordByIDLocked finds a record by the ID in the path: a value that is
// not an ID at all is read as an external-ID value and answers the
// observed 404 (6.3).
func (s *Server) recordByIDLocked(t *table, id string) (uint32, *apiError) {
	prefix, sq, ok := parseID(id)
	if !ok {
		return 0, newAPIError(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+id)
	}
	if prefix != t.obj.prefix {
		// A well-formed ID of another object (6.3 MALFORMED_ID [D]).
		return 0, newAPIError(http.StatusBadRequest, "MALFORMED_ID", t.obj.name+" ID: id value of incorrect type: "+id, "Id")
	}
	if sq == 0 || sq > uint64(len(t.recs)) || t.recs[sq-1].deleted {
		return 0, errNotFound()
	}
	return uint32(sq), nil
}

// handleGetRecord serves GET /sobjects/{Object}/{id}[?fields=a,b] (8).
func (s *Server) handleGetRecord(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	fields, aerr := fieldsParam(ob, rq.r.URL.Query().Get("fields"))
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[ob]
	seq, aerr := s.recordByIDLocked(t, rq.params[1])
	if aerr != nil {
		return nil, aerr
	}
	return &reply{status: http.StatusOK, contentType: "application/json;charset=UTF-8",
		raw: s.appendRecordJSONLocked(nil, rq, t, seq, fields)}, nil
}

// handleGetByExternalID serves GET /sobjects/{Object}/{Field}/{value}.
func (s *Server) handleGetByExternalID(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	kf := ob.byName[strings.ToLower(rq.params[1])]
	if kf == nil || (!kf.extID && kf.kind != kindID) {
		return nil, errNotFound()
	}
	fields, aerr := fieldsParam(ob, rq.r.URL.Query().Get("fields"))
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[ob]
	var matches []uint32
	if kf.kind == kindID {
		if sq, ok := t.seqOf(rq.params[2]); ok {
			matches = []uint32{sq}
		}
	} else if canon, e := convertValue(kf, []byte(rq.params[2]), nil); e == nil {
		matches = t.lookupAll(kf, canon)
	}
	switch len(matches) {
	case 0:
		return nil, errNotFound()
	case 1:
		return &reply{status: http.StatusOK, contentType: "application/json;charset=UTF-8",
			raw: s.appendRecordJSONLocked(nil, rq, t, matches[0], fields)}, nil
	}
	urls := make([]string, len(matches))
	for i, sq := range matches {
		urls[i] = s.recordURL(rq, ob, t.id(sq))
	}
	return &reply{status: http.StatusMultipleChoices, body: urls}, nil
}

// handleUpdateRecord serves PATCH /sobjects/{Object}/{id}: 204 on success.
func (s *Server) handleUpdateRecord(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	body, err := readBody(rq.r)
	if err != nil {
		return nil, err
	}
	ch, rels, aerr := s.jsonPatch(ob, body, nil)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[ob]
	seq, aerr := s.recordByIDLocked(t, rq.params[1])
	if aerr != nil {
		return nil, aerr
	}
	if e := s.resolveRelsLocked(ob, ch, rels); e != nil {
		return nil, restErr(e)
	}
	if e := s.checkLocksREST(ob, ch, seq); e != nil {
		return nil, restErr(e)
	}
	var sc applyScratch
	if e := t.updateLocked(seq, ch, s.now().UnixMilli(), &sc); e != nil {
		return nil, restErr(e)
	}
	return &reply{status: http.StatusNoContent}, nil
}

// handleDeleteRecord serves DELETE /sobjects/{Object}/{id}: 204.
func (s *Server) handleDeleteRecord(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[ob]
	seq, aerr := s.recordByIDLocked(t, rq.params[1])
	if aerr != nil {
		return nil, aerr
	}
	var sc applyScratch
	t.deleteLocked(seq, s.now().UnixMilli(), &sc)
	return &reply{status: http.StatusNoContent}, nil
}

// handleDeleteByExternalID serves DELETE /sobjects/{Object}/{Field}/{value}.
func (s *Server) handleDeleteByExternalID(rq *request) (*reply, error) {
	ob, aerr := s.objectParam(rq.params[0])
	if aerr != nil {
		return nil, aerr
	}
	kf := ob.byName[strings.ToLower(rq.params[1])]
	if kf == nil || !kf.extID {
		return nil, errNotFound()
	}
	canon, e := convertValue(kf, []byte(rq.params[2]), nil)
	if e != nil {
		return nil, errNotFound()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[ob]
	matches := t.lookupAll(kf, canon)
	switch len(matches) {
	case 0:
		return nil, errNotFound()
	case 1:
		var sc applyScratch
		t.deleteLocked(matches[0], s.now().UnixMilli(), &sc)
		return &reply{status: http.StatusNoContent}, nil
	}
	urls := make([]string, len(matches))
	for i, sq := range matches {
		urls[i] = s.recordURL(rq, ob, t.id(sq))
	}
	return &reply{status: http.StatusMultipleChoices, body: urls}, nil
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
				fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, ob.name))
		}
		out = append(out, f)
	}
	return out, nil
}

// appendRecordJSONLocked renders a record: "attributes" first, then the
// fields in the order asked (8).
func (s *Server) appendRecordJSONLocked(dst []byte, rq *request, t *table, seq uint32, fields []*field) []byte {
	rec := &t.recs[seq-1]
	id := t.id(seq)
	dst = append(dst, `{"attributes":{"type":`...)
	dst = appendJSONString(dst, t.obj.name)
	dst = append(dst, `,"url":`...)
	dst = appendJSONString(dst, s.recordURL(rq, t.obj, id))
	dst = append(dst, '}')
	for _, f := range fields {
		dst = append(dst, ',')
		dst = appendJSONString(dst, f.name)
		dst = append(dst, ':')
		dst = appendFieldJSON(dst, f, rec, id)
	}
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
