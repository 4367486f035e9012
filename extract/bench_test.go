package extract

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// The benchmarks here are for profiling one engine in-process
// (go test -bench Extract -cpuprofile cpu.out ./extract). The side-by-side
// comparison with sqlite3 and psql, and the memory-by-table-size runs, are
// bench/extract/run.sh; its results are in bench/extract/README.md.

// benchTableSQL builds the 12-column benchmark table of bench/extract/sqlite.sql.
const benchTableSQL = `CREATE TABLE products (id INTEGER PRIMARY KEY, ext_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
  price NUMERIC, quantity INTEGER, active BOOLEAN, launch_date DATE, updated_at DATETIME, ratio REAL, category TEXT, notes TEXT);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < @ROWS@)
INSERT INTO products SELECT i, 'EXT-' || printf('%08d', i),
  'Product ' || i || CASE WHEN i % 10 = 0 THEN ', "special"' ELSE '' END,
  'Description of product ' || i || ' with some longer text to make the row realistic' || CASE WHEN i % 50 = 0 THEN char(10) || 'second line' ELSE '' END,
  round((i % 100000) / 100.0 + 0.99, 2), i % 1000, i % 2, date('2020-01-01', '+' || (i % 2000) || ' days'),
  datetime('2020-01-01 00:00:00', '+' || (i * 37) || ' seconds'), (i % 997) / 7.0,
  CASE i % 4 WHEN 0 THEN 'Hardware' WHEN 1 THEN 'Software' WHEN 2 THEN 'Services' ELSE 'Spare Parts' END,
  CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END FROM s`

func benchTable(from string) Table {
	t := Table{Name: "BENCH", From: from, OrderBy: []string{"id"}}
	for _, c := range strings.Split("id,ext_id,name,description,price,quantity,active,launch_date,updated_at,ratio,category,notes", ",") {
		t.Fields = append(t.Fields, Field{Column: c, Name: c + "__c"})
	}
	return t
}

func benchExtract(b *testing.B, conn airflow.Connection, from string, rows int) {
	src, err := Open(b.Context(), conn)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.SetBytes(0)
	b.ResetTimer()
	var bytes int64
	for b.Loop() {
		res, err := src.Extract(b.Context(), benchTable(from), Options{Dir: b.TempDir(), BatchSize: 10000,
			OnBatch: func(_ context.Context, bt Batch) error { bytes += bt.Bytes; return nil }})
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != int64(rows) {
			b.Fatalf("%d rows, want %d", res.Rows, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/float64(b.N)/float64(rows), "bytes/row")
}

func BenchmarkExtractSQLite(b *testing.B) {
	const rows = 200_000
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(strings.ReplaceAll(benchTableSQL, "@ROWS@", "200000")); err != nil {
		b.Fatal(err)
	}
	db.Close()
	benchExtract(b, airflow.Connection{ID: "bench", Type: "sqlite", Host: path}, "products", rows)
}

// pgBenchTableSQL is bench/extract/postgres.sql for a table named @TABLE@.
const pgBenchTableSQL = `CREATE TABLE @TABLE@ (id bigint PRIMARY KEY, ext_id text NOT NULL, name text NOT NULL, description text,
  price numeric(12,2), quantity integer, active boolean, launch_date date, updated_at timestamp, ratio double precision, category text, notes text);
INSERT INTO @TABLE@ SELECT i, 'EXT-' || lpad(i::text, 8, '0'),
  'Product ' || i || CASE WHEN i % 10 = 0 THEN ', "special"' ELSE '' END,
  'Description of product ' || i || ' with some longer text to make the row realistic' || CASE WHEN i % 50 = 0 THEN E'\nsecond line' ELSE '' END,
  round((i % 100000) / 100.0 + 0.99, 2), i % 1000, i % 2 = 1, date '2020-01-01' + (i % 2000),
  timestamp '2020-01-01' + make_interval(secs => i * 37), (i % 997) / 7.0,
  CASE i % 4 WHEN 0 THEN 'Hardware' WHEN 1 THEN 'Software' WHEN 2 THEN 'Services' ELSE 'Spare Parts' END,
  CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END FROM generate_series(1, @ROWS@) i;
ANALYZE @TABLE@`

func BenchmarkExtractPostgres(b *testing.B) {
	const rows = 200_000
	conn := pgTestConn(b)
	cs, err := pgConnString(conn)
	if err != nil {
		b.Fatal(err)
	}
	admin, err := pgconn.Connect(b.Context(), cs)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(context.Background())
	table := fmt.Sprintf("sfm_extract_bench_%d", os.Getpid())
	q := strings.NewReplacer("@TABLE@", table, "@ROWS@", fmt.Sprint(rows)).Replace(pgBenchTableSQL)
	if _, err := admin.Exec(b.Context(), q).ReadAll(); err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = admin.Exec(context.Background(), "DROP TABLE "+table).ReadAll() }() // best effort
	benchExtract(b, conn, table, rows)
}
