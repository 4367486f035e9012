package extract

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// typeCase is one row of the type table in doc.go: a source value (an SQL
// expression or literal of a declared type), the Salesforce field type it
// is mapped to (Field.Type, "" for none) and the CSV value or the error.
type typeCase struct {
	decl    string // SQLite declared column type (unused for PostgreSQL)
	expr    string // SQL literal / expression
	sfType  string
	want    string
	wantErr string
}

// checkTypeCase extracts one field and compares the written value or error.
func checkTypeCase(t *testing.T, src *Source, tb Table, c typeCase) {
	t.Helper()
	res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 10})
	if c.wantErr != "" {
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Fatalf("err = %v, want a *ValueError containing %q", err, c.wantErr)
		}
		if !strings.Contains(err.Error(), c.wantErr) || ve.Fix == "" || ve.Key == "" || ve.Value == "" {
			t.Errorf("err = %v (fix %q), want %q with key, value and fix", err, ve.Fix, c.wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	got := readCSV(t, res.Batches[0].Path)
	if len(got) != 2 || len(got[1]) != 1 || got[1][0] != c.want {
		t.Errorf("got %.300q, want %.300q", got, c.want)
	}
}

// TestSQLiteTypeMapping is the SQLite column of the type table in doc.go,
// checked against the real engine: values stored through each declared
// type (with SQLite's affinity conversions at INSERT) and read back.
func TestSQLiteTypeMapping(t *testing.T) {
	cases := []typeCase{
		{decl: "INTEGER", expr: "9223372036854775807", want: "9223372036854775807"},
		{decl: "INTEGER", expr: "-1", want: "-1"},
		{decl: "INTEGER", expr: "'10.0'", want: "10"}, // INTEGER affinity made it 10
		{decl: "INTEGER", expr: "1", sfType: "boolean", want: "true"},
		{decl: "INTEGER", expr: "0", sfType: "boolean", want: "false"},
		{decl: "INTEGER", expr: "2", sfType: "boolean", wantErr: "is not a boolean"},
		{decl: "INTEGER", expr: "NULL", want: ""},
		{decl: "REAL", expr: "0.1", want: "0.1"},
		{decl: "REAL", expr: "0.1 + 0.2", want: "0.30000000000000004"},
		{decl: "REAL", expr: "1e20", want: "100000000000000000000"},
		{decl: "REAL", expr: "1e-7", want: "0.0000001"},
		{decl: "REAL", expr: "-0.0", want: "0"},
		{decl: "REAL", expr: "9e999", wantErr: "+Inf is not a number"},
		{decl: "REAL", expr: "-9e999", wantErr: "-Inf is not a number"},
		{decl: "REAL", expr: "NULL", want: ""},
		// NUMERIC affinity stores decimal text as REAL or INTEGER, keeping
		// 15 significant digits: the loss happens at INSERT, and what is
		// written is what SQLite holds. Exact decimals need TEXT columns.
		{decl: "DECIMAL(18,4)", expr: "'1234.5000'", want: "1234.5"},
		{decl: "DECIMAL(18,4)", expr: "'99999999999999.9999'", want: "100000000000000"},
		{decl: "TEXT", expr: "'99999999999999.9999'", sfType: "currency", want: "99999999999999.9999"},
		{decl: "TEXT", expr: "'1.5e3'", sfType: "double", want: "1500"},
		{decl: "TEXT", expr: "'12,5'", sfType: "double", wantErr: "not a decimal number"},
		{decl: "TEXT", expr: "' padded '", want: " padded "},
		{decl: "TEXT", expr: "''", want: ""}, // empty text is NULL to Salesforce
		{decl: "TEXT", expr: "CAST(X'61FF62' AS TEXT)", wantErr: "invalid UTF-8 at byte 1"},
		{decl: "TEXT", expr: "'a' || char(0) || 'b'", wantErr: "NUL byte at byte 1"},
		{decl: "TEXT", expr: "'#N/A'", wantErr: "would clear the Salesforce field"},
		{decl: "TEXT", expr: "char(65279) || 'BOM' || char(8232)", want: "\ufeffBOM\u2028"},
		{decl: "TEXT", expr: "X'DEADBEEF'", wantErr: "binary"}, // a blob in a TEXT column stays a blob
		{decl: "BLOB", expr: "X'DEADBEEF'", wantErr: "binary"},
		{decl: "BLOB", expr: "X''", wantErr: "binary"},
		{decl: "BLOB", expr: "NULL", want: ""},
		{decl: "", expr: "5", want: "5"}, // untyped: by storage class
		{decl: "", expr: "2.5", want: "2.5"},
		{decl: "", expr: "'text'", want: "text"},
		{decl: "DATE", expr: "'2024-02-29'", want: "2024-02-29"},
		{decl: "DATE", expr: "'2024-02-29'", sfType: "datetime", want: "2024-02-29T00:00:00.000Z"},
		{decl: "DATE", expr: "'2024-13-01'", wantErr: "not a date/time"},
		{decl: "DATE", expr: "'2023-02-29'", wantErr: "not a date/time"},
		{decl: "DATE", expr: "'02/01/2024'", wantErr: "not a date/time"},
		{decl: "DATE", expr: "'12345-01-01'", wantErr: "outside 0000-9999"},
		{decl: "DATE", expr: "NULL", want: ""},
		{decl: "DATETIME", expr: "'2024-01-01T10:00:00'", want: "2024-01-01T10:00:00.000Z"},
		{decl: "DATETIME", expr: "'2024-01-01 10:00'", want: "2024-01-01T10:00:00.000Z"},
		{decl: "DATETIME", expr: "'2024-01-01 10:00:00.123456'", want: "2024-01-01T10:00:00.123Z"},
		{decl: "DATETIME", expr: "'2024-01-01 10:00:00Z'", want: "2024-01-01T10:00:00.000Z"},
		{decl: "DATETIME", expr: "'2024-01-01 10:00:00+02:00'", want: "2024-01-01T08:00:00.000Z"},
		{decl: "DATETIME", expr: "'2024-01-01 10:00:00 +0200'", want: "2024-01-01T08:00:00.000Z"},
		{decl: "TIMESTAMP", expr: "'2024-01-01T10:00:00.5-03:30'", want: "2024-01-01T13:30:00.500Z"},
		{decl: "DATETIME", expr: "'2024-01-01 10:00:00'", sfType: "date", want: "2024-01-01"},
		// A zoned value into a date field: its calendar day in the source
		// time zone (UTC here).
		{decl: "DATETIME", expr: "'2024-01-01 23:30:00-05:00'", sfType: "date", want: "2024-01-02"},
		{decl: "DATETIME", expr: "julianday('2024-01-01 10:00:00')", wantErr: "Julian day"},
		{decl: "DATETIME", expr: "julianday('2024-01-01 12:00:00')", wantErr: "Julian day"}, // integral: stored as INTEGER
		{decl: "DATETIME", expr: "1700000000", wantErr: "unixepoch"},
		{decl: "DATETIME", expr: "'1700000000'", wantErr: "unixepoch"}, // NUMERIC affinity made it an integer
		{decl: "DATETIME", expr: "'yesterday'", wantErr: "not a date/time"},
		{decl: "DATETIME", expr: "'2024-01-01 10:00:00 '", wantErr: "not a date/time"},
		{decl: "BOOLEAN", expr: "1", want: "true"},
		{decl: "BOOLEAN", expr: "0", want: "false"},
		{decl: "BOOLEAN", expr: "'true'", want: "true"},
		{decl: "BOOLEAN", expr: "'f'", want: "false"},
		{decl: "BOOLEAN", expr: "'yes'", want: "true"},
		{decl: "BOOLEAN", expr: "1.0", want: "true"},
		{decl: "BOOLEAN", expr: "2", wantErr: "not a boolean"},
		{decl: "BOOLEAN", expr: "'maybe'", wantErr: "not a boolean"},
		{decl: "BOOLEAN", expr: "NULL", want: ""},
	}
	h := sqliteHarness(t)
	var defs, vals []string
	for i, c := range cases {
		defs = append(defs, fmt.Sprintf("c%d %s", i, c.decl))
		vals = append(vals, c.expr)
	}
	h.exec(t, "CREATE TABLE types (id INTEGER, "+strings.Join(defs, ", ")+")", "INSERT INTO types VALUES (1, "+strings.Join(vals, ", ")+")")
	src := h.open(t)
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s %s %s", c.decl, c.expr, c.sfType), func(t *testing.T) {
			checkTypeCase(t, src, Table{Name: "TY", From: "types", OrderBy: []string{"id"},
				Fields: []Field{{Column: fmt.Sprintf("c%d", i), Name: "V__c", Type: c.sfType}}}, c)
		})
	}
}

