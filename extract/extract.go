package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// Field maps one source column to one Salesforce field; Table.Fields lists
// them in header order.
type Field struct {
	// Column is the source column (a column of Table.Query's result or of
	// Table.From). Matched exactly first, then case-insensitively.
	Column string
	// Name is the Salesforce field API name written in the header, e.g.
	// "External_Id__c" or "Account__r.External_Id__c".
	Name string
	// Type is the Salesforce field type from describe ("date", "datetime",
	// "boolean", "double", "currency", "percent", "int", "string", ...).
	// Optional: when empty the value form follows the source column type.
	// Set it to write a timestamp column into a date field as yyyy-MM-dd,
	// or a 0/1 or Y/N column into a boolean field.
	Type string
	// Length is the field's maximum length in characters (describe
	// "length"). Optional: 0 means Salesforce's limit of 131,072 characters
	// per field. A longer value fails its row (or the extraction, see
	// Options.RejectDir) unless Truncate is set.
	Length int
	// Truncate cuts text longer than Length (or Salesforce's limit) to that
	// many characters instead of refusing it, as Data Loader's "allow field
	// truncation" does; Batch.Truncated counts the values cut. Characters
	// are counted as the length check counts them: Unicode code points,
	// with CR LF as one (it is written as LF).
	Truncate bool
}

// NullMode says what a SQL NULL becomes in the batch files.
type NullMode int

const (
	// NullKeep writes NULL as an empty value: an update or upsert leaves the
	// field unchanged, an insert leaves it unset. The default.
	NullKeep NullMode = iota
	// NullClear writes NULL (and the empty string) as #N/A, which sets the
	// field to null in Salesforce.
	NullClear
)

// String returns "keep" or "clear".
func (m NullMode) String() string {
	if m == NullClear {
		return "clear"
	}
	return "keep"
}

// Table says what to extract and how to write it.
type Table struct {
	// Name is the tables-config key; batch files are <Name>_<NNNNN>.csv.
	Name string
	// Query is a SELECT whose result is extracted. Exactly one of Query
	// and From is set.
	Query string
	// From is a table or view name, optionally schema-qualified.
	From string
	// OrderBy lists the columns of a stable, unique, non-null ordering key
	// (ascending). It makes a batch index always mean the same rows, and it
	// is what a resume starts after.
	OrderBy []string
	// Fields maps source columns to Salesforce fields, in header order.
	Fields []Field
	// NullAs is NullKeep (default) or NullClear.
	NullAs NullMode
	// SourceTimeZone is the zone of zone-less timestamps (SQL TIMESTAMP
	// WITHOUT TIME ZONE, Oracle DATE and TIMESTAMP, zone-less text in
	// SQLite). nil means UTC. Dates never shift.
	SourceTimeZone *time.Location
}

// Position is where an extraction starts.
type Position struct {
	// BatchIndex is the file number of the first file written (start_batch,
	// or the first unfinished batch of a resumed run).
	BatchIndex int
	// Row is the 0-based offset, in the ordered query, of that batch's
	// first row.
	Row int64
	// AfterKey are the order_by values (as text, see Batch.LastKey) of the
	// row just before Row. When set, the query starts after this key
	// (keyset) instead of skipping Row rows with OFFSET.
	AfterKey []string
}

// DefaultMaxBytes is the default byte cap of a batch file: a 10 % margin
// under the 100 MB a Bulk API 2.0 job accepts as raw CSV
// (salesforce-api.md §4.5: 150 MB after base64, so keep raw CSV ≤ 100 MB).
const DefaultMaxBytes = 90_000_000

// MaxUploadBytes is the most raw CSV one Bulk API 2.0 ingest job takes.
const MaxUploadBytes = 100_000_000

