package sfemu

import (
	"strings"
)

// Record writes shared by Bulk API rows and REST calls. Both convert a
// value with convertField, identify records with resolveID, and save
// through saveLocked (locks, parents, insert or update), so one bad value
// fails with the same code and text in a Bulk sf__Error
// (salesforce-api.md 3.3) and in a REST error array (6.3).

// convertField checks a non-empty text value for data field f and appends
// its stored form to dst: a lookup takes a record ID of its parent object,
// every other type goes through convertValue.
func convertField(f *field, v, dst []byte) ([]byte, *rowErr) {
	if f.kind != kindReference {
		return convertValue(f, v, dst)
	}
	// Existence is checked under the store lock (resolveRefsLocked).
	prefix, seq, ok := parseID(string(v))
	if !ok {
		return dst, &rowErr{"MALFORMED_ID", f.label + ": id value of incorrect type: " + string(v), []string{f.name}}
	}
	if prefix != f.refObj.prefix {
		return dst, &rowErr{"FIELD_INTEGRITY_EXCEPTION", f.label + ": id value of incorrect type: " + string(v), []string{f.name}}
	}
	return appendID(dst, prefix, seq), nil
}

// errReadOnly refuses a value for a field the API user cannot write (Id
// outside an insert, CreatedDate and the other system fields).
func errReadOnly(f *field) *rowErr {
	return &rowErr{"INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: " + f.name +
		". Please check the security settings of this field and verify that it is read/write for your profile or permission set.", []string{f.name}}
}

// errIDOnInsert refuses an Id value in an insert (Bulk insert row, REST create).
func errIDOnInsert() *rowErr {
	return &rowErr{"INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", []string{"Id"}}
}

// errLocked is the retryable lock failure (salesforce-api.md 3.3, 4.4);
// id is the locked record's ID when one was identified.
func errLocked(id string) *rowErr {
	msg := "unable to obtain exclusive access to this record or 1 records"
	if id != "" {
		msg += ": " + id
	}
	return &rowErr{"UNABLE_TO_LOCK_ROW", msg, nil}
}

// errCrossReference is the failure for a lookup ID that names no record
// (salesforce-api.md 3.3, verbatim from a real failed-results file).
func errCrossReference() *rowErr {
	return &rowErr{"INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", nil}
}

// idState says what an ID names in a table (resolveID).
type idState uint8

const (
	idLive        idState = iota // a live record of this object
	idMalformed                  // not a 15/18-character record ID
	idOtherObject                // a well-formed ID with another object's key prefix
	idUnknown                    // this object's prefix, but no such record
	idDeleted                    // a record of this object that was deleted
)

// resolveID identifies the record an ID names. The seq is also returned
// for deleted records, so that failures can name them. Guarded by orgStore.mu.
func (t *table) resolveID(id string) (uint32, idState) {
	prefix, seq, ok := parseID(id)
	switch {
	case !ok:
		return 0, idMalformed
	case prefix != t.obj.prefix:
		return 0, idOtherObject
	case seq == 0 || seq > uint64(t.n):
		return 0, idUnknown
	case t.rec(uint32(seq)).isDeleted():
		return uint32(seq), idDeleted
	}
	return uint32(seq), idLive
}

// relCol is a parent given by one of its key fields instead of its ID: a
// relationship column of a Bulk header (Account__r.External_Id__c,
// salesforce-api.md 4.3) or a nested object in a REST body
// ({"Account__r":{"External_Id__c":"A-1"}}). The row's change for ref's
// slot holds the key value with state stRel until resolveRefsLocked.
type relCol struct {
	ref *field // the lookup field (Account__c)
	key *field // the parent's External ID or Id field
}

