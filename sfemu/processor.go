package sfemu

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// Job processing: the state machine UploadComplete -> InProgress ->
// JobComplete | Failed (salesforce-api.md 2.6, 2.12) and the record-level
// work of sections 3 and 4.
//
// Like Salesforce (4.4), a job is processed in internal batches of 10,000
// records, and each batch is saved in chunks of 200 records. Parsing and
// type conversion of a batch run without the store lock; each chunk is
// applied to the org in one orgStore.applyChunk call, so REST calls and
// other jobs interleave with a long job. Abort takes effect between chunks.

const (
	internalBatch = 10_000
	chunkSize     = 200
)

// Row outcomes kept per processed row.
const (
	rowCreated uint8 = iota + 1
	rowUpdated
	rowFailed
)

// processLater is the ProcessAsync goroutine of one job.
func (s *Server) processLater(j *job) {
	defer s.store.processorDone()
	d := s.opts.delay
	if s.model != nil {
		d += s.model.m.QueueWait
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
	if s.model != nil {
		if !s.model.acquire(s.ctx) {
			return
		}
		defer s.model.release()
	}
	s.processJob(j)
}

// ProcessJobs processes, one after the other, every job waiting in
// UploadComplete, and returns when they are done (for ProcessManual).
func (s *Server) ProcessJobs() {
	for _, j := range s.store.waitingJobs() {
		s.processJob(j)
	}
}

// AwaitJob waits until the job's state is one of states (any terminal
// state when none are given) and returns it. It fails when ctx ends first
// or the job does not exist.
func (s *Server) AwaitJob(ctx context.Context, jobID string, states ...string) (string, error) {
	for {
		st, ch, aerr := s.store.jobState(jobID)
		if aerr != nil {
			return "", fmt.Errorf("sfemu: await job %s: no such job", jobID)
		}
		if (len(states) == 0 && terminal(st)) || slices.Contains(states, st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("sfemu: await job %s (state %s, waiting for %v): %w", jobID, st, states, ctx.Err())
		}
	}
}

// processJob claims a closed job and processes it on the calling goroutine.
func (s *Server) processJob(j *job) {
	started := time.Now()
	// The realistic org (orgmodel.go) paces and contends async jobs.
	paced := s.model != nil && s.opts.mode == ProcessAsync
	data, ok := s.store.claimJob(j, paced)
	if !ok {
		return
	}
	p := &processor{s: s, st: s.store, j: j, data: data, t: s.store.table(j.obj), ob: j.obj}
	if paced {
		m := s.model
		p.model = m
		if m.perJob > 0 {
			p.pace = &pacer{perJob: m.perJob, start: started}
		}
		p.lockRand = newLockRand(s.opts.seed, j.seq)
	}
	failMsg := p.run()
	s.store.endJob(j, p.res, failMsg, started, paced)
}

// colKind says what a CSV column does.
type colKind uint8

const (
	colField     colKind = iota // a data field
	colRel                      // Relationship.Field: a parent by external ID
	colID                       // the Id column
	colSystem                   // CreatedDate and other read-only fields
	colIgnore                   // fields a delete job does not use (echoed in results)
	colUnmatched                // names of no field, allowed in delete jobs (not echoed, 3.1)
)

// colPlan is how one header column is processed.
type colPlan struct {
	name   string // as uploaded
	kind   colKind
	f      *field // target field (the reference field for colRel)
	target *field // parent field matched by a relationship column
}

// prow is one prepared row of the current internal batch.
type prow struct {
	start uint32
	ch    []change // one per data slot
	id    []byte   // Id column value
	err   *rowErr
	dup   bool   // err is a duplicate upsert key in the batch: the key identifies nothing
	keyed bool   // kh holds the index hash of the row's upsert key
	kh    uint32 // see keyed
}

// processor holds one job's processing state; only its goroutine uses it.
type processor struct {
	s      *Server   // options and the server's context
	st     *orgStore // where rows are saved
	j      *job
	data   []byte
	t      *table
	ob     *object
	cols   []colPlan
	rels   []relCol // the relationship columns
	ext    *field   // upsert key (nil unless upsert)
	extCol int      // the upsert key's column (-1 if none)
	res    *jobResults

	// Used by the preparing goroutine only.
	dupSlots []int32      // readKeys' table of keys
	prepKey  []byte       // the batch's folded keys, one after the other
	keyEnd   []uint32     // where each row's key ends in prepKey
	extSeed  maphash.Seed // hash seed of the upsert key's index

	// Used by the applying goroutine only.
	key  []byte
	sc   applyScratch
	sink uint32 // keeps the reads of warmKeys

	// The realistic org (nil without WithOrgModel).
	model    *orgState
	pace     *pacer      // nil: unpaced
	lockRand *mrand.Rand // lock-failure draws
	lockP    float64     // share of rows failing on locks in this chunk
}

// batch is one internal batch of prepared rows. Two of them alternate
// between the goroutine that parses and converts and the one that applies.
type batch struct {
	rows    []prow
	changes []change
	arena   []byte
}

// batchPool keeps the buffers of finished jobs' batches: a job of one
// internal batch would otherwise spend a tenth of its processing zeroing
// new ones. Nothing points into a batch once its job is processed (saved
// records and results copy what they keep).
var batchPool sync.Pool

// takeBatch returns a batch with room for rows rows of nslots values and
// an arena of arena bytes, from the pool when one there is large enough.
func takeBatch(rows, nslots, arena int) *batch {
	b, _ := batchPool.Get().(*batch)
	if b == nil {
		b = &batch{}
	}
	if cap(b.changes) < rows*nslots {
		b.changes = make([]change, rows*nslots)
	}
	b.changes = b.changes[:rows*nslots] // prepare clears each row's values
	if cap(b.rows) < rows {
		b.rows = make([]prow, 0, rows)
	}
	if cap(b.arena) < arena {
		b.arena = make([]byte, 0, arena)
	}
	return b
}

// run processes the job and returns the errorMessage of a job-level
// failure ("" when the job completes).
func (p *processor) run() string {
	j := p.j
	crlf := j.lineEnding == "CRLF"
	p.res = &jobResults{data: p.data, delim: j.delim, crlf: crlf, prefix: p.ob.prefix, seed: uint64(p.s.opts.seed)<<20 ^ j.seq}
	if !p.s.opts.shuffle {
		p.res.seed = 0
	}
	if len(p.data) == 0 {
		p.res.setUnprocessedHeader()
		// [I]: a job closed without data; the real message is not established.
		return "InvalidBatch : No data was uploaded for this job; upload a CSV with a header row before closing it"
	}
	if !checkLineEndings(p.data, crlf) {
		p.res.setUnprocessedHeader()
		return "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is " + j.lineEnding // [O] 2.11
	}
	rd := newCSVReader(p.data, j.delim, crlf)
	if !rd.next() {
		p.res.setUnprocessedHeader()
		return "InvalidBatch : No header row found in the uploaded data" // [I]
	}
	header := make([]string, len(rd.fields))
	for i, f := range rd.fields {
		header[i] = string(f)
	}
	p.res.header = header
	p.res.unprocFrom = uint32(rd.pos)
	if rd.bad != "" {
		return "InvalidBatch : The header row is not valid CSV: " + rd.bad // [I]
	}
	if msg := p.plan(header); msg != "" {
		return msg
	}
	p.res.cols = p.cols
	if p.ext != nil && p.ext.kind != kindID {
		p.extSeed = p.t.idx[p.ext.index].seed // set when the table was made, never changed
	}
	rows := p.presize(rd)
	nslots := len(p.ob.data)

	// Two stages on two goroutines: this one parses and converts the next
	// internal batch while the other applies the previous one under the
	// store lock, so a job uses two cores.
	free := make(chan *batch, 2)
	full := make(chan *batch, 1)
	stop := make(chan struct{})
	// Buffers sized once for the job: growing them batch by batch cost a
	// job of one batch (the usual 10,000 rows) a third of its processing.
	// rows counts lines, so it is at least the number of records.
	perBatch := min(rows, internalBatch)
	// The arena holds a batch's converted values: about as many bytes as
	// its records take in the upload, a little more for conversions that
	// lengthen a value. Values with line breaks make a record several
	// lines long, so the average line says little: an upload of up to
	// 4 MiB gets room for all of it, a larger one twice the average line
	// per record (then the arena grows while the first batch fills it,
	// and keeps that size).
	body := len(p.data) - rd.pos
	arena := min(body, max(body/max(rows, 1)*perBatch*2, 4<<20))*5/4 + 4096
	var all []*batch
	for range min(2, (rows+internalBatch-1)/internalBatch) {
		b := takeBatch(perBatch, nslots, arena)
		all = append(all, b)
		free <- b
	}
	go func() {
		defer close(full)
		for {
			var b *batch
			select {
			case b = <-free:
			case <-stop:
				return
			}
			b.rows, b.arena = b.rows[:0], b.arena[:0]
			for len(b.rows) < internalBatch && rd.next() {
				p.prepare(b, rd, nslots)
			}
			if len(b.rows) == 0 {
				return
			}
			if p.ext != nil && p.ext.kind != kindID {
				p.readKeys(b.rows)
			}
			select {
			case full <- b:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for range full { // let the preparing goroutine finish
		}
		for _, b := range all {
			batchPool.Put(b)
		}
	}()
	for b := range full {
		lockRetry := false
		for c := 0; c < len(b.rows); c += chunkSize {
			chunk := b.rows[c:min(c+chunkSize, len(b.rows))]
			if p.pace != nil && !p.pace.wait(p.s.ctx, len(chunk)) {
				p.res.unprocFrom = chunk[0].start
				return ""
			}
			if !p.st.applyChunk(p, chunk, &lockRetry) {
				p.res.unprocFrom = chunk[0].start
				return ""
			}
		}
		if lockRetry {
			p.st.countRetry(j)
		}
		free <- b
	}
	p.res.unprocFrom = uint32(len(p.data))
	return ""
}

// presize sizes the result bookkeeping and grows the value indexes once
// for the rows to come (about one per line), which it returns, so
// that a large first load does not rehash them again and again.
func (p *processor) presize(rd *csvReader) int {
	rows := bytes.Count(p.data[rd.pos:], []byte{'\n'}) + 1
	res := p.res
	res.rowStart = make([]uint32, 0, rows)
	res.rec = make([]uint32, 0, rows)
	res.status = make([]uint8, 0, rows)
	p.st.reserveIndexes(p.t, rows)
	return rows
}

// plan checks the header against the object (salesforce-api.md 2.11, 4.1,
// 4.3) and returns the job's errorMessage when it is unusable.
func (p *processor) plan(header []string) string {
	ob := p.ob
	p.extCol = -1
	seen := map[*field]string{}
	op := p.j.operation
	isDelete := op == "delete" || op == "hardDelete"
	hasID := false
	for _, name := range header {
		c := colPlan{name: name}
		if relName, fname, isRel := strings.Cut(name, "."); isRel {
			if typ, rel, poly := strings.Cut(relName, ":"); poly {
				_ = typ
				// Every lookup here points to one object [O] (2.11).
				return "InvalidBatch : type is not needed for non polymorphic foreign key references: " + excerpt.Of(rel)
			}
			rf := ob.byRel[strings.ToLower(relName)]
			if rf == nil {
				if isDelete {
					c.kind = colUnmatched
					p.cols = append(p.cols, c)
					continue
				}
				return "InvalidBatch : Unable to find relationship: " + excerpt.Of(relName) // [O] 2.11
			}
			tf := rf.refObj.byName[strings.ToLower(fname)]
			if tf == nil {
				return "InvalidBatch : Field name not found : " + excerpt.Of(name) // [I]
			}
			if tf.kind != kindID && !tf.extID {
				// [I]: the parent field must be an External ID or idLookup field (4.3).
				return fmt.Sprintf("InvalidBatch : Foreign key field %s on %s is not an External ID or idLookup field: %s", tf.name, rf.refObj.name, name)
			}
			c.kind, c.f, c.target = colRel, rf, tf
			p.rels = append(p.rels, relCol{ref: rf, key: tf})
		} else {
			f := ob.byName[strings.ToLower(name)]
			switch {
			case f == nil && isDelete:
				c.kind = colUnmatched
			case f == nil:
				// [O] 2.11: names only the first bad column (a BOM is part of the name).
				return "InvalidBatch : Field name not found : " + excerpt.Of(name)
			case f.kind == kindID:
				c.kind, c.f = colID, f
				hasID = true
			case f.slot < 0:
				c.kind, c.f = colSystem, f
			case isDelete:
				c.kind = colIgnore
			default:
				c.kind, c.f = colField, f
			}
		}
		if c.f != nil && c.kind != colIgnore {
			if prev, dup := seen[c.f]; dup {
				// [I]: a field given twice (also as Field and Relationship.Field).
				return fmt.Sprintf("InvalidBatch : Duplicate field in the header: %s and %s both set %s", prev, name, c.f.name)
			}
			seen[c.f] = name
		}
		p.cols = append(p.cols, c)
	}
	switch op {
	case "update", "delete", "hardDelete":
		if !hasID {
			return "InvalidBatch : Field name not found : Id; " + op + " jobs need an Id column" // [I]
		}
	case "upsert":
		p.ext = p.j.extField
		if p.ext.kind == kindID {
			return ""
		}
		if _, ok := seen[p.ext]; !ok {
			// [I]: the key column must be present (4.1).
			return "InvalidBatch : The External ID field " + p.ext.name + " given in externalIdFieldName is not in the header"
		}
		for i, c := range p.cols {
			if c.kind == colField && c.f == p.ext {
				p.extCol = i
			}
		}
	}
	return ""
}

func isNA(v []byte) bool { return len(v) == 4 && string(v) == "#N/A" }

// prepare parses and converts one row outside the store lock.
func (p *processor) prepare(b *batch, rd *csvReader, nslots int) {
	base := len(b.rows) * nslots
	if base+nslots > len(b.changes) {
		// More records than the job's line count said (cannot happen; kept safe).
		b.changes = append(b.changes, make([]change, nslots)...)
	}
	ch := b.changes[base : base+nslots : base+nslots]
	clear(ch)
	pr := prow{start: uint32(rd.start), ch: ch}
	switch {
	case rd.bad != "":
		pr.err = &rowErr{"INVALID_FIELD", "Invalid CSV: " + rd.bad, nil} // [I]
	case len(rd.fields) != len(p.cols):
		// [I]: Salesforce's text for a row with the wrong column count is not established.
		pr.err = &rowErr{"INVALID_FIELD", fmt.Sprintf("Incorrect number of columns in row: the header has %d, this row has %d", len(p.cols), len(rd.fields)), nil}
	}
	if pr.err == nil {
		for ci := range p.cols {
			c := &p.cols[ci]
			v := rd.fields[ci]
			switch c.kind {
			case colField:
				if len(v) == 0 {
					continue // empty: field left unchanged / not set [D] 4.2
				}
				if isNA(v) {
					ch[c.f.slot] = change{st: stNull}
					continue
				}
				start := len(b.arena)
				var e *rowErr
				b.arena, e = convertField(c.f, v, b.arena)
				if e != nil {
					pr.err = e
					break
				}
				ch[c.f.slot] = change{st: stSet, v: b.arena[start:len(b.arena):len(b.arena)]}
			case colRel:
				if len(v) == 0 {
					continue
				}
				if isNA(v) {
					ch[c.f.slot] = change{st: stNull}
					continue
				}
				start := len(b.arena)
				b.arena = append(b.arena, v...)
				ch[c.f.slot] = change{st: stRel, v: b.arena[start:len(b.arena):len(b.arena)]}
			case colID:
				start := len(b.arena)
				b.arena = append(b.arena, v...)
				pr.id = b.arena[start:len(b.arena):len(b.arena)]
			case colSystem:
				if len(v) > 0 {
					pr.err = errReadOnly(c.f)
				}
			}
			if pr.err != nil {
				break
			}
		}
	}
	if pr.err == nil && p.j.operation == "insert" && len(pr.id) > 0 {
		pr.err = errIDOnInsert()
	}
	if pr.err != nil && p.extCol >= 0 && len(rd.fields) == len(p.cols) && ch[p.ext.slot].st == stKeep {
		// The row failed before its upsert key was read: read the key anyway,
		// so that sf__Id can name the record the row identified (3.1).
		v := rd.fields[p.extCol]
		if len(v) > 0 && !isNA(v) {
			start := len(b.arena)
			if out, e := convertValue(p.ext, v, b.arena); e == nil {
				b.arena = out
				ch[p.ext.slot] = change{st: stSet, v: b.arena[start:len(b.arena):len(b.arena)]}
			}
		}
	}
	b.rows = append(b.rows, pr)
}

// readKeys hashes each row's upsert key for the index, so that the
// applying goroutine does not, and fails every row of the batch whose
// upsert key appears more than once in it: "DUPLICATE_VALUE:Duplicate
// external id specified" (salesforce-api.md 4.1 [O], observed at least
// within one internal batch; duplicates in different internal batches are
// not detected [I]).
func (p *processor) readKeys(rows []prow) {
	// An open-addressing table of the batch's keys by their index hash:
	// slot = row index + 1, the key itself read back from prepKey.
	size := 16
	for size < 2*len(rows) {
		size *= 2
	}
	if cap(p.dupSlots) < size {
		p.dupSlots = make([]int32, size)
	}
	slots := p.dupSlots[:size]
	clear(slots)
	mask := uint32(size - 1)
	p.prepKey = p.prepKey[:0]
	p.keyEnd = p.keyEnd[:0]
	key := func(row int) []byte {
		start := uint32(0)
		if row > 0 {
			start = p.keyEnd[row-1]
		}
		return p.prepKey[start:p.keyEnd[row]]
	}
	slot := p.ext.slot
	dups := false
	for i := range rows {
		r := &rows[i]
		start := len(p.prepKey)
		if r.err == nil && r.ch[slot].st == stSet {
			p.prepKey = foldKey(p.prepKey, r.ch[slot].v, p.ext.caseSens)
			r.kh, r.keyed = keyHash(p.extSeed, p.prepKey[start:]), true
		}
		p.keyEnd = append(p.keyEnd, uint32(len(p.prepKey)))
		if !r.keyed {
			continue
		}
		for j := r.kh & mask; ; j = (j + 1) & mask {
			other := slots[j] - 1
			if other < 0 {
				slots[j] = int32(i) + 1
				break
			}
			if o := &rows[other]; o.kh == r.kh && bytes.Equal(key(int(other)), key(i)) {
				o.dup, r.dup, dups = true, true, true
				break
			}
		}
	}
	if !dups {
		return
	}
	for i := range rows {
		if r := &rows[i]; r.dup {
			r.err = &rowErr{"DUPLICATE_VALUE", "Duplicate external id specified: " + string(r.ch[slot].v), nil}
		}
	}
}

// applyLocked saves one row, under the store lock (applyChunk). It
// returns the record's seq (also for rows that failed on an identified
// record, for sf__Id) and whether it created it.
func (p *processor) applyLocked(r *prow, now int64) (uint32, bool, *rowErr) {
	t := p.t
	var target uint32 // record identified by Id or key
	// Identify the record for update, delete and upsert by Id.
	op := p.j.operation
	byID := op == "update" || op == "delete" || op == "hardDelete" || (p.ext != nil && p.ext.kind == kindID && len(r.id) > 0)
	if byID {
		if len(r.id) == 0 || isNA(r.id) {
			if r.err != nil {
				return 0, false, r.err
			}
			return 0, false, &rowErr{"MISSING_ARGUMENT", "Id not specified in an " + op + " call", nil}
		}
		seq, st := t.resolveID(string(r.id))
		var e *rowErr
		switch st {
		case idMalformed:
			e = &rowErr{"MALFORMED_ID", p.ob.name + " ID: id value of incorrect type: " + string(r.id), []string{"Id"}}
		case idOtherObject, idUnknown:
			e = errCrossReference()
		case idDeleted:
			e = &rowErr{"ENTITY_IS_DELETED", "entity is deleted", nil}
		}
		if st != idDeleted {
			target = seq
		}
		if e != nil {
			if r.err != nil {
				// A row that is wrong in several ways reports its own error first.
				return 0, false, r.err
			}
			return seq, false, e
		}
	}
	// Upsert by external ID: find the record. Rows that already failed
	// look it up too: sf__Id names the record a failed row identified (3.1 [O]).
	if p.ext != nil && p.ext.kind != kindID && !r.dup {
		c := r.ch[p.ext.slot]
		switch {
		case c.st == stSet:
			var first uint32
			var n int
			if r.keyed {
				first, n = t.lookupHashed(p.ext, c.v, r.kh, &p.key)
			} else {
				first, n = t.lookup(p.ext, c.v, &p.key)
			}
			if n > 1 {
				if r.err != nil {
					return 0, false, r.err
				}
				ids := t.lookupAll(p.ext, c.v)
				strs := make([]string, len(ids))
				for i, s := range ids {
					strs[i] = t.id(s)
				}
				return 0, false, &rowErr{"DUPLICATE_EXTERNAL_ID", "External Id: more than one record found for external id field: [" + strings.Join(strs, ", ") + "]", nil}
			}
			target = first
		case r.err == nil:
			// [I]: an empty key fails the row (4.1).
			return 0, false, &rowErr{"MISSING_ARGUMENT", p.ext.name + " not specified", nil}
		}
	}
	if r.err != nil {
		return target, false, r.err
	}
	if p.lockP > 0 && p.lockRand.Float64() < p.lockP {
		// The realistic org's contention (orgmodel.go).
		p.model.lockFailures++
		id := ""
		if target != 0 {
			id = t.id(target)
		}
		return target, false, errLocked(id)
	}
	if op == "delete" || op == "hardDelete" {
		// hardDelete skips the Recycle Bin [D]; here both remove the record.
		if e := p.st.lockErrLocked(t, r.ch, target); e != nil {
			return target, false, e
		}
		t.deleteLocked(target, now, &p.sc)
		return target, false, nil
	}
	if op == "upsert" && target == 0 {
		// The key was just looked up: no need to check its uniqueness again.
		p.sc.known = p.ext
		p.sc.knownHash, p.sc.hashed = r.kh, r.keyed
	}
	seq, created, e := p.st.saveLocked(t, target, r.ch, p.rels, now, &p.sc)
	p.sc.known, p.sc.hashed = nil, false
	return seq, created, e
}

// warmKeys reads, for every row of a chunk with a hashed upsert key, the
// index slot its lookup starts at, before the rows are applied one by one
// (keyIndex.warm). Under the store lock.
func (p *processor) warmKeys(chunk []prow) {
	if p.ext == nil || p.ext.kind == kindID {
		return
	}
	ix := &p.t.idx[p.ext.index]
	if ix.n == 0 {
		return
	}
	var sink uint32
	for i := range chunk {
		if chunk[i].keyed {
			sink += ix.warm(chunk[i].kh)
		}
	}
	p.sink += sink
}
