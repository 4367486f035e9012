package sfemu

import (
	"net/http"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// The store's side of sObject REST (salesforce-api.md §5, §7, §8): each
// call is one orgStore method, so the record it finds is the record it
// writes or renders. The HTTP side is in sobjects.go. Failures come back
// in the REST envelope (restErr) or as the 404 Salesforce answers.

// upsertResult is the outcome of upsertRecord: the record written and
// whether it was created, or the IDs of the records the key matched when
// it matched several (nothing written).
type upsertResult struct {
	id      string
	created bool
	several []string
}

// createRecord inserts a record (REST create) and returns its ID.
func (st *orgStore) createRecord(ob *object, ch []change, rels []relCol) (string, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.tables[ob]
	var sc applyScratch
	seq, _, e := st.saveLocked(t, 0, ch, rels, st.now().UnixMilli(), &sc)
	if e != nil {
		return "", restErr(e)
	}
	return t.id(seq), nil
}

// upsertRecord writes the record whose field kf has the value key
// (salesforce-api.md 5.1-5.4): an update when one record matches, an
// insert with the key set when none does (unless updateOnly, or kf is
// the Id: then 404).
func (st *orgStore) upsertRecord(ob *object, kf *field, key string, ch []change, rels []relCol, updateOnly bool) (upsertResult, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.tables[ob]
	matches, canon, e := t.matchKeyLocked(kf, key)
	if e != nil {
		return upsertResult{}, restErr(e)
	}
	if len(matches) > 1 {
		return upsertResult{several: t.ids(matches)}, nil
	}
	var target uint32
	if len(matches) == 1 {
		target = matches[0]
	} else if updateOnly || kf.kind == kindID {
		return upsertResult{}, errNotFound() // 5.3: body [I]
	}
	if kf.kind != kindID {
		ch[kf.slot] = change{st: stSet, v: canon}
	}
	var sc applyScratch
	seq, created, e := st.saveLocked(t, target, ch, rels, st.now().UnixMilli(), &sc)
	if e != nil {
		return upsertResult{}, restErr(e)
	}
	return upsertResult{id: t.id(seq), created: created}, nil
}

// recordJSON renders the record of ob with this ID (REST GET) with the
// fields asked. fieldsErr, a bad fields parameter, is answered only for a
// record that exists: the record is looked up first.
func (st *orgStore) recordJSON(ob *object, id string, fields []*field, fieldsErr *apiError, version string) ([]byte, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.tables[ob]
	seq, aerr := recordByIDLocked(t, id)
	if aerr != nil {
		return nil, aerr
	}
	if fieldsErr != nil {
		return nil, fieldsErr
	}
	return appendRecordJSONLocked(nil, version, t, seq, fields), nil
}

// recordJSONByKey renders the record whose field kf has the value key, as
// recordJSON does, or returns the IDs of the records it matches when it
// matches several. No match answers 404.
func (st *orgStore) recordJSONByKey(ob *object, kf *field, key string, fields []*field, fieldsErr *apiError, version string) ([]byte, []string, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.tables[ob]
	matches, _, _ := t.matchKeyLocked(kf, key)
	if len(matches) == 0 {
		return nil, nil, errNotFound()
	}
	if fieldsErr != nil {
		return nil, nil, fieldsErr
	}
	if len(matches) > 1 {
		return nil, t.ids(matches), nil
	}
	return appendRecordJSONLocked(nil, version, t, matches[0], fields), nil, nil
}

// updateRecord applies a REST update to the record of ob with this ID.
func (st *orgStore) updateRecord(ob *object, id string, ch []change, rels []relCol) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.tables[ob]
	seq, aerr := recordByIDLocked(t, id)
	if aerr != nil {
		return aerr
	}
	var sc applyScratch
	if _, _, e := st.saveLocked(t, seq, ch, rels, st.now().UnixMilli(), &sc); e != nil {
		return restErr(e)
	}
	return nil
}

// deleteRecord deletes the record of ob with this ID (REST DELETE).
func (st *orgStore) deleteRecord(ob *object, id string) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.tables[ob]
	seq, aerr := recordByIDLocked(t, id)
	if aerr != nil {
		return aerr
	}
	return st.deleteRecordLocked(t, seq)
}

// deleteRecordByKey deletes the record whose field kf has the value key,
// or returns the IDs of the records it matches when it matches several
// (nothing deleted). No match answers 404.
func (st *orgStore) deleteRecordByKey(ob *object, kf *field, key string) ([]string, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.tables[ob]
	matches, _, _ := t.matchKeyLocked(kf, key)
	if len(matches) == 0 {
		return nil, errNotFound()
	}
	if len(matches) > 1 {
		return t.ids(matches), nil
	}
	return nil, st.deleteRecordLocked(t, matches[0])
}

// deleteRecordLocked deletes one record for a REST DELETE, or fails with
// UNABLE_TO_LOCK_ROW for a record locked with LockRecords.
func (st *orgStore) deleteRecordLocked(t *table, seq uint32) *apiError {
	if e := st.lockErrLocked(t, make([]change, len(t.obj.data)), seq); e != nil {
		return restErr(e)
	}
	var sc applyScratch
	t.deleteLocked(seq, st.now().UnixMilli(), &sc)
	return nil
}

// matchKeyLocked finds the live records whose field kf (Id or an External
// ID field) has the value given in a URL (decoded once by the router,
// 5.4). It also returns the value in its stored form.
func (t *table) matchKeyLocked(kf *field, key string) ([]uint32, []byte, *rowErr) {
	if kf.kind == kindID {
		if sq, st := t.resolveID(key); st == idLive {
			return []uint32{sq}, nil, nil
		}
		return nil, nil, nil
	}
	canon, e := convertValue(kf, []byte(key), nil)
	if e != nil {
		return nil, nil, e
	}
	return t.lookupAll(kf, canon), canon, nil
}

// recordByIDLocked finds a record by the ID in the path: a value that is
// not an ID at all is read as an external-ID value and answers the
// observed 404 (6.3).
func recordByIDLocked(t *table, id string) (uint32, *apiError) {
	seq, st := t.resolveID(id)
	switch st {
	case idMalformed:
		return 0, newAPIError(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+excerpt.Of(id))
	case idOtherObject:
		// A well-formed ID of another object (6.3 MALFORMED_ID [D]).
		return 0, newAPIError(http.StatusBadRequest, "MALFORMED_ID", t.obj.name+" ID: id value of incorrect type: "+excerpt.Of(id), "Id")
	case idUnknown, idDeleted:
		return 0, errNotFound()
	}
	return seq, nil
}

// ids returns the IDs of records (no lock needed: an ID is derived from
// the seq alone).
func (t *table) ids(seqs []uint32) []string {
	out := make([]string, len(seqs))
	for i, sq := range seqs {
		out[i] = t.id(sq)
	}
	return out
}