// Options controls where and how batch files are written.
type Options struct {
	// Dir is where batch files go; it is created if missing.
	Dir string
	// BatchSize is the number of rows per file (> 0).
	BatchSize int
	// MaxBytes caps a file's size in bytes, header included; a file rolls
	// over early rather than exceed it. 0 means DefaultMaxBytes; at most
	// MaxUploadBytes.
	MaxBytes int64
	// Start is where to start; the zero value starts at row 0 as batch 0.
	Start Position
	// OnBatch, if set, is called after each file is complete and renamed,
	// in file order, from one goroutine (not the caller's; Extract returns
	// only after the last call). Extraction goes on while it runs, up to a
	// few MiB of buffered rows, then waits: it may block for back-pressure.
	// An error stops the extraction.
	OnBatch func(ctx context.Context, b Batch) error
	// OnRows, if set, is called from time to time with the number of rows
	// written so far in this call.
	OnRows func(n int64)

	// RejectDir, when set, makes a row with a value that cannot be written
	// (the cases a *ValueError reports) fail alone: it is left out of the
	// batch file and written, with its key, the column, an excerpt of the
	// value and the reason, to RejectDir/<Name>_<NNNNN>_rejected.csv (see
	// RejectedColumns), created 0600 beside its batch, completed with it
	// and counted in Batch.Rejected; the extraction goes on. An attempt
	// that dies before a batch is finished leaves neither file, so
	// extracting the batch again never repeats a rejected row. When
	// empty, the first such value stops the extraction with the
	// *ValueError. A NULL or repeated order_by value always stops it.
	RejectDir string
	// MaxRejected stops the extraction once more than this many rows were
	// rejected in this call (with RejectDir): the batch holding the row over
	// the limit is finished and reported, then Extract returns a
	// *RejectLimitError. Negative: no limit.
	MaxRejected int64
	// OnlyKeys, when not nil, re-extracts only the rows whose order_by key
	// is in the set (keys as Batch.LastKey gives them): the others are read
	// and skipped, and the scan stops once every key was found;
	// Result.Missing lists the keys not found. The files are written as
	// usual, BatchSize kept rows each. The cost is a scan of the ordered
	// query up to the last key found, whatever the number of keys: simple
	// and correct for every engine and composite key, and fine for the few
	// rows a retry takes, but as slow as a full extraction for a key near
	// the end of a large table.
	OnlyKeys *KeySet
}

// Batch describes one finished batch: the source rows from FirstRow on,
// Rows of them written to its file and Rejected to its rejected file. A
// batch whose rows were all rejected has no file (Path "").
type Batch struct {
	Index    int    // file number (the NNNNN of the name)
	Path     string // Dir/<Name>_<NNNNN>.csv; "" when no row was written
	Rows     int64  // data rows written (header not counted)
	Bytes    int64  // file size in bytes
	SHA256   string // hex SHA-256 of the file's bytes
	FirstRow int64  // 0-based offset of the batch's first source row in the ordered query
	// Rejected is the number of the batch's source rows that were rejected
	// (Options.RejectDir); the batch spans Rows+Rejected source rows, so
	// the next batch starts at FirstRow+Rows+Rejected.
	Rejected int64
	// RejectedPath is RejectDir/<Name>_<NNNNN>_rejected.csv, "" when no row
	// was rejected.
	RejectedPath string
	// Truncated is the number of values cut to their field's length
	// (Field.Truncate) in the written rows.
	Truncated int64
	// LastKey are the order_by values of the batch's last source row
	// (Position.AfterKey of the next file), or nil when that key cannot be
	// read back exactly (see appendKey: e.g. SQLite text that looks like a
	// number in an untyped column, bytes); the next file is then resumed
	// with Position.Row.
	LastKey []string
}

// Result is what one Extract call wrote.
type Result struct {
	// Batches are the finished files, in order. After an error they are the
	// files finished before it (complete and usable).
	Batches []Batch
	// Rows is the number of rows written; 0 with Rejected 0 means the query
	// returned no rows (from the start position) and no file was written.
	Rows int64
	// Rejected and Truncated add up the batches'.
	Rejected, Truncated int64
	// Missing are the keys of Options.OnlyKeys that no row has.
	Missing [][]string
}

// maxFieldChars is Salesforce's limit per field value, and maxRecordChars
// per record (salesforce-api.md §4.2/§4.5); maxHeaderChars caps the header.
const (
	maxFieldChars  = 131_072
	maxRecordChars = 400_000
	maxHeaderChars = 32_000
)

