package sfemu

import (
	"bytes"
	"strconv"
)

// csvReader splits uploaded job data into records without copying: fields
// point into the data, except quoted fields with doubled quotes, which are
// unquoted into a scratch buffer that is reused for each record. It is
// faster than encoding/csv because it works on the whole upload in memory
// and splits quote-free lines with bytes.IndexByte.
//
// Rules (salesforce-api.md 4.1): the delimiter is the job's columnDelimiter,
// records end with the job's lineEnding (checked beforehand by
// checkLineEndings), quoted values may hold delimiters, quotes ("") and
// line breaks, values are not trimmed. A quote inside an unquoted value or
// text after a closing quote makes the record invalid [D: "makes the row
// invalid"]; the record is still split so that it can be echoed back.
type csvReader struct {
	data    []byte
	pos     int
	delim   byte
	crlf    bool
	fields  [][]byte
	scratch []byte
	start   int       // offset of the current record
	bad     string    // why the current record is malformed, "" if fine
	stop    [256]bool // the bytes that end or spoil an unquoted value: delim, LF, quote
}

func newCSVReader(data []byte, delim byte, crlf bool) *csvReader {
	r := &csvReader{data: data, delim: delim, crlf: crlf}
	r.stop[delim], r.stop['\n'], r.stop['"'] = true, true, true
	return r
}

// next reads the next record into r.fields; false at the end of the data.
// Completely empty lines are skipped [I].
func (r *csvReader) next() bool {
	for {
		if r.pos >= len(r.data) {
			return false
		}
		r.start = r.pos
		r.bad = ""
		r.fields = r.fields[:0]
		r.scratch = r.scratch[:0]
		nl := bytes.IndexByte(r.data[r.pos:], '\n')
		var line []byte
		next := len(r.data)
		if nl >= 0 {
			line = r.data[r.pos : r.pos+nl]
			next = r.pos + nl + 1
		} else {
			line = r.data[r.pos:]
		}
		if r.crlf && len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			r.pos = next
			continue
		}
		if bytes.IndexByte(line, '"') < 0 {
			// Fast path: no quotes, the record is this line. Values are
			// short, so one pass over the bytes beats a search per value.
			start := 0
			for i, c := range line {
				if c == r.delim {
					r.fields = append(r.fields, line[start:i])
					start = i + 1
				}
			}
			r.fields = append(r.fields, line[start:])
			r.pos = next
			return true
		}
		r.slow()
		return true
	}
}

// reset points the reader at new data, keeping its buffers.
func (r *csvReader) reset(data []byte) {
	r.data, r.pos = data, 0
}

// eol returns the offset after the line ending at i, and whether there is
// one (the end of the data counts as one).
func (r *csvReader) eol(i int) (int, bool) {
	d := r.data
	if i >= len(d) {
		return i, true
	}
	if d[i] == '\n' {
		return i + 1, true
	}
	if r.crlf && d[i] == '\r' && i+1 < len(d) && d[i+1] == '\n' {
		return i + 2, true
	}
	return i, false
}

// slow parses a record that contains quotes, possibly over several lines.
func (r *csvReader) slow() {
	d := r.data
	p := r.pos
	for {
		if p < len(d) && d[p] == '"' {
			// Quoted field.
			p++
			s := len(r.scratch)
			closed := false
			for p < len(d) {
				q := bytes.IndexByte(d[p:], '"')
				if q < 0 {
					r.scratch = append(r.scratch, d[p:]...)
					p = len(d)
					break
				}
				r.scratch = append(r.scratch, d[p:p+q]...)
				p += q + 1
				if p < len(d) && d[p] == '"' {
					r.scratch = append(r.scratch, '"')
					p++
					continue
				}
				closed = true
				break
			}
			if !closed {
				r.setBad("missing closing quote in a quoted value starting at byte " + strconv.Itoa(r.start))
			}
			// Text between the closing quote and the delimiter makes the record invalid.
			e := p
			for e < len(d) && d[e] != r.delim {
				if _, eol := r.eol(e); eol {
					break
				}
				e++
			}
			if e > p {
				r.setBad("extraneous characters after a closing quote")
				r.scratch = append(r.scratch, d[p:e]...)
			}
			p = e
			r.fields = append(r.fields, r.scratch[s:len(r.scratch):len(r.scratch)])
		} else {
			// An unquoted value ends at the delimiter or the line ending;
			// one pass over its (usually few) bytes finds the end and any
			// quote in it.
			e, quote := p, false
			for {
				for e < len(d) && !r.stop[d[e]] {
					e++
				}
				if e == len(d) || d[e] != '"' {
					break
				}
				quote = true
				e++
			}
			if r.crlf && e > p && e < len(d) && d[e] == '\n' && d[e-1] == '\r' {
				e-- // the CR of this record's CRLF
			}
			if quote {
				r.setBad(`a quote (") inside an unquoted value; quote the whole value and double inner quotes`)
			}
			r.fields = append(r.fields, d[p:e])
			p = e
		}
		if p < len(d) && d[p] == r.delim {
			p++
			continue
		}
		r.pos, _ = r.eol(p)
		return
	}
}

func (r *csvReader) setBad(msg string) {
	if r.bad == "" {
		r.bad = msg
	}
}

// checkLineEndings reports whether every line break in data is the job's
// lineEnding: an LF job may hold no CR at all and a CRLF job no bare LF or
// CR, even inside quoted values (salesforce-api.md 2.11 [O]).
func checkLineEndings(data []byte, crlf bool) bool {
	if !crlf {
		return bytes.IndexByte(data, '\r') < 0
	}
	p := 0
	for {
		i := bytes.IndexByte(data[p:], '\n')
		if i < 0 {
			break
		}
		if p+i == 0 || data[p+i-1] != '\r' {
			return false
		}
		p += i + 1
	}
	// Every CR must be followed by LF.
	p = 0
	for {
		i := bytes.IndexByte(data[p:], '\r')
		if i < 0 {
			return true
		}
		if p+i+1 >= len(data) || data[p+i+1] != '\n' {
			return false
		}
		p += i + 1
	}
}

// delimiters maps columnDelimiter values to bytes (salesforce-api.md 2.2).
var delimiters = map[string]byte{
	"COMMA": ',', "TAB": '\t', "PIPE": '|', "SEMICOLON": ';', "CARET": '^', "BACKQUOTE": '`',
}
