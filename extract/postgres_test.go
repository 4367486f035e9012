package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sfmigrate/sfmigrate/airflow"
)

const pgTestConnID = "postgres_test"

// pgTestConn returns the PostgreSQL test connection, or skips saying how to
// get one.
func pgTestConn(t testing.TB) airflow.Connection {
	t.Helper()
	conn, err := airflow.LookupConnection(os.Getenv, pgTestConnID)
	if err != nil {
		t.Skipf("PostgreSQL suite skipped: %v (scripts/test starts a throwaway cluster and sets AIRFLOW_CONN_POSTGRES_TEST; "+
			"or set it yourself, e.g. postgres://postgres@127.0.0.1:5432/postgres)", err)
	}
	return conn
}

var pgTableSeq atomic.Int64

func pgHarness(t *testing.T) *engineHarness {
	t.Helper()
	conn := pgTestConn(t)
	cs, err := pgConnString(conn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgconn.Connect(t.Context(), cs)
	if err != nil {
		t.Fatalf("connect to %s: %v", conn, err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	exec := func(t *testing.T, stmts ...string) {
		t.Helper()
		for _, s := range stmts {
			if _, err := admin.Exec(t.Context(), s).ReadAll(); err != nil {
				t.Fatalf("%.200s: %v", s, err)
			}
		}
	}
	return &engineHarness{
		name: "postgres",
		conn: conn,
		exec: exec,
		types: map[string]string{
			"int": "bigint", "text": "text", "bigtext": "text", "float": "double precision", "bool": "boolean",
			"date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz", "binary": "bytea",
			"decimal": "numeric(18,4)",
		},
		boolLit:    func(b bool) string { return fmt.Sprint(b) },
		decimalOut: func(lit string) string { return lit },
		binLit:     func() string { return "decode('deadbeef', 'hex')" },
		table: func(t *testing.T) string {
			name := fmt.Sprintf("sfm_extract_t%d_%d", os.Getpid(), pgTableSeq.Add(1))
			t.Cleanup(func() {
				_, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+name).ReadAll() // best effort
			})
			return name
		},
	}
}

func TestPostgres(t *testing.T) {
	runSuite(t, pgHarness(t))
}

// TestPostgresTypes checks the text of every PostgreSQL type the pipeline
// meets, straight from the server.
func TestPostgresTypes(t *testing.T) {
	h := pgHarness(t)
	src := h.open(t)
	q := `SELECT 1 AS id,
		123456789012345678901234567890.123456789::numeric AS big,
		1e300::float8 AS huge, 1.5e-10::float8 AS tiny, '-0'::float8 AS negzero, 0.1::real AS f4,
		'2024-05-06 07:08:09.987654+05:30'::timestamptz AS tstz,
		'2024-05-06'::date AS d,
		't'::boolean AS b,
		'ab'::char(4) AS padded,
		'{"a": [1, 2]}'::jsonb AS j,
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
		ARRAY['x', 'y,z'] AS arr,
		'1 day 02:03:04'::interval AS iv,
		32767::int2 AS small`
	fields := []Field{
		{Column: "big", Name: "Big__c"}, {Column: "huge", Name: "Huge__c"}, {Column: "tiny", Name: "Tiny__c"},
		{Column: "negzero", Name: "NegZero__c"}, {Column: "f4", Name: "F4__c"}, {Column: "tstz", Name: "Tstz__c"},
		{Column: "tstz", Name: "TstzDate__c", Type: "date"}, {Column: "d", Name: "D__c"}, {Column: "d", Name: "DAsDateTime__c", Type: "datetime"},
		{Column: "b", Name: "B__c"}, {Column: "padded", Name: "Padded__c"}, {Column: "j", Name: "J__c"}, {Column: "u", Name: "U__c"},
		{Column: "arr", Name: "Arr__c"}, {Column: "iv", Name: "Iv__c"}, {Column: "small", Name: "Small__c"},
	}
	res, err := src.Extract(t.Context(), Table{Name: "PGT", Query: q, OrderBy: []string{"id"}, Fields: fields}, Options{Dir: t.TempDir(), BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := readCSV(t, res.Batches[0].Path)[1]
	want := []string{
		"123456789012345678901234567890.123456789",
		"1" + strings.Repeat("0", 300),
		"0.00000000015",
		"0",
		"0.1",
		"2024-05-06T01:38:09.987Z",
		"2024-05-06",
		"2024-05-06",
		"2024-05-06T00:00:00.000Z",
		"true",
		"ab  ",
		`{"a": [1, 2]}`,
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		`{x,"y,z"}`,
		"P1DT2H3M4S",
		"32767",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	for _, c := range []struct{ expr, want string }{
		{"'NaN'::numeric", "NaN is not a number"},
		{"'infinity'::timestamp", "infinite date/time"},
		{"'-infinity'::date", "infinite date/time"},
		{"'0044-03-15 BC'::date", "year -43 is outside 0000-9999"},
		{"'0044-03-15 12:00 BC'::timestamp", "year -43 is outside 0000-9999"},
		{"'infinity'::timestamptz", "infinite date/time"},
		{"'12345-01-01'::date", "outside 0000-9999"},
		{"'Infinity'::float8", "is not a number"},
		{"'12.34'::money", "money"},
		{"'\\xff'::bytea", "binary"},
	} {
		t.Run(c.expr, func(t *testing.T) {
			_, err := src.Extract(t.Context(), Table{Name: "PGE", Query: "SELECT 7 AS id, " + c.expr + " AS v", OrderBy: []string{"id"},
				Fields: []Field{{Column: "v", Name: "V__c"}}}, Options{Dir: t.TempDir(), BatchSize: 10})
			wantAll(t, err, c.want, "PGE", "id=7", "V__c")
		})
	}
}

// TestPostgresOffsetSkipsInServer checks that an offset start does not send
// the skipped rows: the server's OFFSET does the skipping.
func TestPostgresOffsetSkipsInServer(t *testing.T) {
	h := pgHarness(t)
	src := h.open(t)
	res, err := src.Extract(t.Context(), Table{Name: "OFF", Query: "SELECT g AS id FROM generate_series(1, 100000) g", OrderBy: []string{"id"},
		Fields: []Field{{Column: "id", Name: "Id"}}}, Options{Dir: t.TempDir(), BatchSize: 1000, Start: Position{BatchIndex: 100, Row: 99_000}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 1000 || len(res.Batches) != 1 || res.Batches[0].Index != 100 || res.Batches[0].FirstRow != 99_000 {
		t.Fatalf("got %+v", res)
	}
	if recs := readCSV(t, res.Batches[0].Path); recs[1][0] != "99001" {
		t.Errorf("first row %v, want 99001", recs[1])
	}
}

func TestPgConnString(t *testing.T) {
	cases := []struct {
		name string
		conn airflow.Connection
		want string
	}{
		{"full", airflow.Connection{Type: "postgres", Host: "db.example.com", Port: 5433, Login: "etl", Password: `p'w\d`, Schema: "erp",
			Extra: map[string]any{"sslmode": "verify-full", "connect_timeout": float64(10), "cursor": "dictcursor"}},
			`host='db.example.com' port='5433' user='etl' password='p\'w\\d' dbname='erp' sslmode='verify-full' connect_timeout='10' application_name='sfmigrate'`},
		{"own application name", airflow.Connection{Type: "postgres", Host: "h", Extra: map[string]any{"application_name": "nightly"}},
			`host='h' application_name='nightly'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pgConnString(c.conn)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if _, err := pgconn.ParseConfig(got); err != nil {
				t.Errorf("pgconn cannot parse it: %v", err)
			}
		})
	}
	if _, err := pgConnString(airflow.Connection{Type: "postgres", Extra: map[string]any{"iam": "true"}}); err == nil {
		t.Error("iam=true accepted")
	}
}

func TestPostgresOpenError(t *testing.T) {
	_, err := Open(t.Context(), airflow.Connection{ID: "pg_bad", Type: "postgres", Host: "127.0.0.1", Port: 1, Login: "u", Password: "s3cret-pw"})
	if err == nil {
		t.Fatal("connected to port 1")
	}
	wantAll(t, err, "pg_bad")
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestPostgresTimeKeys resumes after date, timestamp and timestamptz keys:
// the key text written into Batch.LastKey must read back as the same value.
func TestPostgresTimeKeys(t *testing.T) {
	h := pgHarness(t)
	src := h.open(t)
	q := `SELECT (date '2024-01-01' + (g / 10)) AS d,
		timestamp '2024-01-01 00:00:00.123456' + g * interval '1 second' AS ts,
		timestamptz '2024-06-01 12:00:00.5+02' + g * interval '1 minute' AS tz, g
		FROM generate_series(1, 95) g`
	for _, keys := range [][]string{{"d", "ts"}, {"tz"}, {"d", "g"}} {
		t.Run(strings.Join(keys, "_"), func(t *testing.T) {
			tb := Table{Name: "TK", Query: q, OrderBy: keys, Fields: []Field{{Column: "g", Name: "G__c"}, {Column: "ts", Name: "Ts__c"}, {Column: "d", Name: "D__c"}}}
			full, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 20})
			if err != nil {
				t.Fatal(err)
			}
			for k := 1; k < len(full.Batches); k++ {
				prev := full.Batches[k-1]
				res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 20,
					Start: Position{BatchIndex: prev.Index + 1, Row: prev.FirstRow + prev.Rows, AfterKey: prev.LastKey}})
				if err != nil {
					t.Fatalf("after %v: %v", prev.LastKey, err)
				}
				if len(res.Batches) != len(full.Batches)-k || res.Batches[0].SHA256 != full.Batches[k].SHA256 {
					t.Fatalf("after key %v: %d batches, first %+v; want %+v", prev.LastKey, len(res.Batches), res.Batches[0], full.Batches[k])
				}
			}
			if got := full.Batches[0].LastKey; keys[0] == "tz" && got[0] != "2024-06-01 10:20:00.500000000 +00:00" {
				t.Errorf("timestamptz key %q", got)
			}
		})
	}
}

// TestPostgresCancelLongQuery cancels while the server is still computing
// the first row: the query is cancelled at once and the Source reconnects
// for the next extraction.
func TestPostgresCancelLongQuery(t *testing.T) {
	h := pgHarness(t)
	src := h.open(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := src.Extract(ctx, Table{Name: "SLOW", Query: "SELECT g AS id FROM generate_series(1, 3) g WHERE pg_sleep(20) IS NOT NULL",
		OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id"}}}, Options{Dir: t.TempDir(), BatchSize: 10})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancel took %v", took)
	}
	res, err := src.Extract(t.Context(), Table{Name: "AFTER", Query: "SELECT g AS id FROM generate_series(1, 25) g", OrderBy: []string{"id"},
		Fields: []Field{{Column: "id", Name: "Id"}}}, Options{Dir: t.TempDir(), BatchSize: 10})
	if err != nil || res.Rows != 25 {
		t.Errorf("after the cancel: %+v, %v", res, err)
	}
}

// TestPostgresLostConnectionNotQueryError: a session the server ends (here
// terminated by an administrator), before the query or while it runs, is
// not a *QueryError: the query is fine, and nothing in the tables config
// needs to change.
func TestPostgresLostConnectionNotQueryError(t *testing.T) {
	h := pgHarness(t)
	app := fmt.Sprintf("sfm_lost_%d_%d", os.Getpid(), pgTableSeq.Add(1))
	h.conn.Extra = map[string]any{"application_name": app}
	for k, v := range pgTestConn(t).Extra {
		if k != "application_name" {
			h.conn.Extra[k] = v
		}
	}
	cs, err := pgConnString(pgTestConn(t))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgconn.Connect(t.Context(), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed atomic.Int64
	kill := func() { // safe from any goroutine
		res := admin.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "+sqlStr(app))
		if rs, err := res.ReadAll(); err == nil && len(rs) == 1 {
			killed.Add(int64(len(rs[0].Rows)))
		}
	}
	table := Table{Name: "LOST", Query: "SELECT g AS id FROM generate_series(1, 3) g WHERE pg_sleep(0.5) IS NOT NULL",
		OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id"}}}
	t.Run("before the query", func(t *testing.T) {
		src := h.open(t)
		killed.Store(0)
		kill()
		_, err := src.Extract(t.Context(), table, Options{Dir: t.TempDir(), BatchSize: 10})
		var qe *QueryError
		if killed.Load() != 1 || err == nil || errors.As(err, &qe) {
			t.Errorf("%d sessions ended; err = %v, want a failure that is not a *QueryError", killed.Load(), err)
		}
	})
	t.Run("while it runs", func(t *testing.T) {
		src := h.open(t)
		killed.Store(0)
		done := make(chan struct{})
		timer := time.AfterFunc(300*time.Millisecond, func() { kill(); close(done) })
		_, err := src.Extract(t.Context(), table, Options{Dir: t.TempDir(), BatchSize: 10})
		if timer.Stop() {
			t.Fatalf("the query ended before the session could be ended: %v", err)
		}
		<-done
		var qe *QueryError
		if killed.Load() != 1 || err == nil || errors.As(err, &qe) {
			t.Errorf("%d sessions ended; err = %v, want a failure that is not a *QueryError", killed.Load(), err)
		}
	})
}