// ValueError reports a source value that cannot be written as Bulk API CSV,
// naming where it is and what to do about it.
type ValueError struct {
	Table  string // Table.Name
	Row    int64  // 0-based offset of the row in the ordered query
	Key    string // the row's order_by values, e.g. "ID=42"
	Column string // source column
	Type   string // its type as the database names it (e.g. "numeric", "DATETIME", "VARCHAR2")
	Field  string // Salesforce field
	Value  string // the value, quoted and shortened for display
	Reason string // what is wrong with it
	Fix    string // how to fix it

	excerpt    string // the value as a rejected file shows it ("": Value)
	valueBytes int    // the whole value's length in bytes
}

// Error renders the table, row, key, column, value, reason and fix in one line.
func (e *ValueError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "extract %s: row %d (%s), column %s", e.Table, e.Row, e.Key, e.Column)
	if e.Type != "" {
		fmt.Fprintf(&b, " (%s)", e.Type)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " -> field %s", e.Field)
	}
	fmt.Fprintf(&b, ": %s: value %s", e.Reason, e.Value)
	if e.Fix != "" {
		fmt.Fprintf(&b, "; fix: %s", e.Fix)
	}
	return b.String()
}

// QueryError reports that the source database refused the table's SQL
// before reading a row: Table.Query (or Table.From) does not compile — a
// syntax error; an unknown table, view, column or function; a missing
// privilege. It names the tables-config setting and shows the query (or
// table name) as configured with the database's own message, never the
// SQL Extract builds around it.
//
// Extract reads a query as a derived table, SELECT ... FROM (<query>), so
// the query must be one SELECT whose result columns have distinct names
// (Oracle, for one, refuses two columns of the same name there). A final
// ';' is removed first.
//
// It is a configuration problem: nothing was read, and only a change to
// the tables config (or to the database's schema or grants) helps, so
// ConfigError reports true (sfmigrate exits with code 2). Failures of a
// query that did compile — a connection lost mid-read, a lock timeout, a
// cancelled context — are not QueryErrors.
type QueryError struct {
	Table   string // Table.Name, the tables-config key
	Setting string // the key of the table's entry that holds Query: "query" or "table"
	Query   string // Table.Query or Table.From, as configured
	Engine  string // "sqlite", "postgres" or "oracle"
	// Message is the database's message, e.g. `near "FROM": syntax error`,
	// `column "nmae" does not exist (SQLSTATE 42703)`, `ORA-00942: table or
	// view does not exist`.
	Message string
	Err     error // the driver's error, for errors.As (e.g. *pgconn.PgError)
}

// Error names the setting, shows the configured query or table and the
// database's message, on one line.
func (e *QueryError) Error() string {
	if e.Setting == "table" {
		return fmt.Sprintf("extract %s: tables.%s.table = %q: the source database refused it: %s: %s",
			e.Table, e.Table, e.Query, e.Engine, e.Message)
	}
	return fmt.Sprintf("extract %s: tables.%s.%s: the source database refused it: %s: %s; the query: %s",
		e.Table, e.Table, e.Setting, e.Engine, e.Message, oneLine(e.Query, 500))
}

// Unwrap returns the driver's error.
func (e *QueryError) Unwrap() error { return e.Err }

// ConfigError reports true: the tables config must change (exit code 2).
func (e *QueryError) ConfigError() bool { return true }

// oneLine folds runs of white space (newlines included) into one space and
// cuts the text to about max bytes, for a query quoted in a one-line
// message.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ErrOrderBy is wrapped by errors about the ordering key: a NULL or a
// repeated order_by value, which would make batch positions ambiguous.
var ErrOrderBy = errors.New("order_by is not a unique non-null key")

// showValue quotes a value for an error message, shortened to 120 bytes.
func showValue(b []byte) string {
	const max = 120
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return strconv.Quote(string(b))
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)

// identPathRE matches a possibly schema-qualified table name whose parts are
// plain or double-quoted identifiers.
var identPathRE = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z0-9_$#]*|"(?:[^"]|"")+")(?:\.(?:[A-Za-z_][A-Za-z0-9_$#]*|"(?:[^"]|"")+"))*$`)

// what names the table's source for messages: "table X" or "the query".
func (t *Table) what() string {
	if t.From != "" {
		return "table " + t.From
	}
	return "the query"
}