// TestPostgresTypeMapping is the PostgreSQL column of the type table in
// doc.go, straight from the server.
func TestPostgresTypeMapping(t *testing.T) {
	h := pgHarness(t)
	suffix := fmt.Sprintf("%d", os.Getpid())
	family, price, day, blob := "sfm_family_"+suffix, "sfm_price_"+suffix, "sfm_day_"+suffix, "sfm_blob_"+suffix
	h.exec(t, "CREATE TYPE "+family+" AS ENUM ('Hardware', 'Spare Parts')",
		"CREATE DOMAIN "+price+" AS numeric(10,2)", "CREATE DOMAIN "+day+" AS date", "CREATE DOMAIN "+blob+" AS bytea")
	t.Cleanup(func() {
		_, _ = pgExec(t, h, "DROP TYPE IF EXISTS "+family+"; DROP DOMAIN IF EXISTS "+price+", "+day+", "+blob) // best effort
	})
	digits := func(n int) string { return strings.Repeat("0", n) }
	cases := []typeCase{
		{expr: "32767::int2", want: "32767"},
		{expr: "(-32768)::int2", want: "-32768"},
		{expr: "2147483647::int4", want: "2147483647"},
		{expr: "(-9223372036854775808)::int8", want: "-9223372036854775808"},
		{expr: "'123456789012345678901234567890.123456789012345678901234567890'::numeric", want: "123456789012345678901234567890.123456789012345678901234567890"},
		{expr: "1e-300::numeric", want: "0." + digits(299) + "1"},
		{expr: "1e100::numeric", want: "1" + digits(100)},
		{expr: "12.5::numeric(10,2)", want: "12.50"}, // the scale is the source's
		{expr: "'NaN'::numeric", wantErr: "NaN is not a number"},
		{expr: "'Infinity'::numeric", wantErr: "Infinity is not a number"},
		{expr: "'-Infinity'::numeric", wantErr: "-Infinity is not a number"},
		{expr: "0.1::real", want: "0.1"},
		{expr: "0.7::real", want: "0.7"},
		{expr: "1e-7::real", want: "0.0000001"},
		{expr: "3.4e38::real", want: "34" + digits(37)},
		{expr: "'-0'::real", want: "0"},
		{expr: "'NaN'::real", wantErr: "NaN is not a number"},
		{expr: "'Infinity'::real", wantErr: "Infinity is not a number"},
		{expr: "0.1::float8 + 0.2::float8", want: "0.30000000000000004"},
		{expr: "1e20::float8", want: "1" + digits(20)},
		{expr: "1e-7::float8", want: "0.0000001"},
		{expr: "1.7976931348623157e308::float8", want: "17976931348623157" + digits(292)},
		{expr: "'-0'::float8", want: "0"},
		{expr: "'-Infinity'::float8", wantErr: "-Infinity is not a number"},
		{expr: "'12.34'::money", wantErr: "money"},
		{expr: "true", want: "true"},
		{expr: "false", want: "false"},
		{expr: "1", sfType: "boolean", want: "true"},
		{expr: "'Y'::text", sfType: "boolean", want: "true"},
		{expr: "date '2024-02-29'", want: "2024-02-29"},
		{expr: "date '0001-01-01'", want: "0001-01-01"},
		{expr: "date '9999-12-31'", sfType: "datetime", want: "9999-12-31T00:00:00.000Z"},
		{expr: "'infinity'::date", wantErr: "infinite date/time"},
		{expr: "'-infinity'::date", wantErr: "infinite date/time"},
		{expr: "'0044-03-15 BC'::date", wantErr: "year -43 is outside 0000-9999"},
		{expr: "'10000-01-01'::date", wantErr: "year 10000 is outside 0000-9999"},
		{expr: "timestamp '2024-03-01 23:59:58.999999'", want: "2024-03-01T23:59:58.999Z"}, // truncated, never rounded up
		{expr: "timestamp '0001-01-01 00:00:00'", want: "0001-01-01T00:00:00.000Z"},
		{expr: "timestamp '2024-03-01 23:59:58'", sfType: "date", want: "2024-03-01"},
		{expr: "'10000-01-01 00:00'::timestamp", wantErr: "year 10000 is outside 0000-9999"},
		{expr: "'infinity'::timestamp", wantErr: "infinite date/time"},
		{expr: "'0044-03-15 12:00 BC'::timestamp", wantErr: "year -43 is outside 0000-9999"},
		{expr: "timestamptz '2024-05-06 07:08:09.987654+05:30'", want: "2024-05-06T01:38:09.987Z"},
		{expr: "timestamptz '2024-05-06 00:30:00+02'", sfType: "date", want: "2024-05-05"}, // calendar day in the source zone (UTC)
		{expr: "'-infinity'::timestamptz", wantErr: "infinite date/time"},
		{expr: "time '13:14:15.5'", want: "13:14:15.5"},
		{expr: "timetz '13:14:15+02'", want: "13:14:15+02"},
		{expr: "interval '1 year 2 months 3 days 04:05:06.5'", want: "P1Y2M3DT4H5M6.5S"},
		{expr: "'x'::varchar(10)", want: "x"},
		{expr: "'ab'::char(4)", want: "ab  "}, // blank padding kept
		{expr: "' a '::text", want: " a "},
		{expr: "''::text", want: ""},
		{expr: "'#N/A'::text", wantErr: "would clear the Salesforce field"},
		{expr: `'{"a": [1, 2]}'::json`, want: `{"a": [1, 2]}`},
		{expr: `'{"b":1, "a":2}'::jsonb`, want: `{"a": 2, "b": 1}`},
		{expr: "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", want: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{expr: "ARRAY[1, 2]", want: "{1,2}"},
		{expr: "ARRAY['x', 'y,z']", want: `{x,"y,z"}`},
		{expr: "'Spare Parts'::" + family, want: "Spare Parts"},
		{expr: "12.5::" + price, want: "12.50"},
		{expr: "'2024-02-29'::" + day, sfType: "datetime", want: "2024-02-29T00:00:00.000Z"},
		{expr: "'\\xff'::" + blob, wantErr: "binary"},
		{expr: "'\\xdeadbeef'::bytea", wantErr: "binary"},
		{expr: "'<a>1</a>'::xml", want: "<a>1</a>"},
		{expr: "'192.168.0.1/24'::inet", want: "192.168.0.1/24"},
		{expr: "B'101'", want: "101"},
		{expr: "point(1, 2)", want: "(1,2)"},
		{expr: "NULL::int8", want: ""},
		{expr: "NULL::numeric", want: ""},
		{expr: "NULL::float8", want: ""},
		{expr: "NULL::bool", want: ""},
		{expr: "NULL::date", want: ""},
		{expr: "NULL::timestamp", want: ""},
		{expr: "NULL::timestamptz", want: ""},
		{expr: "NULL::bytea", want: ""}, // NULL is NULL, whatever the type
		{expr: "NULL::jsonb", want: ""},
	}
	src := h.open(t)
	for _, c := range cases {
		t.Run(c.expr+" "+c.sfType, func(t *testing.T) {
			checkTypeCase(t, src, Table{Name: "PGT", Query: "SELECT 7 AS id, " + c.expr + " AS v", OrderBy: []string{"id"},
				Fields: []Field{{Column: "v", Name: "V__c", Type: c.sfType}}}, c)
		})
	}
}

// sessionProbe is a query whose text depends on every session setting the
// PostgreSQL engine pins (TimeZone, DateStyle, IntervalStyle,
// extra_float_digits), with the CSV it must give.
const sessionProbe = `SELECT 1 AS id,
	timestamptz '2024-07-01 12:00:00+02' AS tz,
	'2024-07-01 12:00:00'::timestamptz AS tz_literal,
	timestamp '2024-07-01 12:00:00'::timestamptz AS tz_cast,
	timestamp '2024-07-01 12:00:00' AS ts,
	date '2024-07-01' AS d,
	interval '1 day 02:00:00' AS iv,
	0.1::float8 AS f8, 0.1::real AS f4, 1.50::numeric AS n,
	to_char(timestamptz '2024-07-01 12:00:00+00', 'HH24:MI TZ') AS tz_text`

var sessionProbeWant = []string{"2024-07-01T10:00:00.000Z", "2024-07-01T12:00:00.000Z", "2024-07-01T12:00:00.000Z",
	"2024-07-01T12:00:00.000Z", "2024-07-01", "P1DT2H", "0.1", "0.1", "1.50", "12:00 UTC"}

func sessionProbeTable() Table {
	var fields []Field
	for _, c := range []string{"tz", "tz_literal", "tz_cast", "ts", "d", "iv", "f8", "f4", "n", "tz_text"} {
		fields = append(fields, Field{Column: c, Name: c + "__c"})
	}
	return Table{Name: "SESSION", Query: sessionProbe, OrderBy: []string{"id"}, Fields: fields}
}

// TestPostgresSessionSettings: a role whose own settings would change how
// values print (time zone +05:45, SQL/DMY dates, verbose intervals, float
// digits) gets exactly the same batch file: the engine's startup
// parameters override them.
func TestPostgresSessionSettings(t *testing.T) {
	h := pgHarness(t)
	role := fmt.Sprintf("sfm_odd_%d", os.Getpid())
	h.exec(t, "DROP ROLE IF EXISTS "+role, "CREATE ROLE "+role+" LOGIN",
		"ALTER ROLE "+role+" SET TimeZone = 'Asia/Kathmandu'",
		"ALTER ROLE "+role+" SET DateStyle = 'SQL, DMY'",
		"ALTER ROLE "+role+" SET IntervalStyle = 'postgres_verbose'",
		"ALTER ROLE "+role+" SET extra_float_digits = -15")
	t.Cleanup(func() { _, _ = pgExec(t, h, "DROP ROLE IF EXISTS "+role) }) // best effort
	// The role's settings are real: a plain session of it prints differently.
	conn := h.conn
	conn.Login = role
	odd := &engineHarness{conn: conn}
	if n, err := pgExec(t, odd, "SELECT 1 WHERE current_setting('TimeZone') = 'Asia/Kathmandu'"); err != nil || n != 1 {
		t.Fatalf("role settings not in effect (%d, %v): cannot test overriding them (is the server's auth trust for %s?)", n, err, role)
	}
	for _, c := range []struct {
		name string
		conn airflow.Connection
	}{{"default role", h.conn}, {"role with odd settings", conn}} {
		t.Run(c.name, func(t *testing.T) {
			src, err := Open(t.Context(), c.conn)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			res, err := src.Extract(t.Context(), sessionProbeTable(), Options{Dir: t.TempDir(), BatchSize: 10})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sessionProbeWant, readCSV(t, res.Batches[0].Path)[1]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestProcessTimeZone runs the time checks in a child process whose local
// time zone (TZ) is far from UTC and has a fractional offset: nothing the
// extraction writes may depend on the machine's zone.
func TestProcessTimeZone(t *testing.T) {
	if os.Getenv("SFM_TZ_CHILD") != "" {
		processTimeZoneChild(t)
		return
	}
	for _, tz := range []string{"Asia/Kathmandu", "America/St_Johns"} {
		if _, err := time.LoadLocation(tz); err != nil {
			t.Skip("no time zone database:", err)
		}
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestProcessTimeZone$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "TZ="+tz, "SFM_TZ_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "local zone "+tz) {
			t.Errorf("TZ=%s: %v\n%s", tz, err, out)
		}
	}
}

func processTimeZoneChild(t *testing.T) {
	if time.Local.String() == "UTC" || time.Now().Format("-07:00") == "+00:00" {
		t.Fatalf("child runs in %s: TZ was not applied", time.Local)
	}
	t.Logf("local zone %s", os.Getenv("TZ"))
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	h := sqliteHarness(t)
	h.exec(t, "CREATE TABLE tt (id INTEGER, d DATE, ts DATETIME, tz TIMESTAMP)",
		"INSERT INTO tt VALUES (1, '2024-01-01', '2024-01-01 00:30:00', '2024-01-01 00:30:00+01:00')",
		"INSERT INTO tt VALUES (2, '2024-07-01', '2024-07-01 23:30:00.250', '2024-07-01T23:30:00Z')")
	src := h.open(t)
	fields := []Field{{Column: "d", Name: "D__c"}, {Column: "ts", Name: "Ts__c"}, {Column: "tz", Name: "Tz__c"},
		{Column: "ts", Name: "TsDate__c", Type: "date"}, {Column: "tz", Name: "TzDate__c", Type: "date"}}
	for _, c := range []struct {
		loc  *time.Location
		want [][]string
	}{
		{nil, [][]string{
			{"2024-01-01", "2024-01-01T00:30:00.000Z", "2023-12-31T23:30:00.000Z", "2024-01-01", "2023-12-31"},
			{"2024-07-01", "2024-07-01T23:30:00.250Z", "2024-07-01T23:30:00.000Z", "2024-07-01", "2024-07-01"},
		}},
		{berlin, [][]string{
			{"2024-01-01", "2023-12-31T23:30:00.000Z", "2023-12-31T23:30:00.000Z", "2024-01-01", "2024-01-01"},
			{"2024-07-01", "2024-07-01T21:30:00.250Z", "2024-07-01T23:30:00.000Z", "2024-07-01", "2024-07-02"},
		}},
	} {
		res, err := src.Extract(t.Context(), Table{Name: "TT", From: "tt", OrderBy: []string{"id"}, Fields: fields, SourceTimeZone: c.loc},
			Options{Dir: t.TempDir(), BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.want, readCSV(t, res.Batches[0].Path)[1:]); diff != "" {
			t.Errorf("SQLite, source zone %v (-want +got):\n%s", c.loc, diff)
		}
	}
	if _, err := airflow.LookupConnection(os.Getenv, pgTestConnID); err == nil {
		h := pgHarness(t)
		src := h.open(t)
		res, err := src.Extract(t.Context(), sessionProbeTable(), Options{Dir: t.TempDir(), BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sessionProbeWant, readCSV(t, res.Batches[0].Path)[1]); diff != "" {
			t.Errorf("PostgreSQL (-want +got):\n%s", diff)
		}
	}
}

// TestPostgresLocalTimes: zone-less timestamps read in SourceTimeZone give
// the instants PostgreSQL itself gives (ts AT TIME ZONE zone), for every
// quarter hour of a year, daylight-saving gaps and overlaps included, in
// zones east and west of UTC, one with a 30-minute change (Lord Howe), one
// whose change happened at midnight (Sao Paulo 2018) and one with
// "negative" summer time in the zone database (Dublin).
func TestPostgresLocalTimes(t *testing.T) {
	h := pgHarness(t)
	src := h.open(t)
	for _, c := range []struct{ zone, year string }{
		{"Europe/Berlin", "2024"}, {"America/New_York", "2024"}, {"Australia/Lord_Howe", "2024"},
		{"America/Sao_Paulo", "2018"}, {"Europe/Dublin", "2024"},
	} {
		t.Run(c.zone, func(t *testing.T) {
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Skip("no time zone database:", err)
			}
			q := fmt.Sprintf(`SELECT g AS id, ts, ts AT TIME ZONE '%s' AS pg FROM (
				SELECT g, timestamp '%s-01-01' + g * interval '15 minutes' AS ts FROM generate_series(0, 366 * 96) g) s`, c.zone, c.year)
			res, err := src.Extract(t.Context(), Table{Name: "LT", Query: q, OrderBy: []string{"id"}, SourceTimeZone: loc,
				Fields: []Field{{Column: "ts", Name: "Ts__c"}, {Column: "pg", Name: "Pg__c"}}}, Options{Dir: t.TempDir(), BatchSize: 100_000})
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for _, r := range readCSV(t, res.Batches[0].Path)[1:] {
				if r[0] != r[1] && bad < 5 {
					bad++
					t.Errorf("local time read as %s, PostgreSQL says %s", r[0], r[1])
				}
			}
		})
	}
}
