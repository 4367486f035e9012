package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// SQLite is read through modernc.org/sqlite's library layer (the SQLite C
// code translated to Go; no cgo) rather than through database/sql. Profiling
// the database/sql path on 1 M rows put ~20 % of the time in the driver
// re-parsing DATE/DATETIME text into time.Time (which also loses whether the
// text had a zone), ~10 % in the connection mutex and most of the rest in
// per-value allocations; reading sqlite3_column_text directly hands the
// bytes SQLite already has to the CSV writer without a copy. See
// bench/extract/README.md for the numbers.
//
// Every pointer below is C memory owned by modernc's libc allocator (outside
// the Go heap), valid as the SQLite API documents: column text until the next
// step, statement and connection handles until finalize/close.

type sqliteEngine struct {
	tls  *libc.TLS // used by one goroutine at a time (Extract is serialised)
	db   uintptr
	path string
}

// cmem views n bytes of C memory at p. The double indirection converts the
// address without vet's uintptr->Pointer pattern check; it is sound because p
// is not Go memory and stays valid for as long as the slice is used.
func cmem(p uintptr, n int) []byte {
	if n == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&p))), n)
}

// cptr reads the pointer stored at C address p (an out-parameter).
func cptr(p uintptr) uintptr {
	return *(*uintptr)(*(*unsafe.Pointer)(unsafe.Pointer(&p)))
}

// sqlitePath is the database file of an Airflow sqlite connection: Airflow's
// SqliteHook connects to conn.host; a URI like sqlite:////abs/path.db leaves
// the host empty and the path in schema, so schema is the fallback.
func sqlitePath(conn airflow.Connection) (string, error) {
	p := conn.Host
	if p == "" {
		p = conn.Schema
	}
	if p == "" {
		return "", errors.New("no database file: set the connection's host to the SQLite file path (e.g. sqlite://%2Fdata%2Fsource.db)")
	}
	if strings.HasPrefix(p, "file:") || p == ":memory:" {
		return "", fmt.Errorf("database path %q: give a plain file path (an in-memory or URI database cannot be a migration source)", p)
	}
	return p, nil
}