func (t *Table) validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("extract %s: %s", t.Name, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(t.Name) {
		return fmt.Errorf("extract: table name %q cannot name batch files: use letters, digits, '_', '-' and '.'", t.Name)
	}
	q := strings.TrimSpace(t.Query)
	switch {
	case q == "" && t.From == "":
		return fail("neither query nor table is set: set one of them in the tables config")
	case q != "" && t.From != "":
		return fail("both query and table are set: keep only one")
	case t.From != "" && !identPathRE.MatchString(t.From):
		return fail("table %q is not a table name (schema.table, double quotes for special names); use query for anything else", t.From)
	}
	if len(t.OrderBy) == 0 {
		return fail("order_by is empty: name the column(s) of a unique key, so that start_batch always means the same rows")
	}
	for _, k := range t.OrderBy {
		if strings.TrimSpace(k) == "" {
			return fail("order_by has an empty column name")
		}
	}
	if len(t.Fields) == 0 {
		return fail("no fields: map at least one source column to a Salesforce field")
	}
	seen := map[string]bool{}
	header := 0
	for _, f := range t.Fields {
		if f.Column == "" || f.Name == "" {
			return fail("field mapping %q -> %q has an empty side", f.Column, f.Name)
		}
		if strings.ContainsAny(f.Name, ",\"\r\n") || strings.TrimSpace(f.Name) != f.Name {
			return fail("Salesforce field name %q is not an API name", f.Name)
		}
		low := strings.ToLower(f.Name)
		if seen[low] {
			return fail("field %s is mapped twice", f.Name)
		}
		seen[low] = true
		if f.Length < 0 {
			return fail("field %s has a negative length", f.Name)
		}
		header += len(f.Name) + 1
	}
	if header > maxHeaderChars {
		return fail("header of %d characters exceeds the Bulk API limit of %d", header, maxHeaderChars)
	}
	if t.NullAs != NullKeep && t.NullAs != NullClear {
		return fail("unknown null mode %d", t.NullAs)
	}
	return nil
}

// plan is the resolved select list of one extraction.
type plan struct {
	sel      []column // selected columns, in select order (the engine fills values in this order)
	fields   []column // per Field, in header order: the selected column plus the field's settings
	fieldSrc []int    // per Field: index into sel
	keys     []int    // per OrderBy entry: index into sel
}

// resolve finds name among the described result columns: exact match first,
// then a unique case-insensitive match.
func resolve(described []column, name, what string, t *Table) (int, error) {
	for i := range described {
		if described[i].name == name {
			return i, nil
		}
	}
	found := -1
	for i := range described {
		if strings.EqualFold(described[i].name, name) {
			if found >= 0 {
				return 0, fmt.Errorf("extract %s: %s %q matches several result columns (%s, %s): give them distinct aliases in the query",
					t.Name, what, name, described[found].name, described[i].name)
			}
			found = i
		}
	}
	if found < 0 {
		names := make([]string, len(described))
		for i := range described {
			names[i] = described[i].name
		}
		return 0, &ColumnError{Table: t.Name, What: what, Name: name, Columns: names}
	}
	return found, nil
}

func newPlan(t *Table, described []column) (*plan, error) {
	p := &plan{}
	selected := map[int]int{} // described index -> sel index
	add := func(di int) int {
		if si, ok := selected[di]; ok {
			return si
		}
		p.sel = append(p.sel, described[di])
		selected[di] = len(p.sel) - 1
		return len(p.sel) - 1
	}
	for _, f := range t.Fields {
		di, err := resolve(described, f.Column, "column", t)
		if err != nil {
			return nil, err
		}
		p.fieldSrc = append(p.fieldSrc, add(di))
	}
	for _, k := range t.OrderBy {
		di, err := resolve(described, strings.TrimSpace(k), "order_by column", t)
		if err != nil {
			return nil, err
		}
		p.keys = append(p.keys, add(di))
	}
	for i, f := range t.Fields {
		c := p.sel[p.fieldSrc[i]]
		c.field = f.Name
		c.out = outFor(f.Type)
		c.maxChars = maxFieldChars
		if f.Length > 0 && f.Length < maxFieldChars {
			c.maxChars = f.Length
		}
		c.truncate = f.Truncate
		p.fields = append(p.fields, c)
	}
	return p, nil
}

