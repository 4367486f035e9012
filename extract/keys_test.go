package extract

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
)

// errStopResume stops a resumed extraction once it has written enough.
var errStopResume = errors.New("stop: resume checked")

// resumeEverywhere extracts tb in full, then resumes after every batch —
// by keyset when that batch has a LastKey, and by offset — and checks that
// each resume writes exactly the files the full run wrote from there (same
// index, first row, checksum and last key): the first two of them (a wrong
// start shows there, and it keeps the test fast), and every one for the
// resume from the middle. It returns the full run and its data rows, and
// how many batches ended without an exact key.
func resumeEverywhere(t *testing.T, src *Source, tb Table, batchSize int) (full Result, rows [][]string, noKey int) {
	t.Helper()
	full, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: batchSize, Start: Position{BatchIndex: 1}})
	if err != nil {
		t.Fatalf("full run: %v", err)
	}
	for _, b := range full.Batches {
		rows = append(rows, readCSV(t, b.Path)[1:]...)
	}
	for k := 1; k < len(full.Batches); k++ {
		prev := full.Batches[k-1]
		if prev.LastKey == nil {
			noKey++
		}
		modes := []string{"offset"}
		if prev.LastKey != nil {
			modes = append(modes, "keyset")
		}
		for _, mode := range modes {
			st := Position{BatchIndex: prev.Index + 1, Row: prev.FirstRow + prev.Rows}
			if mode == "keyset" {
				st.AfterKey = prev.LastKey
			}
			opts := Options{Dir: t.TempDir(), BatchSize: batchSize, Start: st}
			want := len(full.Batches) - k
			if k != len(full.Batches)/2 && want > 2 {
				want = 2
				opts.OnBatch = func(_ context.Context, b Batch) error {
					if b.Index == st.BatchIndex+1 {
						return errStopResume
					}
					return nil
				}
			}
			res, err := src.Extract(t.Context(), tb, opts)
			if err != nil && !errors.Is(err, errStopResume) {
				t.Fatalf("%s resume after batch %d (key %q): %v", mode, prev.Index, prev.LastKey, err)
			}
			if len(res.Batches) != want {
				t.Errorf("%s resume after batch %d (key %q): %d batches, want %d", mode, prev.Index, prev.LastKey, len(res.Batches), want)
				continue
			}
			for i, b := range res.Batches {
				w := full.Batches[k+i]
				if b.Index != w.Index || b.SHA256 != w.SHA256 || b.FirstRow != w.FirstRow || b.Rows != w.Rows || !cmp.Equal(b.LastKey, w.LastKey) {
					t.Errorf("%s resume after batch %d (key %q): batch %d differs:\n got %+v\nwant %+v\n got rows %q\nwant rows %q",
						mode, prev.Index, prev.LastKey, w.Index, b, w, readCSV(t, b.Path)[1:], readCSV(t, w.Path)[1:])
					break
				}
			}
		}
	}
	return full, rows, noKey
}

// wantIDs checks that the first column of rows holds 1..n, each once.
func wantIDs(t *testing.T, rows [][]string, n int) {
	t.Helper()
	seen := make(map[string]int)
	for _, r := range rows {
		seen[r[0]]++
	}
	for i := 1; i <= n; i++ {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("id %d appears %d times", i, c)
		}
	}
	if len(rows) != n {
		t.Errorf("%d rows, want %d", len(rows), n)
	}
}

