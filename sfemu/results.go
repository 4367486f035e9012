package sfemu

import (
	"bufio"
	"bytes"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// Job results (salesforce-api.md §3). They are kept compactly: the upload
// itself plus, per processed row, its offset, the record it touched and
// its outcome; error texts only for failed rows. The three CSVs are
// rendered from these on request by re-reading the uploaded rows.

type resultKind int

const (
	resultSuccessful resultKind = iota
	resultFailed
	resultUnprocessed
)

// jobResults is immutable once published with setResults.
type jobResults struct {
	data   []byte
	delim  byte
	crlf   bool
	prefix string // key prefix for sf__Id
	seed   uint64 // 0 = upload order

	header []string  // uploaded header names (nil if no header was read)
	cols   []colPlan // column plan, when the header was valid

	rowStart []uint32 // processed rows, upload order: start offset
	rec      []uint32 // record seq touched (0 = none)
	status   []uint8  // rowCreated, rowUpdated or rowFailed
	failRow  []uint32 // indexes of failed rows, ascending
	failErr  []string // their sf__Error texts

	unprocFrom uint32 // offset where the unprocessed rows start
}

// setUnprocessedHeader reads the header so that unprocessed rows can be
// echoed with it when nothing was processed.
func (res *jobResults) setUnprocessedHeader() {
	if len(res.data) == 0 {
		return
	}
	crlf := res.crlf
	if !checkLineEndings(res.data, crlf) {
		// The data does not use the job's line ending: read it with its own
		// so the rows can still be returned as they were sent.
		crlf = bytes.Contains(res.data, []byte("\r\n"))
		res.crlf = crlf
	}
	rd := newCSVReader(res.data, res.delim, crlf)
	if !rd.next() {
		res.unprocFrom = uint32(len(res.data))
		return
	}
	res.header = make([]string, len(rd.fields))
	for i, f := range rd.fields {
		res.header[i] = string(f)
	}
	res.unprocFrom = uint32(rd.pos)
}

// echoed reports whether column ci appears in the successful and failed
// results: only columns that matched a field are echoed back (3.1 [D]);
// names of no field, which a delete job ignores, are not.
func (res *jobResults) echoed(ci int) bool {
	return ci >= len(res.cols) || res.cols[ci].kind != colUnmatched
}

// rowEnd is the end offset of processed row i.
func (res *jobResults) rowEnd(i int) uint32 {
	if i+1 < len(res.rowStart) {
		return res.rowStart[i+1]
	}
	return res.unprocFrom
}

// order returns the indexes of processed rows with the wanted outcome, in
// the order they are written: shuffled unless seed is 0 (3.4: row order is
// not guaranteed, so clients must not rely on it).
func (res *jobResults) order(kind resultKind) []uint32 {
	var idx []uint32
	if kind == resultFailed {
		idx = append(idx, res.failRow...)
	} else {
		n := len(res.status) - len(res.failRow)
		idx = make([]uint32, 0, n)
		for i, st := range res.status {
			if st != rowFailed {
				idx = append(idx, uint32(i))
			}
		}
	}
	if res.seed != 0 && len(idx) > 1 {
		idx = shuffleWindows(idx, mrand.New(mrand.NewPCG(res.seed, uint64(kind))))
	}
	return idx
}

// shuffleWindow is how many result rows are shuffled among themselves:
// about a megabyte of upload, so that rendering them in that order stays
// in the processor's cache rather than waiting on memory for every row.
const shuffleWindow = 4096

// shuffleWindows returns idx in a random order: the rows of each window of
// shuffleWindow consecutive rows shuffled among themselves, and the
// windows in a random order. No row keeps a predictable place, yet
// rendering touches one window of the upload at a time.
func shuffleWindows(idx []uint32, r *mrand.Rand) []uint32 {
	n := (len(idx) + shuffleWindow - 1) / shuffleWindow
	for w := range n {
		sub := idx[w*shuffleWindow : min((w+1)*shuffleWindow, len(idx))]
		r.Shuffle(len(sub), func(a, b int) { sub[a], sub[b] = sub[b], sub[a] })
	}
	if n == 1 {
		return idx
	}
	order := r.Perm(n)
	out := make([]uint32, 0, len(idx))
	for _, w := range order {
		out = append(out, idx[w*shuffleWindow:min((w+1)*shuffleWindow, len(idx))]...)
	}
	return out
}

// writeCSV renders one result set: comma-separated, LF line endings,
// sf__ names quoted and original names unquoted in the header, every data
// value quoted (salesforce-api.md 3.2).
func (res *jobResults) writeCSV(w *bufio.Writer, kind resultKind) error {
	switch kind {
	case resultSuccessful:
		w.WriteString(`"sf__Id","sf__Created"`)
	case resultFailed:
		w.WriteString(`"sf__Id","sf__Error"`)
	}
	first := true
	for ci, name := range res.header {
		if kind != resultUnprocessed && !res.echoed(ci) {
			continue
		}
		if !first || kind != resultUnprocessed {
			w.WriteByte(',')
		}
		first = false
		writeHeaderName(w, name)
	}
	w.WriteByte('\n')
	var buf []byte
	switch kind {
	case resultUnprocessed:
		if int(res.unprocFrom) >= len(res.data) {
			break
		}
		rd := newCSVReader(res.data[res.unprocFrom:], res.delim, res.crlf)
		for rd.next() {
			buf = buf[:0]
			for i, v := range rd.fields {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendQuoted(buf, v)
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
	default:
		return res.writeRows(w, kind, res.order(kind))
	}
	return nil
}

// rowRenderer renders processed rows; each goroutine has its own.
type rowRenderer struct {
	res  *jobResults
	kind resultKind
	rd   *csvReader
	vals []byte
	idb  [18]byte
}

func (rr *rowRenderer) append(buf []byte, i uint32) []byte {
	res := rr.res
	buf = append(buf, '"')
	if seq := res.rec[i]; seq != 0 {
		buf = append(buf, appendID(rr.idb[:0], res.prefix, uint64(seq))...)
	}
	buf = append(buf, `","`...)
	if rr.kind == resultSuccessful {
		if res.status[i] == rowCreated {
			buf = append(buf, "true"...)
		} else {
			buf = append(buf, "false"...)
		}
	} else {
		k := sort.Search(len(res.failRow), func(n int) bool { return res.failRow[n] >= i })
		buf = appendEscaped(buf, []byte(res.failErr[k]))
	}
	buf = append(buf, '"')
	if res.status[i] != rowFailed && len(res.cols) == len(res.header) {
		buf, rr.vals = res.appendSavedRow(buf, rr.vals, int(i))
	} else {
		buf, rr.vals = res.appendRow(buf, rr.vals, rr.rd, int(i), false)
	}
	return append(buf, '\n')
}

// renderBlock is how many rows one goroutine renders at a time.
const renderBlock = 4096

// renderPool keeps render blocks' buffers between result downloads: a
// download of 10,000 rows would otherwise take three new buffers of about
// 1.5 MB each, zeroed, and pay the collector for them afterwards.
var renderPool sync.Pool

// takeRenderBuf returns an empty buffer with room for size bytes.
func takeRenderBuf(size int) []byte {
	if p, _ := renderPool.Get().(*[]byte); p != nil && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

// writeRows writes the rows idx. Large results are rendered by several
// goroutines in blocks and written in order, so a million-row result
// uses every core.
func (res *jobResults) writeRows(w *bufio.Writer, kind resultKind, idx []uint32) error {
	workers := min(runtime.GOMAXPROCS(0), 4)
	nblocks := (len(idx) + renderBlock - 1) / renderBlock
	if workers < 2 || nblocks < 2 {
		rr := &rowRenderer{res: res, kind: kind, rd: newCSVReader(nil, res.delim, res.crlf)}
		var buf []byte
		for _, i := range idx {
			buf = rr.append(buf[:0], i)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
	slots := make([]chan []byte, nblocks)
	for b := range slots {
		slots[b] = make(chan []byte, 1)
	}
	tokens := make(chan struct{}, 2*workers) // bounds the blocks rendered ahead
	spare := make(chan []byte, 3*workers)    // written blocks, reused to avoid zeroing new ones
	// Rendered rows are about as long as uploaded ones plus the sf__ columns.
	sizeHint := min(len(res.data)/max(len(res.rowStart), 1)*renderBlock*5/4+renderBlock*32, 64<<20)
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := &rowRenderer{res: res, kind: kind, rd: newCSVReader(nil, res.delim, res.crlf)}
			for {
				select {
				case tokens <- struct{}{}:
				case <-stop:
					return
				}
				b := int(next.Add(1) - 1)
				if b >= nblocks {
					return
				}
				var buf []byte
				select {
				case buf = <-spare:
				default:
					buf = takeRenderBuf(sizeHint)
				}
				for _, i := range idx[b*renderBlock : min((b+1)*renderBlock, len(idx))] {
					buf = rr.append(buf, i)
				}
				slots[b] <- buf
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		for {
			select {
			case buf := <-spare:
				renderPool.Put(&buf)
			default:
				return
			}
		}
	}()
	for b := range slots {
		buf := <-slots[b]
		<-tokens
		if _, err := w.Write(buf); err != nil {
			return err
		}
		select {
		case spare <- buf[:0]:
		default:
			renderPool.Put(&buf)
		}
	}
	return nil
}

// appendRow re-reads processed row i and appends its values, each quoted,
// re-serialised after type conversion as Salesforce does (3.2: numbers
// come back in Java notation, e.g. 9.12260031E8; text unchanged). saved
// says the row was saved, so each of its values converted without error.
func (res *jobResults) appendRow(buf, scratch []byte, rd *csvReader, i int, saved bool) ([]byte, []byte) {
	rd.reset(res.data[res.rowStart[i]:res.rowEnd(i)])
	rd.next()
	for ci := range res.header {
		if !res.echoed(ci) {
			continue
		}
		buf = append(buf, ',')
		var v []byte
		if ci < len(rd.fields) {
			v = rd.fields[ci]
		}
		if ci < len(res.cols) && len(v) > 0 {
			scratch = echoValue(scratch[:0], &res.cols[ci], v, saved)
			v = scratch
		}
		buf = appendQuoted(buf, v)
	}
	return buf, scratch
}

// echoValue is the text a result row shows for an uploaded value. valid
// says the value is known to have converted without error.
func echoValue(dst []byte, c *colPlan, v []byte, valid bool) []byte {
	if c.kind != colField || isNA(v) {
		return append(dst, v...)
	}
	f := c.f
	switch f.kind {
	case kindDouble:
		if out, ok := appendPlainDouble(dst, v); ok {
			return out
		}
		if decimalSyntax(v) {
			if x, err := strconv.ParseFloat(unsafeString(v), 64); err == nil {
				return javaDouble(dst, x)
			}
		}
	case kindInt, kindBoolean, kindPicklist, kindMultiPicklist:
		if out, e := convertValue(f, v, dst); e == nil {
			return out
		}
	case kindDateTime:
		// [I]: datetimes come back normalised to UTC with milliseconds.
		if len(v) == 24 && v[23] == 'Z' && v[19] == '.' {
			if valid {
				return append(dst, v...) // already in that form, and it converted
			}
			if _, ok := parseDateTime(v); ok {
				return append(dst, v...) // already in that form
			}
		}
		if t, ok := parseDateTime(v); ok {
			return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
		}
	}
	return append(dst, v...)
}

func appendQuoted(dst, v []byte) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, v)
	return append(dst, '"')
}

// appendEscaped doubles quotes inside a quoted value.
func appendEscaped(dst, v []byte) []byte {
	for {
		i := bytes.IndexByte(v, '"')
		if i < 0 {
			return append(dst, v...)
		}
		dst = append(dst, v[:i+1]...)
		dst = append(dst, '"')
		v = v[i+1:]
	}
}

// writeHeaderName writes an original column name unquoted, unless it
// needs quotes to stay one CSV field.
func writeHeaderName(w *bufio.Writer, name string) {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			w.Write(appendQuoted(nil, []byte(name)))
			return
		}
	}
	w.WriteString(name)
}

// resultsHandler serves the three result resources (salesforce-api.md 3.1).
// Before a terminal state it answers 400 INVALIDJOBSTATE [I: 3.4].
func resultsHandler(kind resultKind) handlerFunc {
	return func(s *Server, rq *request) (*reply, error) {
		j, done, aerr := s.store.jobResultsReady(rq.params[0])
		if aerr != nil {
			return nil, aerr
		}
		// An aborted job's processor may still be finishing its chunk.
		select {
		case <-done:
		case <-rq.r.Context().Done():
			return nil, rq.r.Context().Err()
		}
		res := s.store.jobResults(j)
		return &reply{status: http.StatusOK, contentType: "text/csv; charset=UTF-8", stream: func(w io.Writer) error {
			bw, ok := w.(*bufio.Writer)
			if !ok {
				bw = bufio.NewWriter(w)
				defer bw.Flush()
			}
			return res.writeCSV(bw, kind)
		}}, nil
	}
}

// appendPlainDouble is javaDouble(ParseFloat(v)) for the common plain
// decimals, without either: an optional minus, 1 to 7 integer digits not
// starting with 0 (so 1 <= |x| < 10^7, where Java prints plain decimals),
// an optional fraction, at most 15 significant digits in all (so the
// shortest text of the parsed double is these digits). Java prints them
// without trailing zeros in the fraction, and at least one fraction digit.
// ok is false for any other text, which then takes the general path.
func appendPlainDouble(dst, v []byte) ([]byte, bool) {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	intStart := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	intDigits := i - intStart
	if intDigits == 0 || intDigits > 7 || v[intStart] == '0' {
		return dst, false
	}
	end := i // end of the significant text
	if i < len(v) {
		if v[i] != '.' {
			return dst, false
		}
		i++
		fracStart := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i != len(v) || intDigits+(i-fracStart) > 15 {
			return dst, false
		}
		end = i
		for end > fracStart && v[end-1] == '0' {
			end--
		}
		if end == fracStart {
			end = fracStart - 1 // drop the point too
		}
	}
	dst = append(dst, v[:end]...)
	if end == intStart+intDigits {
		dst = append(dst, ".0"...)
	}
	return dst, true
}

// echoAsIs reports whether a column's values come back exactly as
// uploaded (text, and columns that are not a converted field).
func echoAsIs(c *colPlan) bool {
	if c.kind != colField {
		return true
	}
	switch c.f.kind {
	case kindDouble, kindInt, kindBoolean, kindPicklist, kindMultiPicklist, kindDateTime:
		return false
	}
	return true
}

// appendSavedRow is appendRow for a saved row, in one pass over its
// upload without the CSV reader: a saved row is well-formed CSV with one
// value per column, every value converted, so a quoted value that comes
// back as uploaded is copied with its quotes (the doubled inner quotes are
// what appendQuoted would write), an unquoted one is wrapped in quotes
// (it holds none), and only values that are re-serialised are unquoted
// and converted.
func (res *jobResults) appendSavedRow(buf, scratch []byte, i int) ([]byte, []byte) {
	d := res.data[res.rowStart[i]:res.rowEnd(i)]
	p := 0
	for ci := range res.cols {
		c := &res.cols[ci]
		var v []byte // the value, when it must be converted
		var raw []byte
		quoted := p < len(d) && d[p] == '"'
		if quoted {
			start := p
			p++
			for {
				q := bytes.IndexByte(d[p:], '"')
				if q < 0 { // cannot happen in a saved row; keep what there is
					p = len(d)
					break
				}
				p += q + 1
				if p < len(d) && d[p] == '"' {
					p++
					continue
				}
				break
			}
			raw = d[start:p]
		} else {
			e := bytes.IndexByte(d[p:], res.delim)
			if ci == len(res.cols)-1 || e < 0 {
				e = bytes.IndexByte(d[p:], '\n')
				if e < 0 {
					e = len(d) - p
				}
				if res.crlf && e > 0 && d[p+e-1] == '\r' {
					e--
				}
			}
			raw = d[p : p+e]
			p += e
		}
		p++ // the delimiter (or the line ending after the last value)
		if !res.echoed(ci) {
			continue
		}
		buf = append(buf, ',')
		if echoAsIs(c) {
			if quoted {
				buf = append(buf, raw...)
			} else {
				buf = append(buf, '"')
				buf = append(buf, raw...)
				buf = append(buf, '"')
			}
			continue
		}
		v = raw
		scratch = scratch[:0]
		if quoted {
			scratch = unquoteCSV(scratch, raw)
			v = scratch
		}
		if len(v) > 0 {
			start := len(scratch)
			scratch = echoValue(scratch, c, v, true)
			v = scratch[start:]
		}
		buf = appendQuoted(buf, v)
	}
	return buf, scratch
}

// unquoteCSV appends the value of a quoted CSV field ("a""b" -> a"b).
func unquoteCSV(dst, raw []byte) []byte {
	if len(raw) < 2 {
		return dst
	}
	raw = raw[1 : len(raw)-1]
	for {
		q := bytes.IndexByte(raw, '"')
		if q < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:q+1]...)
		raw = raw[q+1:]
		if len(raw) > 0 && raw[0] == '"' {
			raw = raw[1:]
		}
	}
}