// Extract streams the table's rows, in order_by order from opts.Start, into
// batch files in opts.Dir and returns what it wrote. Zero rows write no file
// and return Result{Rows: 0}. On error the unfinished file is removed; the
// files finished before it stay and are listed in the Result. Extract calls
// on one Source run one at a time.
func (s *Source) Extract(ctx context.Context, t Table, opts Options) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return Result{}, fmt.Errorf("extract %s: the source %s is closed", t.Name, s.conn.ID)
	}
	if err := t.validate(); err != nil {
		return Result{}, err
	}
	if opts.Dir == "" {
		return Result{}, fmt.Errorf("extract %s: no output directory", t.Name)
	}
	if opts.BatchSize <= 0 {
		return Result{}, fmt.Errorf("extract %s: batch_size %d: must be a positive number of rows", t.Name, opts.BatchSize)
	}
	maxBytes := opts.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxBytes < 0 || maxBytes > MaxUploadBytes {
		return Result{}, fmt.Errorf("extract %s: max bytes %d: must be between 1 and %d (the Bulk API upload limit)", t.Name, maxBytes, MaxUploadBytes)
	}
	st := opts.Start
	if st.Row < 0 || st.BatchIndex < 0 {
		return Result{}, fmt.Errorf("extract %s: start position %+v is negative", t.Name, st)
	}
	if opts.OnlyKeys != nil {
		for _, k := range opts.OnlyKeys.keys {
			if len(k) != len(t.OrderBy) {
				return Result{}, fmt.Errorf("extract %s: key %q to re-extract has %d values but order_by has %d columns (%s)",
					t.Name, k, len(k), len(t.OrderBy), strings.Join(t.OrderBy, ", "))
			}
		}
	}
	if len(st.AfterKey) != 0 && len(st.AfterKey) != len(t.OrderBy) {
		return Result{}, fmt.Errorf("extract %s: resume key has %d values but order_by has %d columns (%s): was order_by changed since the run started?",
			t.Name, len(st.AfterKey), len(t.OrderBy), strings.Join(t.OrderBy, ", "))
	}

	d := s.eng.dialect()
	from, p, err := s.plan(ctx, &t)
	if err != nil {
		return Result{}, err
	}
	q, args, err := d.selectSQL(from, p, st)
	if err != nil {
		return Result{}, fmt.Errorf("extract %s: %w", t.Name, err)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("extract %s: create batch directory: %w", t.Name, err)
	}
	if err := safefile.RefuseDirLink(opts.Dir); err != nil {
		return Result{}, fmt.Errorf("extract %s: batch directory: %w", t.Name, err)
	}
	if opts.RejectDir != "" {
		if err := os.MkdirAll(opts.RejectDir, 0o700); err != nil {
			return Result{}, fmt.Errorf("extract %s: create the directory for rejected rows: %w", t.Name, err)
		}
		if err := safefile.RefuseDirLink(opts.RejectDir); err != nil {
			return Result{}, fmt.Errorf("extract %s: directory for rejected rows: %w", t.Name, err)
		}
	}
	src, err := s.eng.query(ctx, q, args, p.sel)
	if err != nil {
		// Not q itself: the user knows the query, not the SQL around it.
		return Result{}, fmt.Errorf("extract %s: read %s ordered by %s: %w", t.Name, t.what(), strings.Join(t.OrderBy, ", "), err)
	}
	rows := prefetch(src, len(p.sel))
	x := &extraction{
		t:      &t,
		p:      p,
		fmt:    newFormatter(t.SourceTimeZone),
		vals:   make([]value, len(p.sel)),
		bw:     newBatchWriter(ctx, opts.Dir, t.Name, header(t.Fields), int64(opts.BatchSize), maxBytes, st.BatchIndex, opts.OnBatch),
		onRows: opts.OnRows,
		rowNum: st.Row,
		reject: opts.RejectDir != "",
		maxRej: opts.MaxRejected,
		only:   opts.OnlyKeys,
	}
	if x.reject {
		x.bw.rejectInto(opts.RejectDir, rejectedHeader(t.OrderBy))
	}
	if x.only != nil {
		x.found = make([]bool, x.only.Len())
	}
	if t.NullAs == NullClear {
		x.null = []byte("#N/A")
	}
	err = x.run(ctx, rows)
	if cerr := rows.close(); err == nil && cerr != nil {
		err = fmt.Errorf("extract %s: finish query: %w", t.Name, cerr)
	}
	batches, werr := x.bw.wait()
	if err == nil && werr != nil {
		err = fmt.Errorf("extract %s: %w", t.Name, werr)
	}
	res := Result{Batches: batches, Rows: x.rows}
	for _, b := range batches {
		res.Rejected += b.Rejected
		res.Truncated += b.Truncated
	}
	if x.only != nil && err == nil {
		for i, ok := range x.found {
			if !ok {
				res.Missing = append(res.Missing, x.only.keys[i])
			}
		}
	}
	if err == nil && opts.OnRows != nil {
		opts.OnRows(x.rows)
	}
	return res, err
}