// TestSQLiteResumeKeys resumes after every batch boundary with keys of
// every kind SQLite makes tricky: text that looks like numbers in columns
// with and without affinity, NOCASE text, an untyped column mixing
// integers, floats and text, floats, datetimes as text, composite keys.
// 103 rows in batches of 7: the last batch is partial, and boundaries
// fall inside pairs of keys that differ only in case.
func TestSQLiteResumeKeys(t *testing.T) {
	h := sqliteHarness(t)
	const n = 103
	var stmts []string
	stmts = append(stmts, "CREATE TABLE k (id INTEGER, code TEXT, ci TEXT COLLATE NOCASE, m, r REAL, d DATETIME, g INTEGER)")
	for i := 1; i <= n; i++ {
		var code string
		switch i % 4 {
		case 0:
			code = strconv.Itoa(i) // looks like an integer
		case 1:
			code = fmt.Sprintf("%03d", i) // leading zeros: text
		case 2:
			code = fmt.Sprintf("c%d", i)
		case 3:
			code = strconv.FormatFloat(float64(i)*0.1, 'g', -1, 64) // looks like a float, e.g. 0.30000000000000004
		}
		ci := fmt.Sprintf("key%03d", (i+1)/2) // pairs that differ only in case
		if i%2 == 0 {
			ci = strings.ToUpper(ci)
		}
		var m string
		switch i % 3 {
		case 0:
			m = strconv.Itoa(i * 10) // integer
		case 1:
			m = strconv.FormatFloat(float64(i)+0.25, 'g', -1, 64) // real
		case 2:
			m = sqlStr(strconv.Itoa(i*10 + 1)) // text that looks like an integer
		}
		r := strconv.FormatFloat((float64(i)-50)*0.1, 'g', -1, 64)
		if i == 7 {
			r = "1e-7"
		}
		if i == 8 {
			r = "1e300"
		}
		d := fmt.Sprintf("'2024-01-%02d %02d:00:00.%03d'", 1+i%28, i%24, i)
		if i%5 == 0 {
			d = fmt.Sprintf("'2024-02-%02dT%02d:30:00Z'", 1+i%28, i%24)
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO k VALUES (%d, %s, %s, %s, %s, %s, %d)", i, sqlStr(code), sqlStr(ci), m, r, d, i%7))
	}
	h.exec(t, stmts...)
	src := h.open(t)
	fields := []Field{{Column: "id", Name: "Id__c"}, {Column: "code", Name: "Code__c"}}
	cases := []struct {
		name  string
		query string
		keys  []string
		noKey bool // some batches end on a key that cannot be resumed after exactly
	}{
		{name: "text column", keys: []string{"code"}},
		{name: "text expression", query: "SELECT id, code, code || '' AS kx FROM k", keys: []string{"kx"}, noKey: true},
		{name: "nocase column", keys: []string{"ci"}},
		{name: "nocase and id", keys: []string{"ci", "id"}},
		{name: "untyped mixed", keys: []string{"m"}, noKey: true},
		{name: "real", keys: []string{"r"}},
		{name: "datetime text", keys: []string{"d"}},
		{name: "group and id", keys: []string{"g", "id"}},
		{name: "group and expression", query: "SELECT id, code, g, code || '' AS kx FROM k", keys: []string{"g", "kx"}, noKey: true},
		{name: "integer expression", query: "SELECT id, code, id * 3 - 200 AS kx FROM k", keys: []string{"kx"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := Table{Name: "K", From: "k", OrderBy: c.keys, Fields: fields}
			if c.query != "" {
				tb.From, tb.Query = "", c.query
			}
			_, rows, noKey := resumeEverywhere(t, src, tb, 7)
			wantIDs(t, rows, n)
			if c.noKey && noKey == 0 {
				t.Errorf("no batch ended on an inexact key: the case does not test the offset fallback")
			}
			if !c.noKey && noKey > 0 {
				t.Errorf("%d batches ended without a resume key", noKey)
			}
		})
	}
}

// TestAppendKeyExact pins which keys are reported as exact.
func TestAppendKeyExact(t *testing.T) {
	sqliteText := column{src: srcAuto, textAffinity: true}
	sqliteNone := column{src: srcAuto, numericText: true}
	pgNumeric := column{src: srcDecimal}
	pgFloat := column{src: srcFloat}
	cases := []struct {
		name  string
		v     value
		c     column
		want  string
		exact bool
	}{
		{"integer", value{kind: vInt, i: -42}, sqliteNone, "-42", true},
		{"float", value{kind: vFloat, f: 0.30000000000000004}, sqliteNone, "0.30000000000000004", true},
		{"negative zero", value{kind: vFloat, f: math.Copysign(0, -1)}, sqliteNone, "0", true},
		{"NaN", value{kind: vFloat, f: math.NaN()}, sqliteNone, "NaN", false},
		{"number-looking text, TEXT affinity", value{kind: vText, b: []byte("10")}, sqliteText, "10", true},
		{"number-looking text, no affinity", value{kind: vText, b: []byte("10")}, sqliteNone, "10", false},
		{"float-looking text, no affinity", value{kind: vText, b: []byte("1e+21")}, sqliteNone, "1e+21", false},
		{"text, no affinity", value{kind: vText, b: []byte("010")}, sqliteNone, "010", true},
		{"invalid UTF-8", value{kind: vText, b: []byte("a\xffb")}, sqliteText, "a\xffb", false},
		{"NUL", value{kind: vText, b: []byte("a\x00b")}, sqliteText, "a\x00b", false},
		{"blob", value{kind: vBinary, b: []byte("ab")}, sqliteText, "ab", false},
		{"numeric scale", value{kind: vText, b: []byte("1.500")}, pgNumeric, "1.5", true},
		{"numeric integral", value{kind: vText, b: []byte("-12.000")}, pgNumeric, "-12", true},
		{"numeric zero", value{kind: vText, b: []byte("-0.00")}, pgNumeric, "0", true},
		{"numeric big", value{kind: vText, b: []byte("100")}, pgNumeric, "100", true},
		{"numeric NaN", value{kind: vText, b: []byte("NaN")}, pgNumeric, "NaN", true},
		{"float text negative zero", value{kind: vText, b: []byte("-0")}, pgFloat, "0", true},
		{"float text exponent", value{kind: vText, b: []byte("1.5e-10")}, pgFloat, "1.5e-10", true},
	}
	for _, c := range cases {
		got, exact := appendKey(nil, &c.v, &c.c)
		if string(got) != c.want || exact != c.exact {
			t.Errorf("%s: appendKey = %q, exact %v; want %q, %v", c.name, got, exact, c.want, c.exact)
		}
	}
}

// TestPostgresResumeKeys resumes after every batch boundary with keys of
// the types and collations PostgreSQL users order by: text under a
// linguistic (non-C) collation, numerics of mixed scale, floats,
// timestamps, timestamptz, dates, uuids, composite keys.
func TestPostgresResumeKeys(t *testing.T) {
	h := pgHarness(t)
	name := h.table(t)
	const n = 103
	h.exec(t, "CREATE TABLE "+name+` (id int, t_icu text COLLATE "und-x-icu", t_c text COLLATE "C", n numeric, f float8,
		ts timestamp, tz timestamptz, d date, u uuid, g int)`,
		`INSERT INTO `+name+` SELECT i,
			(ARRAY['apple','Apple','APPLE','äpple','Äpple','apple ','b','B','ß','ss'])[1 + i % 10] || (i / 10)::text,
			(ARRAY['a','A','b','B','é','E','z'])[1 + i % 7] || i::text,
			CASE WHEN i % 3 = 0 THEN (i * 1.5)::numeric(20,4) WHEN i % 3 = 1 THEN (i * 10)::numeric ELSE (i::numeric / 7)::numeric(40,30) END,
			(i - 50) * 0.1::float8,
			timestamp '2024-03-31 01:00:00.000001' + i * interval '17 minutes 0.5 seconds',
			timestamptz '2024-10-27 00:30:00+02' + i * interval '7 minutes',
			date '1999-12-20' + i,
			md5(i::text)::uuid,
			i % 7
		FROM generate_series(1, 103) i`)
	src := h.open(t)
	fields := []Field{{Column: "id", Name: "Id__c"}, {Column: "t_icu", Name: "T__c"}, {Column: "n", Name: "N__c"}}
	for _, keys := range [][]string{{"t_icu"}, {"t_c"}, {"n"}, {"f"}, {"ts"}, {"tz"}, {"d", "g"}, {"u"}, {"g", "t_icu"}, {"g", "n"}, {"g", "tz"}} {
		t.Run(strings.Join(keys, "_"), func(t *testing.T) {
			_, rows, noKey := resumeEverywhere(t, src, Table{Name: "PK", From: name, OrderBy: keys, Fields: fields}, 10)
			wantIDs(t, rows, n)
			if noKey > 0 {
				t.Errorf("%d batches ended without a resume key", noKey)
			}
		})
	}
}

// TestPostgresKeyEquality: keys the database sees as equal while their text
// differs must fail as duplicates, not split across batches.
func TestPostgresKeyEquality(t *testing.T) {
	h := pgHarness(t)
	src := h.open(t)
	extract := func(q string, keys ...string) error {
		_, err := src.Extract(t.Context(), Table{Name: "EQ", Query: q, OrderBy: keys, Fields: []Field{{Column: "id", Name: "Id__c"}}},
			Options{Dir: t.TempDir(), BatchSize: 1})
		return err
	}
	t.Run("numeric scale", func(t *testing.T) {
		err := extract("SELECT * FROM (VALUES (1, 1.0::numeric), (2, 1.00::numeric), (3, 2::numeric)) v(id, k)", "k")
		if !errors.Is(err, ErrOrderBy) {
			t.Fatalf("err = %v, want ErrOrderBy: 1.0 and 1.00 are one numeric key", err)
		}
		wantAll(t, err, "k=1")
	})
	t.Run("float negative zero", func(t *testing.T) {
		err := extract("SELECT * FROM (VALUES (1, '-0'::float8), (2, '0'::float8)) v(id, k)", "k")
		if !errors.Is(err, ErrOrderBy) {
			t.Fatalf("err = %v, want ErrOrderBy: -0 = 0", err)
		}
	})
	t.Run("interval", func(t *testing.T) {
		err := extract("SELECT * FROM (VALUES (1, interval '1 day'), (2, interval '24 hours')) v(id, k)", "k")
		if !errors.Is(err, ErrOrderBy) {
			t.Fatalf("err = %v, want ErrOrderBy", err)
		}
		wantAll(t, err, "interval", "'1 day' = '24 hours'")
	})
	t.Run("nondeterministic collation", func(t *testing.T) {
		h.exec(t, `CREATE COLLATION IF NOT EXISTS sfm_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`)
		q := `SELECT * FROM (VALUES (1, 'a' COLLATE sfm_ci), (2, 'A' COLLATE sfm_ci), (3, 'b' COLLATE sfm_ci)) v(id, k)`
		err := extract(q, "k")
		if !errors.Is(err, ErrOrderBy) {
			t.Fatalf("err = %v, want ErrOrderBy", err)
		}
		wantAll(t, err, `"sfm_ci"`, "nondeterministic", `COLLATE "C"`)
		// The documented fix works.
		if err := extract(`SELECT id, k COLLATE "C" AS k_key FROM (`+q+`) s`, "k_key"); err != nil {
			t.Errorf("with COLLATE \"C\": %v", err)
		}
	})
	t.Run("citext", func(t *testing.T) {
		if _, err := pgExec(t, h, "CREATE EXTENSION IF NOT EXISTS citext"); err != nil {
			t.Skip("citext extension not available:", err)
		}
		err := extract(`SELECT * FROM (VALUES (1, 'a'::citext), (2, 'B'::citext)) v(id, k)`, "k")
		if !errors.Is(err, ErrOrderBy) {
			t.Fatalf("err = %v, want ErrOrderBy", err)
		}
		wantAll(t, err, "citext", `"k"::text`)
	})
}

// pgExec runs one statement on the PostgreSQL test database and returns its
// error instead of failing the test.
func pgExec(t *testing.T, h *engineHarness, stmt string) (int64, error) {
	t.Helper()
	cs, err := pgConnString(h.conn)
	if err != nil {
		return 0, err
	}
	c, err := pgconn.Connect(t.Context(), cs)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	tag, err := c.Exec(t.Context(), stmt).ReadAll()
	if err != nil {
		return 0, err
	}
	return tag[0].CommandTag.RowsAffected(), nil
}
