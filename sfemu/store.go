package sfemu

import (
	"encoding/binary"
	"strings"
	"unsafe"
)

// The org's records live in one table per object, all guarded by
// orgStore.mu (orgstore.go). A record keeps its field values in one string (a uvarint
// length before each value, in field order), so a million records cost one
// small allocation each and no per-field headers. IDs are not stored: a
// record's ID is derived from its object's key prefix and its position.

// record is one stored sObject record.
type record struct {
	vals     string // encoded values of obj.data (see appendValue), or tombstone
	created  int64  // CreatedDate, Unix milliseconds
	modified int64  // LastModifiedDate and SystemModstamp
}

// tombstone replaces the values of a deleted record: the record stays so
// that its ID answers "entity is deleted". No encoding of values starts
// with an incomplete uvarint, so it cannot be mistaken for one.
const tombstone = "\xff"

func (r *record) isDeleted() bool { return r.vals == tombstone }

// table holds an object's records and the indexes of its unique and
// external-ID fields. Guarded by orgStore.mu.
type table struct {
	obj *object
	// pages hold the records in creation order, seq 1 first (see rec).
	// Fixed-size pages are never copied as the table grows, and waste at
	// most one partly filled page.
	pages [][]record
	n     int        // records, deleted ones included: the highest seq
	idx   []keyIndex // per obj.indexed field (field.index)
	live  int        // records not deleted
	// arena holds the bytes of record values: one allocation per 64 KiB
	// instead of one per record. Bytes below len are never written again,
	// so strings into it stay immutable.
	arena []byte
}

// intern copies b into the table's arena and returns it as a string.
func (t *table) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(t.arena)-len(t.arena) < len(b) {
		t.arena = make([]byte, 0, max(64<<10, len(b)))
	}
	start := len(t.arena)
	t.arena = append(t.arena, b...)
	return unsafe.String(&t.arena[start], len(b))
}

// pageBits sets the records per page: 16,384 (512 KiB).
const pageBits = 14

// rec returns the record with this seq (1..t.n).
func (t *table) rec(seq uint32) *record {
	i := seq - 1
	return &t.pages[i>>pageBits][i&(1<<pageBits-1)]
}

// appendRecord stores a new record and returns its seq.
func (t *table) appendRecord(r record) uint32 {
	if t.n&(1<<pageBits-1) == 0 {
		t.pages = append(t.pages, make([]record, 0, 1<<pageBits))
	}
	last := &t.pages[len(t.pages)-1]
	*last = append(*last, r)
	t.n++
	return uint32(t.n)
}

func newTable(ob *object) *table {
	t := &table{obj: ob}
	for range ob.indexed {
		t.idx = append(t.idx, newKeyIndex())
	}
	return t
}

// change is what a row does to one field: keep it, set it, or null it.
type change struct {
	st uint8 // stKeep, stSet, stNull
	v  []byte
}

const (
	stKeep uint8 = iota
	stSet
	stNull
	stRel // the value is a parent key still to resolve (bulk relationship column)
)