// plan compiles the table's query (or table) without reading a row,
// resolves the mapped and order_by columns among its result columns and
// checks the keys. Caller holds s.mu and has validated t.
func (s *Source) plan(ctx context.Context, t *Table) (from string, p *plan, err error) {
	d := s.eng.dialect()
	from = d.from(t)
	described, err := s.eng.describe(ctx, from)
	if err != nil {
		if msg, ok := s.eng.refused(err); ok && ctx.Err() == nil {
			qe := &QueryError{Table: t.Name, Setting: "query", Query: t.Query, Engine: d.String(), Message: msg, Err: err}
			if t.From != "" {
				qe.Setting, qe.Query = "table", t.From
			}
			return "", nil, qe
		}
		return "", nil, fmt.Errorf("extract %s: read the columns of %s: %w", t.Name, t.what(), err)
	}
	p, err = newPlan(t, described)
	if err != nil {
		return "", nil, err
	}
	if kc, ok := s.eng.(keyChecker); ok {
		keys := make([]column, len(p.keys))
		for i, ki := range p.keys {
			keys[i] = p.sel[ki]
		}
		if err := kc.checkKeys(ctx, from, keys); err != nil {
			return "", nil, fmt.Errorf("extract %s: %w", t.Name, err)
		}
	}
	return from, p, nil
}

func header(fields []Field) []byte {
	var b []byte
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.Name...)
	}
	return append(b, '\n')
}

// extraction is the state of one Extract call's row loop.
type extraction struct {
	t      *Table
	p      *plan
	fmt    *formatter
	bw     *batchWriter
	vals   []value
	null   []byte
	onRows func(int64)

	row     []byte
	key     rowKey // this row's order_by values
	prevKey rowKey // previous row's
	rowNum  int64  // offset of the current row in the ordered query
	rows    int64  // rows written
	seen    int64  // rows read

	reject   bool  // bad rows go to rejected files
	maxRej   int64 // Options.MaxRejected
	rejected int64 // rows rejected

	only    *KeySet
	found   []bool // per only key
	left    int    // only keys not found yet
	scratch []byte
}

// rowKey holds one row's order_by values as text (appendKey).
type rowKey struct {
	buf   []byte
	ends  []int
	exact bool // every value reads back as itself (appendKey)
}

func (k *rowKey) reset() { k.buf, k.ends, k.exact = k.buf[:0], k.ends[:0], true }

// lastKey is the key a batch ending with this row reports as its LastKey:
// nil when it is not exact, so that a resume after it uses OFFSET.
func (k *rowKey) lastKey() []string {
	if !k.exact || len(k.ends) == 0 {
		return nil
	}
	return k.strings()
}

func (k *rowKey) strings() []string {
	out := make([]string, len(k.ends))
	start := 0
	for i, e := range k.ends {
		out[i] = string(k.buf[start:e])
		start = e
	}
	return out
}

func (k *rowKey) equal(o *rowKey) bool {
	return bytes.Equal(k.buf, o.buf) && len(k.ends) == len(o.ends) && (len(k.ends) == 0 || equalInts(k.ends, o.ends))
}