func openSQLite(ctx context.Context, conn airflow.Connection) (engine, error) {
	path, err := sqlitePath(conn)
	if err != nil {
		return nil, err
	}
	from := "connection host"
	if conn.Host == "" {
		from = "connection schema"
	}
	fi, err := os.Stat(path)
	if err != nil {
		hint := ""
		if !filepath.IsAbs(path) {
			hint = " (a relative path; in a URI an absolute path needs four slashes, sqlite:////abs/path.db, or sqlite://%2Fabs%2Fpath.db)"
		}
		// The *os.PathError would name the path a second time ("stat
		// <path>: ..."); its cause says what is wrong and still answers
		// errors.Is(err, fs.ErrNotExist).
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("SQLite database file %s (%s): %w%s", path, from, err, hint)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("SQLite database file %s (%s) is a directory", path, from)
	}
	e := &sqliteEngine{tls: libc.NewTLS(), path: path}
	zName, err := libc.CString(path)
	if err != nil {
		e.tls.Close()
		return nil, err
	}
	defer libc.Xfree(e.tls, zName)
	pp := libc.Xmalloc(e.tls, 8)
	if pp == 0 {
		e.tls.Close()
		return nil, errors.New("out of memory")
	}
	defer libc.Xfree(e.tls, pp)
	// Read-only: extraction never writes. NOMUTEX: one goroutine uses the
	// handle at a time, so SQLite's own mutex is pure overhead.
	rc := sqlite3.Xsqlite3_open_v2(e.tls, zName, pp, sqlite3.SQLITE_OPEN_READONLY|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	e.db = cptr(pp)
	if rc != sqlite3.SQLITE_OK {
		err := e.errorf(rc, "open %s", path)
		e.close()
		return nil, err
	}
	sqlite3.Xsqlite3_extended_result_codes(e.tls, e.db, 1)
	// SQLite's own busy handler waits for a writer's lock in short slices;
	// busy retries the slices up to sqliteBusyWait, checking the context
	// in between (SQLite's handler sleeps through an interrupt).
	sqlite3.Xsqlite3_busy_timeout(e.tls, e.db, int32(sqliteBusySlice/time.Millisecond))
	// SQLite reads the file only when it first needs the schema: a file
	// that is not a database would otherwise pass for one until the query
	// is compiled, and be blamed on the query.
	stmt, err := e.prepare(ctx, "SELECT 1 FROM sqlite_master LIMIT 0")
	if err != nil {
		e.close()
		return nil, fmt.Errorf("SQLite database file %s (%s) cannot be read as a SQLite database: %w", path, from, err)
	}
	sqlite3.Xsqlite3_finalize(e.tls, stmt)
	return e, nil
}

// A database locked by a writer (in rollback-journal mode, a writer that
// is committing; the extraction's own read lock in turn holds back writers
// until it ends — WAL mode lets both go on) makes a read wait up to
// sqliteBusyWait in total, in slices of sqliteBusySlice.
const (
	sqliteBusyWait  = 30 * time.Second
	sqliteBusySlice = 100 * time.Millisecond
)

// busy runs op (a prepare or the first step of a statement) again while it
// reports SQLITE_BUSY, for up to sqliteBusyWait or until ctx ends.
func busy(ctx context.Context, op func() int32) int32 {
	deadline := time.Now().Add(sqliteBusyWait)
	for {
		rc := op()
		if rc&0xff != sqlite3.SQLITE_BUSY || ctx.Err() != nil || time.Now().After(deadline) {
			return rc
		}
	}
}

// busyHint is added to a "database is locked" error.
const busyHint = "; a writer held the database lock for more than 30s: extract when no write is running, " +
	"or switch the database to WAL mode (PRAGMA journal_mode=WAL) so that readers and writers do not wait for each other"

func (e *sqliteEngine) dialect() dialect { return dialectSQLite }

// sqliteError is a failed SQLite call: what was being done, the result
// code and SQLite's message.
type sqliteError struct {
	op   string // "prepare", "step", "open /path", ...
	rc   int32  // extended result code
	msg  string // sqlite3_errmsg (or errstr without a connection)
	hint string // what to do, for codes that have a known fix
}

func (e *sqliteError) Error() string {
	return fmt.Sprintf("%s: sqlite: %s (code %d)%s", e.op, e.msg, e.rc, e.hint)
}

// errorf wraps SQLite's message for rc.
func (e *sqliteEngine) errorf(rc int32, format string, args ...any) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(e.tls, rc))
	if e.db != 0 {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(e.tls, e.db))
	}
	hint := ""
	if rc&0xff == sqlite3.SQLITE_BUSY {
		hint = busyHint
	}
	return &sqliteError{op: fmt.Sprintf(format, args...), rc: rc, msg: msg, hint: hint}
}

// refused: SQLite compiles a statement in sqlite3_prepare, and reports
// everything wrong with its text (syntax, no such table, column or
// function, ambiguous names) as SQLITE_ERROR there. Other prepare failures
// (BUSY, NOMEM, CORRUPT, NOTADB, IOERR) are about the database, not the
// query.
func (e *sqliteEngine) refused(err error) (string, bool) {
	var se *sqliteError
	if errors.As(err, &se) && se.op == "prepare" && se.rc&0xff == sqlite3.SQLITE_ERROR {
		return se.msg, true
	}
	return "", false
}

func (e *sqliteEngine) close() error {
	if e.db != 0 {
		// close_v2 defers the close until every statement is finalized;
		// ours always are by now.
		if rc := sqlite3.Xsqlite3_close_v2(e.tls, e.db); rc != sqlite3.SQLITE_OK {
			return e.errorf(rc, "close %s", e.path)
		}
		e.db = 0
	}
	if e.tls != nil {
		e.tls.Close()
		e.tls = nil
	}
	return nil
}