func appendValue(dst []byte, v []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

func appendValueString(dst []byte, v string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// decodeValues splits an encoded record into out (one string per slot,
// substrings of vals, no allocation).
func decodeValues(vals string, out []string) {
	p := 0
	for i := range out {
		n, w := uvarintString(vals[p:])
		p += w
		out[i] = vals[p : p+int(n)]
		p += int(n)
	}
}

// valueAt returns the value of one slot.
func valueAt(vals string, slot int) string {
	p := 0
	for i := 0; ; i++ {
		n, w := uvarintString(vals[p:])
		p += w
		if i == slot {
			return vals[p : p+int(n)]
		}
		p += int(n)
	}
}

func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x80 {
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// id returns the 18-character ID of the record at seq.
func (t *table) id(seq uint32) string { return makeID(t.obj.prefix, uint64(seq)) }

// applyScratch is per-caller scratch space so that applying rows does not
// allocate beyond the stored record.
type applyScratch struct {
	known     *field // a unique field already checked by the caller
	knownHash uint32 // the index hash of known's new value, when hashed
	hashed    bool
	old       []string
	enc       []byte
	key       []byte
	ref       []byte // parent IDs resolved for the current write
	miss      []string
}

// checkUniqueLocked fails when setting f to v would duplicate another
// record's value of a unique field (salesforce-api.md 6.3 DUPLICATE_VALUE).
func (t *table) checkUniqueLocked(f *field, v []byte, self uint32, sc *applyScratch) *rowErr {
	if !f.unique {
		return nil
	}
	sc.key = foldKey(sc.key[:0], v, f.caseSens)
	p := t.probe(f, sc.key)
	other := uint32(0)
	for seq, ok := p.next(); ok; seq, ok = p.next() {
		if seq != self && (other == 0 || seq < other) {
			other = seq
		}
	}
	if other == 0 {
		return nil
	}
	return &rowErr{"DUPLICATE_VALUE", "duplicate value found: " + f.name + " duplicates value on record with id: " + t.id(other), nil}
}

// insertLocked creates a record from changes (one per data slot).
func (t *table) insertLocked(ch []change, now int64, sc *applyScratch) (uint32, *rowErr) {
	ob := t.obj
	sc.miss = sc.miss[:0]
	for _, f := range ob.data {
		if f.required && ch[f.slot].st != stSet {
			sc.miss = append(sc.miss, f.name)
		}
	}
	if len(sc.miss) > 0 {
		return 0, errRequired(append([]string(nil), sc.miss...))
	}
	for _, f := range ob.indexed {
		if c := ch[f.slot]; c.st == stSet && f != sc.known {
			if e := t.checkUniqueLocked(f, c.v, 0, sc); e != nil {
				return 0, e
			}
		}
	}
	sc.enc = sc.enc[:0]
	for _, f := range ob.data {
		c := ch[f.slot]
		switch {
		case c.st == stSet:
			sc.enc = appendValue(sc.enc, c.v)
		case f.kind == kindBoolean:
			// Checkboxes are never null: they default to false [D].
			sc.enc = appendValueString(sc.enc, "false")
		default:
			sc.enc = appendValue(sc.enc, nil)
		}
	}
	seq := t.appendRecord(record{vals: t.intern(sc.enc), created: now, modified: now})
	t.live++
	rec := t.rec(seq)
	for _, f := range ob.indexed {
		switch v := valueAt(rec.vals, f.slot); {
		case v == "":
		case f == sc.known && sc.hashed:
			t.indexAddHashed(f, seq, sc.knownHash)
		default:
			t.indexAdd(f, v, seq, &sc.key)
		}
	}
	return seq, nil
}

// updateLocked applies changes to an existing live record.
func (t *table) updateLocked(seq uint32, ch []change, now int64, sc *applyScratch) *rowErr {
	ob := t.obj
	rec := t.rec(seq)
	if cap(sc.old) < len(ob.data) {
		sc.old = make([]string, len(ob.data))
	}
	old := sc.old[:len(ob.data)]
	decodeValues(rec.vals, old)
	sc.miss = sc.miss[:0]
	for _, f := range ob.data {
		if f.required && ch[f.slot].st == stNull {
			sc.miss = append(sc.miss, f.name)
		}
	}
	if len(sc.miss) > 0 {
		return errRequired(append([]string(nil), sc.miss...))
	}
	for _, f := range ob.indexed {
		if c := ch[f.slot]; c.st == stSet && string(c.v) != old[f.slot] {
			if e := t.checkUniqueLocked(f, c.v, seq, sc); e != nil {
				return e
			}
		}
	}
	sc.enc = sc.enc[:0]
	changed := false
	for _, f := range ob.data {
		c := ch[f.slot]
		switch c.st {
		case stSet:
			sc.enc = appendValue(sc.enc, c.v)
			changed = changed || string(c.v) != old[f.slot]
		case stNull:
			if f.kind == kindBoolean {
				sc.enc = appendValueString(sc.enc, "false")
				changed = changed || old[f.slot] != "false"
			} else {
				sc.enc = appendValue(sc.enc, nil)
				changed = changed || old[f.slot] != ""
			}
		default:
			sc.enc = appendValueString(sc.enc, old[f.slot])
		}
	}
	rec.modified = now
	if !changed {
		return nil
	}
	newVals := t.intern(sc.enc)
	for _, f := range ob.indexed {
		ov, nv := old[f.slot], valueAt(newVals, f.slot)
		if ov == nv {
			continue
		}
		if ov != "" {
			t.indexRemove(f, ov, seq, &sc.key)
		}
		if nv != "" {
			t.indexAdd(f, nv, seq, &sc.key)
		}
	}
	rec.vals = newVals
	return nil
}

// deleteLocked removes a live record (it stays as a tombstone so its ID
// answers "entity is deleted").
func (t *table) deleteLocked(seq uint32, now int64, sc *applyScratch) {
	rec := t.rec(seq)
	for _, f := range t.obj.indexed {
		if v := valueAt(rec.vals, f.slot); v != "" {
			t.indexRemove(f, v, seq, &sc.key)
		}
	}
	rec.vals = tombstone
	rec.modified = now
	t.live--
}

// fieldNames lists names for messages.
func fieldNames(fs []*field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}