func equalInts(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// describe renders a key as "A=1, B=x" for messages.
func (x *extraction) describeKey(k *rowKey) string {
	var b strings.Builder
	start := 0
	for i, e := range k.ends {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x.p.sel[x.p.keys[i]].name)
		b.WriteByte('=')
		v := k.buf[start:e]
		if len(v) > 60 {
			v = v[:60]
		}
		b.WriteString(string(v))
		start = e
	}
	if len(k.ends) < len(x.p.keys) {
		b.WriteString(" (key incomplete)")
	}
	return b.String()
}

const progressEvery = 10_000

func (x *extraction) run(ctx context.Context, rows rowStream) error {
	p := x.p
	if x.only != nil {
		x.left = x.only.Len()
		if x.left == 0 {
			return nil
		}
	}
	for {
		if x.seen%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ok, err := rows.next(x.vals)
		if err != nil {
			return fmt.Errorf("extract %s: read row %d: %w", x.t.Name, x.rowNum, err)
		}
		if !ok {
			break
		}
		// Key first: every later message names the row by it.
		x.key.reset()
		for _, si := range p.keys {
			v := &x.vals[si]
			if v.kind == vNull {
				return fmt.Errorf("extract %s: row %d (%s): order_by column %s is NULL: %w; order by non-null columns",
					x.t.Name, x.rowNum, x.describeKey(&x.key), p.sel[si].name, ErrOrderBy)
			}
			var exact bool
			x.key.buf, exact = appendKey(x.key.buf, v, &p.sel[si])
			x.key.exact = x.key.exact && exact
			x.key.ends = append(x.key.ends, len(x.key.buf))
		}
		if x.seen > 0 && x.key.equal(&x.prevKey) {
			return fmt.Errorf("extract %s: rows %d and %d have the same order_by value (%s): %w; add columns to order_by until it is unique",
				x.t.Name, x.rowNum-1, x.rowNum, x.describeKey(&x.key), ErrOrderBy)
		}
		if x.only != nil && !x.wanted() {
			x.next()
			continue
		}

		ve, err := x.format()
		if err != nil {
			return err
		}
		if ve != nil {
			if !x.reject {
				return ve
			}
			if err := x.rejectRow(ctx, ve); err != nil {
				return err
			}
			if x.maxRej >= 0 && x.rejected > x.maxRej {
				// The batch ends with this row, so a resume starts after it.
				if err := x.bw.finish(ctx, x.key.lastKey()); err != nil {
					return fmt.Errorf("extract %s: %w", x.t.Name, err)
				}
				x.next()
				return &RejectLimitError{Table: x.t.Name, Rejected: x.rejected, Limit: x.maxRej, Last: ve}
			}
		} else {
			if int64(len(x.bw.header)+len(x.row)) > x.bw.maxBytes {
				return fmt.Errorf("extract %s: row %d (%s) takes %d bytes, more than a batch file may hold (%d bytes with the header): raise the byte cap or leave long columns out",
					x.t.Name, x.rowNum, x.describeKey(&x.key), len(x.row), x.bw.maxBytes)
			}
			if !x.bw.fits(len(x.row)) {
				if err := x.bw.finish(ctx, x.prevKey.lastKey()); err != nil {
					return fmt.Errorf("extract %s: %w", x.t.Name, err)
				}
			}
			if err := x.bw.write(ctx, x.row, x.rowNum, x.fmt.truncated, x.key.lastKey); err != nil {
				return fmt.Errorf("extract %s: %w", x.t.Name, err)
			}
			x.rows++
			if x.onRows != nil && x.rows%progressEvery == 0 {
				x.onRows(x.rows)
			}
		}
		x.next()
		if x.only != nil && x.left == 0 {
			break // every key found: the rest of the table holds none
		}
	}
	if err := x.bw.finish(ctx, x.prevKey.lastKey()); err != nil {
		return fmt.Errorf("extract %s: %w", x.t.Name, err)
	}
	return nil
}

// next moves on to the next source row: this row's key becomes the previous one.
func (x *extraction) next() {
	x.seen++
	x.rowNum++
	x.key, x.prevKey = x.prevKey, x.key
}