// prepare compiles one statement; the caller finalizes it.
func (e *sqliteEngine) prepare(ctx context.Context, sql string) (uintptr, error) {
	if e.db == 0 {
		return 0, errors.New("source is closed")
	}
	zSQL, err := libc.CString(sql)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(e.tls, zSQL)
	pp := libc.Xmalloc(e.tls, 8)
	if pp == 0 {
		return 0, errors.New("out of memory")
	}
	defer libc.Xfree(e.tls, pp)
	// Preparing reads the schema, which needs the read lock.
	if rc := busy(ctx, func() int32 { return sqlite3.Xsqlite3_prepare_v2(e.tls, e.db, zSQL, -1, pp, 0) }); rc != sqlite3.SQLITE_OK {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, e.errorf(rc, "prepare")
	}
	return cptr(pp), nil
}

// sqliteKind reads a column's declared type. SQLite stores any value in any
// column, so only types that change how text is read are recognised; the
// rest follow each value's storage class.
func sqliteKind(decl string) srcKind {
	d := strings.ToUpper(strings.TrimSpace(decl))
	switch {
	case strings.Contains(d, "DATETIME"), strings.Contains(d, "TIMESTAMP"):
		return srcTimestamp
	case strings.HasPrefix(d, "DATE"):
		return srcDate
	case strings.HasPrefix(d, "BOOL"):
		return srcBool
	}
	return srcAuto
}

// sqliteTextAffinity reports whether a declared type gives a column TEXT
// affinity, by SQLite's rules (https://sqlite.org/datatype3.html, 3.1): a
// type containing INT is INTEGER; else one containing CHAR, CLOB or TEXT is
// TEXT. An expression has no declared type and no affinity.
func sqliteTextAffinity(decl string) bool {
	d := strings.ToUpper(decl)
	if strings.Contains(d, "INT") {
		return false
	}
	return strings.Contains(d, "CHAR") || strings.Contains(d, "CLOB") || strings.Contains(d, "TEXT")
}

func (e *sqliteEngine) describe(ctx context.Context, from string) ([]column, error) {
	stmt, err := e.prepare(ctx, "SELECT * FROM "+from)
	if err != nil {
		return nil, err
	}
	defer sqlite3.Xsqlite3_finalize(e.tls, stmt)
	n := int(sqlite3.Xsqlite3_column_count(e.tls, stmt))
	cols := make([]column, n)
	for i := range cols {
		cols[i].name = libc.GoString(sqlite3.Xsqlite3_column_name(e.tls, stmt, int32(i)))
		// decltype follows columns through subqueries; expressions have none.
		decl := ""
		if p := sqlite3.Xsqlite3_column_decltype(e.tls, stmt, int32(i)); p != 0 {
			decl = libc.GoString(p)
		}
		cols[i].dbType = decl
		cols[i].src = sqliteKind(decl)
		cols[i].floatBits = 64
		cols[i].textAffinity = sqliteTextAffinity(decl)
		cols[i].numericText = !cols[i].textAffinity
	}
	return cols, nil
}

func (e *sqliteEngine) query(ctx context.Context, sql string, args []any, cols []column) (rowStream, error) {
	stmt, err := e.prepare(ctx, sql)
	if err != nil {
		return nil, err
	}
	r := &sqliteRows{e: e, stmt: stmt, ctx: ctx, ncol: int32(len(cols))}
	if got := sqlite3.Xsqlite3_column_count(e.tls, stmt); got != r.ncol {
		r.close()
		return nil, fmt.Errorf("query returns %d columns, expected %d", got, r.ncol)
	}
	for i, a := range args {
		var rc int32
		switch a := a.(type) {
		case int64:
			rc = sqlite3.Xsqlite3_bind_int64(e.tls, stmt, int32(i+1), a)
		case float64:
			rc = sqlite3.Xsqlite3_bind_double(e.tls, stmt, int32(i+1), a)
		case string:
			p, err := libc.CString(a)
			if err != nil {
				r.close()
				return nil, err
			}
			r.cstrings = append(r.cstrings, p) // SQLITE_STATIC: kept until finalize
			rc = sqlite3.Xsqlite3_bind_text(e.tls, stmt, int32(i+1), p, int32(len(a)), 0)
		default:
			r.close()
			return nil, fmt.Errorf("internal: cannot bind %T", a)
		}
		if rc != sqlite3.SQLITE_OK {
			r.close()
			return nil, e.errorf(rc, "bind parameter %d", i+1)
		}
	}
	if ctx.Done() != nil {
		// sqlite3_interrupt may be called from another thread; it makes the
		// running step return SQLITE_INTERRUPT. close waits for this
		// goroutine, so it can never interrupt a later statement.
		r.stop = make(chan struct{})
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			select {
			case <-ctx.Done():
				tls := libc.NewTLS()
				sqlite3.Xsqlite3_interrupt(tls, e.db)
				tls.Close()
			case <-r.stop:
			}
		}()
	}
	return r, nil
}