// resolveRefsLocked checks that lookups given by ID name live parents and
// replaces parents given by key (stRel) with their IDs, kept in sc.ref
// until the next write (salesforce-api.md 3.3, 4.3).
func (st *orgStore) resolveRefsLocked(ob *object, ch []change, rels []relCol, sc *applyScratch) *rowErr {
	for _, f := range ob.refs {
		if c := ch[f.slot]; c.st == stSet {
			if _, st := st.tables[f.refObj].resolveID(string(c.v)); st != idLive {
				return errCrossReference()
			}
		}
	}
	// IDs of earlier writes were copied into their records: reuse the space.
	// Growing ids leaves earlier IDs of this write on the old array, intact.
	ids := sc.ref[:0]
	defer func() { sc.ref = ids }()
	for _, rc := range rels {
		c := &ch[rc.ref.slot]
		if c.st != stRel {
			continue
		}
		pt := st.tables[rc.ref.refObj]
		var pseq uint32
		if rc.key.kind == kindID {
			seq, st := pt.resolveID(string(c.v))
			if st != idLive {
				return errForeignKey(c.v, rc.key, pt.obj)
			}
			pseq = seq
		} else {
			first, n := pt.lookup(rc.key, c.v, &sc.key)
			switch {
			case n == 0:
				return errForeignKey(c.v, rc.key, pt.obj)
			case n > 1:
				// [I]: wording for an ambiguous parent key.
				return &rowErr{"DUPLICATE_EXTERNAL_ID", "Foreign key external ID: " + string(c.v) + " matched more than one record for field " + rc.key.name + " in entity " + pt.obj.name, nil}
			}
			pseq = first
		}
		start := len(ids)
		ids = appendID(ids, pt.obj.prefix, uint64(pseq))
		*c = change{st: stSet, v: ids[start:len(ids):len(ids)]}
	}
	return nil
}

// errForeignKey is the observed failure for a parent key that matches no
// record (salesforce-api.md 3.3, 4.3).
func errForeignKey(v []byte, key *field, parent *object) *rowErr {
	return &rowErr{"INVALID_FIELD", "Foreign key external ID: " + string(v) + " not found for field " + key.name + " in entity " + parent.name, nil}
}

// lockErrLocked fails a write whose External ID values, or whose target
// record's, were locked with LockRecords or LockRecordsFor:
// UNABLE_TO_LOCK_ROW. A lock with a count spends one failure per write it
// fails and lets the write through once spent.
func (st *orgStore) lockErrLocked(t *table, ch []change, target uint32) *rowErr {
	locked := st.locks[t.obj]
	if len(locked) == 0 {
		return nil
	}
	// hit reports whether key is locked, spending one counted failure.
	hit := func(key string) bool {
		k := strings.ToLower(key)
		left, ok := locked[k]
		if !ok {
			return false
		}
		if left > 0 {
			if left == 1 {
				delete(locked, k)
			} else {
				locked[k] = left - 1
			}
		}
		return true
	}
	for _, f := range t.obj.indexed {
		if !f.extID {
			continue
		}
		locked := ch[f.slot].st == stSet && hit(string(ch[f.slot].v))
		if !locked && target != 0 {
			if v := valueAt(t.rec(target).vals, f.slot); v != "" {
				locked = hit(v)
			}
		}
		if locked {
			id := ""
			if target != 0 {
				id = t.id(target)
			}
			return errLocked(id)
		}
	}
	return nil
}

// saveLocked applies one converted record write, from a Bulk row or a
// REST call: lock check, parents, then insert (target 0) or update of
// target. It returns the record's seq and whether it was created.
func (st *orgStore) saveLocked(t *table, target uint32, ch []change, rels []relCol, now int64, sc *applyScratch) (uint32, bool, *rowErr) {
	if e := st.lockErrLocked(t, ch, target); e != nil {
		return target, false, e
	}
	if e := st.resolveRefsLocked(t.obj, ch, rels, sc); e != nil {
		return target, false, e
	}
	if target == 0 {
		seq, e := t.insertLocked(ch, now, sc)
		return seq, e == nil, e
	}
	return target, false, t.updateLocked(target, ch, now, sc)
}
