package sfemu

import (
	"fmt"
	"net/http"
	"strconv"
)

// The store's side of SOQL queries (salesforce-api.md 8). A query selects
// its rows outside the store lock (query.go, selectRows), taking the lock
// only for copyLive; rendering a page and keeping the cursor for the next
// one is one orgStore method each.

// copyLive appends to snap and seqs copies of the live records of t from
// seq from on, at most scanChunk seqs, and returns them with the last seq
// looked at (below from once the table has no more records).
func (st *orgStore) copyLive(t *table, from int, snap []record, seqs []uint32) ([]record, []uint32, int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	end := min(t.n, from+scanChunk-1)
	for seq := from; seq <= end; seq++ {
		if r := t.rec(uint32(seq)); !r.isDeleted() {
			snap = append(snap, *r)
			seqs = append(seqs, uint32(seq))
		}
	}
	return snap, seqs, end
}

// queryPage renders the page of cur at cur.pos (at most pageSize rows) as
// the query JSON of this API version, and keeps a cursor for the next
// page when there is one.
func (st *orgStore) queryPage(cur *queryCursor, pageSize int, version string) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.queryPageLocked(cur, pageSize, version)
}

// nextQueryPage renders the page a query locator names; a locator is
// good for one call.
func (st *orgStore) nextQueryPage(loc string, pageSize int, version string) ([]byte, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	cur := st.queries[loc]
	if cur == nil {
		return nil, newAPIError(http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
	}
	delete(st.queries, loc)
	return st.queryPageLocked(cur, pageSize, version), nil
}

func (st *orgStore) queryPageLocked(cur *queryCursor, pageSize int, version string) []byte {
	t := st.tables[cur.obj]
	end := min(cur.pos+pageSize, len(cur.seqs))
	buf := []byte(`{"totalSize":`)
	buf = strconv.AppendInt(buf, int64(len(cur.seqs)), 10)
	buf = append(buf, `,"done":`...)
	done := end >= len(cur.seqs)
	buf = strconv.AppendBool(buf, done)
	if !done {
		st.querySeq++
		loc := fmt.Sprintf("01g5g%010d-%d", st.querySeq, end)
		st.queries[loc] = &queryCursor{obj: cur.obj, fields: cur.fields, seqs: cur.seqs, pos: end}
		buf = append(buf, `,"nextRecordsUrl":`...)
		buf = appendJSONString(buf, "/services/data/v"+version+"/query/"+loc)
	}
	buf = append(buf, `,"records":[`...)
	for i, seq := range cur.seqs[cur.pos:end] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = st.appendSelectedLocked(buf, version, t, seq, cur.fields)
	}
	return append(buf, "]}"...)
}

// appendSelectedLocked renders one query row; relationship fields become
// nested records ({"attributes":...,"Field":value}) or null.
func (st *orgStore) appendSelectedLocked(dst []byte, version string, t *table, seq uint32, fields []selField) []byte {
	rec := t.rec(seq)
	id := t.id(seq)
	dst = appendAttributes(dst, version, t.obj, id)
	for _, sf := range fields {
		dst = append(dst, ',')
		if sf.sub == nil {
			dst = appendJSONString(dst, sf.f.name)
			dst = append(dst, ':')
			dst = appendFieldJSON(dst, sf.f, rec, id)
			continue
		}
		dst = appendJSONString(dst, sf.f.relName)
		dst = append(dst, ':')
		pid := valueAt(rec.vals, sf.f.slot)
		pt := st.tables[sf.f.refObj]
		pseq, state := pt.resolveID(pid)
		if pid == "" || state != idLive {
			dst = append(dst, "null"...)
			continue
		}
		prec := pt.rec(pseq)
		dst = appendAttributes(dst, version, pt.obj, pt.id(pseq))
		dst = append(dst, ',')
		dst = appendJSONString(dst, sf.sub.name)
		dst = append(dst, ':')
		dst = appendFieldJSON(dst, sf.sub, prec, pt.id(pseq))
		dst = append(dst, '}')
	}
	return append(dst, '}')
}
