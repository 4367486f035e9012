package extract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// sqliteDB creates a database file with table t(id, payload) of n rows in
// the given journal mode and returns its path and a writer connection
// (kept open for the test).
func sqliteDB(t *testing.T, journal string, n int) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, s := range []string{
		"PRAGMA journal_mode = " + journal,
		"CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)",
		fmt.Sprintf(`INSERT INTO t WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)
			SELECT i, printf('row %%d', i) FROM c`, n),
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path, db
}

func openSQLitePath(t *testing.T, path string) *Source {
	t.Helper()
	src, err := Open(t.Context(), airflow.Connection{ID: "sqlite_conc", Type: "sqlite", Host: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

var seqT = Table{Name: "T", From: "t", OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id__c"}, {Column: "payload", Name: "Name"}}}

// TestSQLiteCancelLongStep cancels while SQLite is inside one long step
// (the first step of a query that counts 50 M generated rows): the
// interrupt must end it at once, not after the step.
func TestSQLiteCancelLongStep(t *testing.T) {
	path, _ := sqliteDB(t, "DELETE", 10)
	src := openSQLitePath(t, path)
	q := `SELECT 1 AS id, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) SELECT count(*) FROM c) AS n`
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := src.Extract(ctx, Table{Name: "LONG", Query: q, OrderBy: []string{"id"}, Fields: []Field{{Column: "n", Name: "N__c"}}},
		Options{Dir: t.TempDir(), BatchSize: 10})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v after %v, want context.DeadlineExceeded", err, took)
	}
	if took > 3*time.Second {
		t.Errorf("cancel took %v: the step was not interrupted", took)
	}
	// The connection is fine afterwards.
	res, err := src.Extract(t.Context(), seqT, Options{Dir: t.TempDir(), BatchSize: 100})
	if err != nil || res.Rows != 10 {
		t.Errorf("after the interrupt: %+v, %v", res, err)
	}
}

// TestSQLiteConcurrentUse: Extract calls on one Source from several
// goroutines run one at a time and each gets its own complete result;
// Close waits for a running extraction; after Close, Extract fails clearly.
func TestSQLiteConcurrentUse(t *testing.T) {
	path, _ := sqliteDB(t, "DELETE", 3000)
	src := openSQLitePath(t, path)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	rows := make([]int64, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := seqT
			tb.Name = fmt.Sprintf("G%d", i)
			res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 500 + i*100})
			errs[i], rows[i] = err, res.Rows
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || rows[i] != 3000 {
			t.Errorf("goroutine %d: %d rows, %v", i, rows[i], errs[i])
		}
	}

	// Close during an extraction waits for it.
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := src.Extract(t.Context(), seqT, Options{Dir: t.TempDir(), BatchSize: 100, OnBatch: func(context.Context, Batch) error {
			once.Do(func() { close(started) })
			time.Sleep(5 * time.Millisecond)
			return nil
		}})
		done <- err
	}()
	<-started
	if err := src.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("extraction running during Close: %v", err)
		}
	default:
		t.Error("Close returned before the running extraction finished")
	}
	if _, err := src.Extract(t.Context(), seqT, Options{Dir: t.TempDir(), BatchSize: 100}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after Close: err = %v", err)
	}
}

// TestSQLiteLockedByWriter: a writer holding the database lock (rollback
// journal) makes the extraction wait (busy timeout), not fail at once; it
// goes on when the writer commits, and it can be cancelled while waiting.
func TestSQLiteLockedByWriter(t *testing.T) {
	path, writer := sqliteDB(t, "DELETE", 500)
	src := openSQLitePath(t, path)
	ctx := t.Context()
	conn, err := writer.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lock := func() {
		t.Helper()
		for _, s := range []string{"BEGIN EXCLUSIVE", "INSERT INTO t (payload) VALUES ('written while locked')"} {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}

	t.Run("waits for the commit", func(t *testing.T) {
		lock()
		go func() {
			time.Sleep(300 * time.Millisecond)
			_, _ = conn.ExecContext(context.Background(), "COMMIT") // checked below through the row count
		}()
		start := time.Now()
		res, err := src.Extract(ctx, seqT, Options{Dir: t.TempDir(), BatchSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows != 501 || time.Since(start) < 250*time.Millisecond {
			t.Errorf("%d rows after %v: want the committed 501 rows, read after the writer's commit", res.Rows, time.Since(start))
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		lock()
		defer func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }() // the lock is the test's own
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := src.Extract(cctx, seqT, Options{Dir: t.TempDir(), BatchSize: 1000})
		if err == nil {
			t.Fatal("read a database another connection holds exclusively")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("cancel while waiting for the lock took %v", took)
		}
	})
}

// TestSQLiteWALSnapshot: in WAL mode a writer commits while the
// extraction runs; the extraction reads one consistent snapshot (the rows
// as they were when its query started), and the writer is not blocked.
func TestSQLiteWALSnapshot(t *testing.T) {
	path, writer := sqliteDB(t, "WAL", 2000)
	src := openSQLitePath(t, path)
	var wrote sync.Once
	var werr error
	res, err := src.Extract(t.Context(), seqT, Options{Dir: t.TempDir(), BatchSize: 100, OnBatch: func(ctx context.Context, b Batch) error {
		wrote.Do(func() {
			_, werr = writer.ExecContext(ctx, "INSERT INTO t (payload) VALUES ('late 1'), ('late 2'); DELETE FROM t WHERE id = 1999")
		})
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if werr != nil {
		t.Fatalf("the writer was blocked by the extraction: %v", werr)
	}
	if res.Rows != 2000 {
		t.Errorf("%d rows, want the 2000 of the snapshot", res.Rows)
	}
	last := readCSV(t, res.Batches[len(res.Batches)-1].Path)
	if got := last[len(last)-1][0]; got != "2000" {
		t.Errorf("last row %s, want 2000", got)
	}
	// A new extraction sees the commit.
	res, err = src.Extract(t.Context(), seqT, Options{Dir: t.TempDir(), BatchSize: 1000})
	if err != nil || res.Rows != 2001 {
		t.Errorf("after the commit: %d rows, %v; want 2001", res.Rows, err)
	}
}

// TestSQLiteWALClosed reads a WAL database no one has open: its -wal and
// -shm files are gone, and the read-only connection must still read it.
func TestSQLiteWALClosed(t *testing.T) {
	path, writer := sqliteDB(t, "WAL", 50)
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	src := openSQLitePath(t, path)
	res, err := src.Extract(t.Context(), seqT, Options{Dir: t.TempDir(), BatchSize: 100})
	if err != nil || res.Rows != 50 {
		t.Fatalf("%+v, %v", res, err)
	}
}
