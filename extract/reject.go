package extract

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// This file holds what lets one bad row fail alone: the rejected files
// (Options.RejectDir), the limit on rejected rows (Options.MaxRejected), the
// key sets of a re-extraction (Options.OnlyKeys), and the checks that keep
// batch and rejected files from being written through a link.

// RejectedColumns are the columns of a rejected file after the order_by
// columns (whose header names are the Table.OrderBy entries):
//
//	column        the source column whose value was refused ("(whole row)" for a record over the limit)
//	field         the Salesforce field it maps to
//	value         the value's first 100 characters; control characters, NUL and
//	              bytes that are not UTF-8 written as \n, \x00, \xff ...
//	value_bytes   the whole value's length in bytes (the source text's, or the
//	              shown form's for numbers and dates)
//	reason        why it cannot be sent, as a *ValueError says it
//	fix           what to do about it
var RejectedColumns = []string{"column", "field", "value", "value_bytes", "reason", "fix"}

// rejectedPath is where the rejected rows of batch index go.
func rejectedPath(dir, name string, index int) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%05d_rejected.csv", name, index))
}

// excerptChars bounds the value shown in a rejected file.
const excerptChars = 100

// excerpt renders at most excerptChars characters of b for a rejected
// file: printable text as it is, everything else escaped Go-style, so that
// the file is valid UTF-8 without NULs whatever the value held.
func excerpt(b []byte) string {
	var sb strings.Builder
	for n := 0; len(b) > 0 && n < excerptChars; n++ {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&sb, `\x%02x`, b[0])
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, r)
		case !unicode.IsPrint(r) && !unicode.IsSpace(r):
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// rejectedLine encodes one rejected row as a CSV record.
func rejectedLine(key []string, column, field, value string, valueBytes int, reason, fix string) []byte {
	var sb strings.Builder
	w := csv.NewWriter(&sb)
	rec := make([]string, 0, len(key)+len(RejectedColumns))
	for _, k := range key {
		if !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
			k = excerpt([]byte(k))
		}
		rec = append(rec, k)
	}
	rec = append(rec, column, field, value, strconv.Itoa(valueBytes), reason, fix)
	_ = w.Write(rec) // a strings.Builder does not fail
	w.Flush()
	return []byte(sb.String())
}

func rejectedHeader(orderBy []string) []byte {
	cols := make([]string, 0, len(orderBy)+len(RejectedColumns))
	for _, k := range orderBy {
		cols = append(cols, strings.TrimSpace(k))
	}
	var sb strings.Builder
	w := csv.NewWriter(&sb)
	_ = w.Write(append(cols, RejectedColumns...)) // a strings.Builder does not fail
	w.Flush()
	return []byte(sb.String())
}

// Rejected is one row of a rejected file.
type Rejected struct {
	Key        []string // order_by values, as Batch.LastKey writes them
	Column     string
	Field      string
	Value      string // excerpt
	ValueBytes int
	Reason     string
	Fix        string
}

// ReadRejected reads a rejected file written by Extract (Batch.RejectedPath).
// keyColumns is the number of order_by columns of its table.
func ReadRejected(path string, keyColumns int) ([]Rejected, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read rejected rows: %w", err)
	}
	defer f.Close() // read-only
	r := csv.NewReader(f)
	r.FieldsPerRecord = keyColumns + len(RejectedColumns)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read rejected rows from %s: header: %w", path, err)
	}
	if strings.Join(header[keyColumns:], ",") != strings.Join(RejectedColumns, ",") {
		return nil, fmt.Errorf("read rejected rows from %s: header %q is not order_by columns followed by %s", path, strings.Join(header, ","), strings.Join(RejectedColumns, ","))
	}
	var out []Rejected
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read rejected rows from %s: %w", path, err)
		}
		n, err := strconv.Atoi(rec[keyColumns+3])
		if err != nil {
			return nil, fmt.Errorf("read rejected rows from %s: value_bytes %q is not a number", path, rec[keyColumns+3])
		}
		out = append(out, Rejected{Key: rec[:keyColumns:keyColumns], Column: rec[keyColumns], Field: rec[keyColumns+1],
			Value: rec[keyColumns+2], ValueBytes: n, Reason: rec[keyColumns+4], Fix: rec[keyColumns+5]})
	}
}

// RejectLimitError stops an extraction that rejected more rows than
// Options.MaxRejected. The batch holding the row over the limit is finished
// and reported before it is returned, so a later extraction resumes after it.
type RejectLimitError struct {
	Table    string
	Rejected int64 // rows rejected in this Extract call
	Limit    int64 // Options.MaxRejected
	Last     *ValueError
}

func (e *RejectLimitError) Error() string {
	return fmt.Sprintf("extract %s: %d rows rejected, more than the limit of %d; the last: %s", e.Table, e.Rejected, e.Limit, e.Last.Error())
}

// KeySet is a set of order_by key tuples, each as Batch.LastKey and the
// rejected files give a row's key. Options.OnlyKeys takes one.
type KeySet struct {
	idx  map[string]int
	keys [][]string
}

// NewKeySet returns an empty set (the zero KeySet is one too).
func NewKeySet() *KeySet { return &KeySet{idx: map[string]int{}} }

// joinKey is the map key of a tuple: exact keys never hold a NUL byte, so
// joining on NUL is unambiguous.
func joinKey(key []string) string { return strings.Join(key, "\x00") }

// Add puts key into the set (once).
func (s *KeySet) Add(key []string) {
	if s.idx == nil {
		s.idx = map[string]int{}
	}
	k := joinKey(key)
	if _, ok := s.idx[k]; ok {
		return
	}
	s.idx[k] = len(s.keys)
	s.keys = append(s.keys, append([]string(nil), key...))
}

// Len is the number of keys in the set.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// Has reports whether key is in the set.
func (s *KeySet) Has(key []string) bool {
	_, ok := s.idx[joinKey(key)]
	return ok
}

// ErrLink is wrapped by errors about a symbolic link (or another non-file)
// found where Extract writes a file: a link there was not made by this
// tool and is never written through.
var ErrLink = safefile.ErrLink