type sqliteRows struct {
	e        *sqliteEngine
	stmt     uintptr
	ctx      context.Context
	ncol     int32
	started  bool // the first step has run
	done     bool
	cstrings []uintptr
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (r *sqliteRows) next(dst []value) (bool, error) {
	if r.done {
		return false, nil
	}
	tls, stmt := r.e.tls, r.stmt
	var rc int32
	if r.started {
		rc = sqlite3.Xsqlite3_step(tls, stmt)
	} else {
		// The first step takes the read lock and may find a writer holding
		// it; it has returned no row yet, so it can be repeated (SQLite
		// resets the statement after SQLITE_BUSY). Later steps of a read
		// already hold their lock or snapshot.
		rc = busy(r.ctx, func() int32 { return sqlite3.Xsqlite3_step(tls, stmt) })
		r.started = true
	}
	switch rc {
	case sqlite3.SQLITE_ROW:
	case sqlite3.SQLITE_DONE:
		r.done = true
		return false, nil
	default:
		r.done = true
		if err := r.ctx.Err(); err != nil && (rc&0xff == sqlite3.SQLITE_INTERRUPT || rc&0xff == sqlite3.SQLITE_BUSY) {
			return false, err
		}
		return false, r.e.errorf(rc, "step")
	}
	for i := int32(0); i < r.ncol; i++ {
		v := &dst[i]
		switch sqlite3.Xsqlite3_column_type(tls, stmt, i) {
		case sqlite3.SQLITE_INTEGER:
			v.kind, v.i = vInt, sqlite3.Xsqlite3_column_int64(tls, stmt, i)
		case sqlite3.SQLITE_FLOAT:
			v.kind, v.f = vFloat, sqlite3.Xsqlite3_column_double(tls, stmt, i)
		case sqlite3.SQLITE_TEXT:
			// Text first, then its length (SQLite's documented order); the
			// bytes stay valid until the next step, and the extraction
			// loop copies what it keeps (keys, error values) before that.
			p := sqlite3.Xsqlite3_column_text(tls, stmt, i)
			if p == 0 { // out of memory: never an empty string
				return false, r.e.errorf(sqlite3.SQLITE_NOMEM, "read column %d", i+1)
			}
			n := sqlite3.Xsqlite3_column_bytes(tls, stmt, i)
			v.kind, v.b = vText, cmem(p, int(n))
		case sqlite3.SQLITE_BLOB:
			p := sqlite3.Xsqlite3_column_blob(tls, stmt, i)
			n := sqlite3.Xsqlite3_column_bytes(tls, stmt, i)
			v.kind, v.b = vBinary, cmem(p, int(n))
		default:
			v.kind = vNull
		}
	}
	return true, nil
}

func (r *sqliteRows) close() error {
	if r.stop != nil {
		close(r.stop)
		r.wg.Wait()
		r.stop = nil
	}
	if r.stmt != 0 {
		// finalize only repeats the statement's last error, which next
		// has already reported.
		sqlite3.Xsqlite3_finalize(r.e.tls, r.stmt)
		r.stmt = 0
	}
	for _, p := range r.cstrings {
		libc.Xfree(r.e.tls, p)
	}
	r.cstrings = nil
	return nil
}

var (
	_ engine    = (*sqliteEngine)(nil)
	_ rowStream = (*sqliteRows)(nil)
)