// wanted reports whether the current row's key is in Options.OnlyKeys, and
// marks it found.
func (x *extraction) wanted() bool {
	x.scratch = x.scratch[:0]
	start := 0
	for i, e := range x.key.ends {
		if i > 0 {
			x.scratch = append(x.scratch, 0)
		}
		x.scratch = append(x.scratch, x.key.buf[start:e]...)
		start = e
	}
	i, ok := x.only.idx[string(x.scratch)]
	if !ok {
		return false
	}
	if !x.found[i] {
		x.found[i] = true
		x.left--
	}
	return true
}

// format writes the current row into x.row. A value that cannot be written
// is returned as a *ValueError (the row is then not written); err is for
// anything else.
func (x *extraction) format() (ve *ValueError, err error) {
	p := x.p
	x.row = x.row[:0]
	x.fmt.truncated = 0
	for fi := range p.fields {
		if fi > 0 {
			x.row = append(x.row, ',')
		}
		c := &p.fields[fi]
		v := &x.vals[p.fieldSrc[fi]]
		if v.kind == vNull || (v.kind == vText && len(v.b) == 0) {
			x.row = append(x.row, x.null...)
			continue
		}
		x.row, err = x.fmt.appendValue(x.row, v, c)
		if err != nil {
			return x.valueError(err, c, v)
		}
	}
	if len(x.row) == 0 {
		// One field, empty: an empty line would be a blank line, which
		// CSV readers skip. A quoted empty value is the same empty
		// value on a line of its own.
		x.row = append(x.row, '"', '"')
	}
	x.row = append(x.row, '\n')
	if len(x.row) > maxRecordChars {
		if n := utf8.RuneCount(x.row); n > maxRecordChars {
			return &ValueError{Table: x.t.Name, Row: x.rowNum, Key: x.describeKey(&x.key), Column: "(whole row)",
				Value:      fmt.Sprintf("(%d characters)", n),
				Reason:     fmt.Sprintf("record exceeds the Bulk API limit of %d characters", maxRecordChars),
				Fix:        "leave long columns out of fields or shorten them in the query",
				valueBytes: len(x.row)}, nil
		}
	}
	return nil, nil
}

// rejectRow writes the current row, refused for ve, to the rejected file.
func (x *extraction) rejectRow(ctx context.Context, ve *ValueError) error {
	shown := ve.excerpt
	if shown == "" {
		shown = ve.Value
	}
	line := rejectedLine(x.key.strings(), ve.Column, ve.Field, shown, ve.valueBytes, ve.Reason, ve.Fix)
	if err := x.bw.reject(ctx, line, x.rowNum, x.key.lastKey); err != nil {
		return fmt.Errorf("extract %s: %w", x.t.Name, err)
	}
	x.rejected++
	return nil
}

func (x *extraction) valueError(err error, c *column, v *value) (*ValueError, error) {
	var vf *valueFault
	if !errors.As(err, &vf) {
		return nil, fmt.Errorf("extract %s: row %d (%s), column %s: %w", x.t.Name, x.rowNum, x.describeKey(&x.key), c.name, err)
	}
	var shown, ex string
	switch v.kind {
	case vText, vBinary:
		shown, ex = showValue(v.b), excerpt(v.b)
	case vInt:
		shown = strconv.FormatInt(v.i, 10)
	case vFloat:
		shown = strconv.FormatFloat(v.f, 'g', -1, 64)
	case vTime:
		shown = v.t.String()
	case vBool:
		shown = strconv.FormatBool(v.i != 0)
	}
	n := len(shown)
	if ex != "" || v.kind == vText || v.kind == vBinary {
		n = len(v.b)
	}
	typ := c.dbType
	if typ == "" {
		typ = c.src.String()
	}
	return &ValueError{
		Table:      x.t.Name,
		Row:        x.rowNum,
		Key:        x.describeKey(&x.key),
		Column:     c.name,
		Type:       typ,
		Field:      c.field,
		Value:      shown,
		Reason:     vf.reason,
		Fix:        vf.fix,
		excerpt:    ex,
		valueBytes: n,
	}, nil
}
