package extract

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	go_ora "github.com/sijms/go-ora/v2"
	"github.com/sijms/go-ora/v2/configurations"
	"github.com/sijms/go-ora/v2/converters"
	"github.com/sijms/go-ora/v2/network"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// No Oracle server can run here (dependencies.md). The Oracle path is
// covered by: (1) unit tests feeding the exact Go values go-ora produces —
// made with go-ora's own codecs — through the formatter, (2) an end-to-end
// run of the Oracle engine and dialect over a database/sql driver that
// answers like go-ora (same value types and type names), recording the SQL,
// and (3) the shared suite against a real Oracle when AIRFLOW_CONN_ORACLE_TEST
// is set.

// goraNumber is what go-ora hands over for a NUMBER: its wire bytes decoded
// to text by its own Number type.
func goraNumber(t *testing.T, s string) string {
	t.Helper()
	n, err := go_ora.NewNumberFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.String()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// goraDate is what go-ora hands over for DATE: the 7-byte wire form decoded.
func goraDate(t *testing.T, tm time.Time) time.Time {
	t.Helper()
	d, err := converters.DecodeDate(converters.EncodeDate(tm))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// goraTimestamp is what go-ora hands over for TIMESTAMP (withTZ false) and
// TIMESTAMP WITH TIME ZONE (withTZ true).
func goraTimestamp(t *testing.T, tm time.Time, withTZ bool) time.Time {
	t.Helper()
	d, err := converters.DecodeDate(converters.EncodeTimeStamp(tm, withTZ, !withTZ))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// goraBinaryFloat is what go-ora hands over for BINARY_FLOAT (a float64 of
// the float32 value) from its 4-byte wire form.
func goraBinaryFloat(f float32) float64 {
	b := make([]byte, 4)
	bits := math.Float32bits(f)
	if f >= 0 {
		bits |= 1 << 31
	} else {
		bits = ^bits
	}
	binary.BigEndian.PutUint32(b, bits)
	return converters.ConvertBinaryFloat(b)
}

// oracleCase is one Go value as go-ora returns it for a column of
// typeName, and what the formatter must write for it (or the error).
type oracleCase struct {
	name     string
	typeName string // go-ora's DatabaseTypeName
	v        any
	sfType   string
	loc      *time.Location
	want     string
	wantErr  string
}

// runOracleCases formats each case's value as the Oracle engine would.
func runOracleCases(t *testing.T, cases []oracleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			col := column{name: "C", dbType: oracleTypeName(c.typeName), field: "C__c", out: outFor(c.sfType), maxChars: maxFieldChars}
			col.src, col.floatBits = oracleKind(c.typeName)
			var v value
			if err := oracleValue(c.v, &v); err != nil {
				t.Fatal(err)
			}
			got, err := newFormatter(c.loc).appendValue(nil, &v, &col)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %q, err = %v, want %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got %.200q, want %.200q", got, c.want)
			}
		})
	}
}

func TestOracleValues(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	plus5 := time.FixedZone("+05:00", 5*3600)
	cases := []oracleCase{
		{"NUMBER exact", "NUMBER", goraNumber(t, "12345678901234567890.123456789"), "", nil, "12345678901234567890.123456789", ""},
		{"NUMBER negative fraction", "NUMBER", goraNumber(t, "-0.000001"), "", nil, "-0.000001", ""},
		{"NUMBER tiny", "NUMBER", goraNumber(t, "1e-30"), "", nil, "0.000000000000000000000000000001", ""},
		{"NUMBER huge", "NUMBER", goraNumber(t, "9.99e125"), "", nil, "999" + strings.Repeat("0", 123), ""},
		{"NUMBER integer", "NUMBER", goraNumber(t, "42"), "", nil, "42", ""},
		{"NUMBER(1) as boolean", "NUMBER", goraNumber(t, "1"), "boolean", nil, "true", ""},
		{"NUMBER(1) not boolean", "NUMBER", goraNumber(t, "2"), "boolean", nil, "", "not a boolean"},
		{"CHAR Y as boolean", "CHAR", "N", "boolean", nil, "false", ""},
		{"VARCHAR2 with CRLF", "NCHAR", "a\r\nb, \"c\"", "", nil, "\"a\nb, \"\"c\"\"\"", ""},
		{"DATE", "DATE", goraDate(t, time.Date(2024, 2, 29, 13, 14, 15, 0, time.UTC)), "", nil, "2024-02-29T13:14:15.000Z", ""},
		{"DATE into a date field", "DATE", goraDate(t, time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)), "date", berlin, "2024-02-29", ""},
		{"DATE in Berlin", "DATE", goraDate(t, time.Date(2024, 7, 1, 0, 30, 0, 0, time.UTC)), "", berlin, "2024-06-30T22:30:00.000Z", ""},
		// go-ora labels DATE values with the server's zone when the session
		// zone is not UTC; the wall clock is what counts.
		{"DATE labelled with the server zone", "DATE", time.Date(2024, 7, 1, 0, 30, 0, 0, plus5), "", nil, "2024-07-01T00:30:00.000Z", ""},
		{"TIMESTAMP truncated to ms", "TimeStampDTY", goraTimestamp(t, time.Date(2024, 1, 2, 3, 4, 5, 123_999_999, time.UTC), false), "", nil, "2024-01-02T03:04:05.123Z", ""},
		{"TIMESTAMP WITH TIME ZONE", "TimeStampTZ_DTY", goraTimestamp(t, time.Date(2024, 1, 2, 3, 4, 5, 0, plus5), true), "", berlin, "2024-01-01T22:04:05.000Z", ""},
		{"TIMESTAMP WITH TIME ZONE into a date field", "TimeStampTZ_DTY", goraTimestamp(t, time.Date(2024, 1, 2, 3, 4, 5, 0, plus5), true), "date", berlin, "2024-01-01", ""},
		{"TIMESTAMP WITH LOCAL TIME ZONE", "TimeStampLTZ_DTY", time.Date(2024, 1, 2, 3, 4, 5, 0, plus5), "", nil, "2024-01-01T22:04:05.000Z", ""},
		{"BINARY_FLOAT", "IBFloat", goraBinaryFloat(0.1), "", nil, "0.1", ""},
		{"BINARY_DOUBLE", "IBDouble", 1e-7, "", nil, "0.0000001", ""},
		{"BINARY_DOUBLE NaN", "IBDouble", math.NaN(), "", nil, "", "NaN is not a number"},
		{"CLOB whole", "OCIClobLocator", strings.Repeat("é", 131_072), "", nil, strings.Repeat("é", 131_072), ""},
		{"CLOB over the field limit", "OCIClobLocator", strings.Repeat("x", 131_073), "", nil, "", "131073 characters, more than the field limit of 131072"},
		{"RAW", "RAW", []byte{0xde, 0xad}, "", nil, "", "binary"},
		{"BLOB", "OCIBlobLocator", []byte{1}, "", nil, "", "binary"},
		{"BOOLEAN (23ai)", "TNSType(252)", true, "", nil, "true", ""},
		{"ROWID", "ROWID", "AAAR3sAAEAAAACXAAA", "", nil, "AAAR3sAAEAAAACXAAA", ""},
		{"INTERVAL DAY TO SECOND", "IntervalDS_DTY", converters.ConvertIntervalDS_DTY([]byte{0x80, 0, 0, 1, 0x3c + 2, 0x3c + 3, 0x3c + 4, 0x80, 0, 0, 0}), "", nil, "", ""},
	}
	// go-ora's interval text is passed through as it is.
	for i := range cases {
		if cases[i].name == "INTERVAL DAY TO SECOND" {
			cases[i].want = cases[i].v.(string)
		}
	}
	runOracleCases(t, cases)
	var v value
	if err := oracleValue(go_ora.BFile{}, &v); err == nil || !strings.Contains(err.Error(), "TO_CHAR") {
		t.Errorf("BFile: err = %v", err)
	}
}

func TestOracleURL(t *testing.T) {
	cases := []struct {
		name    string
		conn    airflow.Connection
		servers string // host:port list
		service string
		sid     string
		schema  string
		prefch  int
		wantErr string
	}{
		{name: "service_name", conn: airflow.Connection{Host: "db1", Port: 1522, Login: "scott", Password: "t@ger/:?", Schema: "SALES",
			Extra: map[string]any{"service_name": "ORCLPDB1"}}, servers: "db1:1522", service: "ORCLPDB1", schema: "SALES", prefch: defaultPrefetchRows},
		{name: "sid", conn: airflow.Connection{Host: "db1", Login: "scott", Password: "x", Extra: map[string]any{"sid": "ORCL", "prefetch_rows": "2000"}},
			servers: "db1:1521", sid: "ORCL", prefch: 2000},
		{name: "both sid and service: dsn from host", conn: airflow.Connection{Host: "db1", Port: 1600, Login: "u", Extra: map[string]any{"sid": "A", "service_name": "B"}},
			servers: "db1:1600", service: "B", schema: "", prefch: defaultPrefetchRows},
		{name: "easy connect dsn", conn: airflow.Connection{Login: "u", Extra: map[string]any{"dsn": "//dbhost.example.com:1555/PDB1", "lob_fetch": "stream"}},
			servers: "dbhost.example.com:1555", service: "PDB1", prefch: defaultPrefetchRows},
		{name: "TNS descriptor", conn: airflow.Connection{Login: "u", Extra: map[string]any{
			"dsn": "(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=10.0.0.5)(PORT=1599))(CONNECT_DATA=(SERVICE_NAME=PROD)))"}},
			servers: "10.0.0.5:1599", service: "PROD", prefch: defaultPrefetchRows},
		// Airflow's provider (deprecated, still done): without service_name
		// and sid, the schema is the service name; it is then no current schema.
		{name: "schema as the service name", conn: airflow.Connection{Host: "h.example.com", Login: "u", Schema: "HR"},
			servers: "h.example.com:1521", service: "HR", prefch: defaultPrefetchRows},
		{name: "tns alias", conn: airflow.Connection{Login: "u", Extra: map[string]any{"dsn": "PRODDB"}}, wantErr: "tnsnames.ora alias"},
		{name: "tns alias as host", conn: airflow.Connection{Host: "PRODDB", Login: "u"}, wantErr: "tnsnames.ora alias"},
		{name: "host and port without service", conn: airflow.Connection{Host: "erp-db", Port: 1521, Login: "u"},
			wantErr: "no service name or SID for erp-db:1521: put the service name in the URI's path (oracle://user:pass@erp-db:1521/SERVICE)"},
		{name: "sid with a schema", conn: airflow.Connection{Host: "erp-db", Login: "u", Schema: "HR",
			Extra: map[string]any{"sid": "ERP"}}, servers: "erp-db:1521", sid: "ERP", prefch: defaultPrefetchRows},
		{name: "no login", conn: airflow.Connection{Host: "h", Extra: map[string]any{"service_name": "X"}}, wantErr: "no login"},
		{name: "no address", conn: airflow.Connection{Login: "u"}, wantErr: "no database address"},
		{name: "bad prefetch", conn: airflow.Connection{Host: "h", Login: "u", Extra: map[string]any{"service_name": "X", "prefetch_rows": "lots"}}, wantErr: "prefetch_rows"},
		{name: "bad lob_fetch", conn: airflow.Connection{Host: "h", Login: "u", Extra: map[string]any{"service_name": "X", "lob_fetch": "maybe"}}, wantErr: "lob_fetch"},
		{name: "thick mode only", conn: airflow.Connection{Host: "h", Login: "u", Extra: map[string]any{"service_name": "X", "mode": "sysasm"}}, wantErr: "sysasm"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := oracleURL(c.conn)
			if c.wantErr != "" {
				wantAll(t, err, c.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := configurations.ParseConfig(st.url)
			if err != nil {
				t.Fatalf("go-ora cannot parse %s: %v", st.url, err)
			}
			var servers []string
			for _, s := range cfg.Servers {
				servers = append(servers, fmt.Sprintf("%s:%d", s.Addr, s.Port))
			}
			if strings.Join(servers, ",") != c.servers || cfg.ServiceName != c.service || cfg.SID != c.sid ||
				cfg.UserID != c.conn.Login || cfg.Password != c.conn.Password || cfg.PrefetchRows != c.prefch || st.currentSchema != c.schema {
				t.Errorf("url %s parses to servers %v service %q sid %q user %q prefetch %d; schema %q", st.url, servers, cfg.ServiceName, cfg.SID, cfg.UserID, cfg.PrefetchRows, st.currentSchema)
			}
			if v, _ := extraString(c.conn, "lob_fetch"); v == "stream" && cfg.Lob != configurations.STREAM {
				t.Errorf("lob_fetch=stream not applied")
			}
		})
	}
}

// TestOracleReadmeConnections: the README's and the usual Airflow forms of an
// Oracle connection, as AIRFLOW_CONN_* values, reach the right descriptor.
func TestOracleReadmeConnections(t *testing.T) {
	cases := []struct {
		name, value, servers, service, sid, schema string
	}{
		{"README URI: service name from the path", "oracle://user:pass@erp-db:1521/ERP", "erp-db:1521", "ERP", "", ""},
		{"URI with service_name and schema", "oracle://user:pass@erp-db:1521/HR?service_name=ERP", "erp-db:1521", "ERP", "", "HR"},
		{"URI with sid", "oracle://user:pass@erp-db/?sid=ORCL", "erp-db:1521", "", "ORCL", ""},
		{"JSON with schema", `{"conn_type": "oracle", "host": "erp-db", "port": 1521, "login": "user", "password": "pass", "schema": "ERP"}`,
			"erp-db:1521", "ERP", "", ""},
		{"JSON with a full descriptor in extra dsn", `{"conn_type": "oracle", "login": "user", "password": "pass", "extra": {"dsn":
			"(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=erp-db)(PORT=1530))(CONNECT_DATA=(SERVICE_NAME=ERP.acme)))"}}`,
			"erp-db:1530", "ERP.acme", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := airflow.ParseConnection("oracle_default", c.value)
			if err != nil {
				t.Fatal(err)
			}
			st, err := oracleURL(conn)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := configurations.ParseConfig(st.url)
			if err != nil {
				t.Fatal(err)
			}
			var servers []string
			for _, s := range cfg.Servers {
				servers = append(servers, fmt.Sprintf("%s:%d", s.Addr, s.Port))
			}
			if strings.Join(servers, ",") != c.servers || cfg.ServiceName != c.service || cfg.SID != c.sid || st.currentSchema != c.schema || cfg.UserID != "user" {
				t.Errorf("%s parses to servers %v service %q sid %q user %q, current schema %q", c.value, servers, cfg.ServiceName, cfg.SID, cfg.UserID, st.currentSchema)
			}
		})
	}
}

// fakeOracle is a database/sql driver answering the way go-ora does: the same
// Go value types and the same DatabaseTypeName strings. It records every
// statement so the tests can check the Oracle SQL text.
type fakeOracle struct {
	mu     sync.Mutex
	cols   []string // column names
	types  []string // go-ora type names
	rows   [][]driver.Value
	answer func(q string, args []driver.NamedValue, rows [][]driver.Value) [][]driver.Value
	// describeErr, when set, is the answer to the describe query (what
	// go-ora returns when Oracle refuses to parse it).
	describeErr error
	queries     []string
	args        [][]driver.NamedValue
}

var (
	fakeOracles   sync.Map // dsn -> *fakeOracle
	fakeOracleSeq atomic.Int64
)

func init() { sql.Register("sfm-fake-oracle", fakeOracleDriver{}) }

type fakeOracleDriver struct{}

func (fakeOracleDriver) Open(dsn string) (driver.Conn, error) {
	f, ok := fakeOracles.Load(dsn)
	if !ok {
		return nil, errors.New("unknown fake " + dsn)
	}
	return &fakeOracleConn{f: f.(*fakeOracle)}, nil
}

type fakeOracleConn struct{ f *fakeOracle }

func (c *fakeOracleConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not used") }
func (c *fakeOracleConn) Close() error                        { return nil }
func (c *fakeOracleConn) Begin() (driver.Tx, error)           { return nil, errors.New("not used") }
func (c *fakeOracleConn) Ping(context.Context) error          { return nil }
func (c *fakeOracleConn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.queries = append(c.f.queries, q)
	c.f.args = append(c.f.args, args)
	return driver.RowsAffected(0), nil
}

func (c *fakeOracleConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.queries = append(c.f.queries, q)
	c.f.args = append(c.f.args, args)
	if strings.HasSuffix(q, " WHERE 1 = 0") {
		if c.f.describeErr != nil {
			return nil, c.f.describeErr
		}
		return &fakeOracleRows{f: c.f, names: c.f.cols, types: c.f.types}, nil
	}
	// The select list is quoted column names: answer those columns.
	list := q[len("SELECT "):strings.Index(q, " FROM ")]
	var idx []int
	for _, n := range strings.Split(list, ", ") {
		// `"NAME"` or `CAST("NAME" AS ...) "NAME"`: the last quoted name.
		n = strings.TrimSuffix(n, `"`)
		n = n[strings.LastIndex(n, `"`)+1:]
		for i, cn := range c.f.cols {
			if cn == n {
				idx = append(idx, i)
			}
		}
	}
	rows := c.f.rows
	if c.f.answer != nil {
		rows = c.f.answer(q, args, rows)
	}
	r := &fakeOracleRows{f: c.f}
	for _, i := range idx {
		r.names = append(r.names, c.f.cols[i])
		r.types = append(r.types, c.f.types[i])
	}
	for _, row := range rows {
		var out []driver.Value
		for _, i := range idx {
			out = append(out, row[i])
		}
		r.data = append(r.data, out)
	}
	return r, nil
}

type fakeOracleRows struct {
	f     *fakeOracle
	names []string
	types []string
	data  [][]driver.Value
}

func (r *fakeOracleRows) Columns() []string                       { return r.names }
func (r *fakeOracleRows) ColumnTypeDatabaseTypeName(i int) string { return r.types[i] }
func (r *fakeOracleRows) Close() error                            { return nil }
func (r *fakeOracleRows) Next(dest []driver.Value) error {
	if len(r.data) == 0 {
		return io.EOF
	}
	copy(dest, r.data[0])
	r.data = r.data[1:]
	return nil
}

// newFakeOracleSource opens a Source whose engine is the Oracle engine over f.
func newFakeOracleSource(t *testing.T, f *fakeOracle, schema string) *Source {
	t.Helper()
	dsn := fmt.Sprintf("fake%d", fakeOracleSeq.Add(1))
	fakeOracles.Store(dsn, f)
	db, err := sql.Open("sfm-fake-oracle", dsn)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newOracleEngine(t.Context(), db, schema)
	if err != nil {
		t.Fatal(err)
	}
	src := &Source{conn: airflow.Connection{ID: "oracle_fake", Type: "oracle"}, eng: e}
	t.Cleanup(func() { src.Close() })
	return src
}

// TestOracleEngine runs Extract through the Oracle engine and dialect.
func TestOracleEngine(t *testing.T) {
	f := &fakeOracle{
		cols:  []string{"PRODUCT_ID", "NAME", "PRICE", "UPDATED_AT", "NOTES", "PHOTO"},
		types: []string{"NUMBER", "NCHAR", "NUMBER", "TimeStampDTY", "OCIClobLocator", "OCIBlobLocator"},
	}
	for i := 1; i <= 10; i++ {
		var notes driver.Value
		if i%2 == 0 {
			notes = fmt.Sprintf("note %d\r\nline 2", i)
		}
		f.rows = append(f.rows, []driver.Value{
			goraNumber(t, fmt.Sprint(i)), fmt.Sprintf("Product %d", i), goraNumber(t, fmt.Sprintf("%d.05", i*1000)),
			goraTimestamp(t, time.Date(2024, 1, i, 12, 0, 0, 500_000_000, time.UTC), false), notes, nil,
		})
	}
	src := newFakeOracleSource(t, f, "SALES")
	tb := Table{Name: "PRODUCT_PRICE", Query: "SELECT * FROM PRODUCT_PRICE;", OrderBy: []string{"product_id"}, NullAs: NullClear,
		Fields: []Field{{Column: "product_id", Name: "External_Id__c"}, {Column: "NAME", Name: "Name"}, {Column: "PRICE", Name: "Price__c"},
			{Column: "UPDATED_AT", Name: "Last_Changed__c"}, {Column: "NOTES", Name: "Description"}}}
	res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 4, Start: Position{BatchIndex: 1}})
	if err != nil {
		t.Fatal(err)
	}
	wantQueries := []string{
		oracleSessionSQL,
		"ALTER SESSION SET CURRENT_SCHEMA = SALES",
		"SELECT * FROM (SELECT * FROM PRODUCT_PRICE\n) sfm_q WHERE 1 = 0",
		`SELECT "PRODUCT_ID", "NAME", "PRICE", "UPDATED_AT", "NOTES" FROM (SELECT * FROM PRODUCT_PRICE` + "\n" + `) sfm_q ORDER BY "PRODUCT_ID"`,
	}
	if diff := cmp.Diff(wantQueries, f.queries); diff != "" {
		t.Errorf("SQL (-want +got):\n%s", diff)
	}
	if len(res.Batches) != 3 || res.Batches[2].Rows != 2 || res.Batches[1].LastKey[0] != "8" {
		t.Fatalf("batches %+v", res.Batches)
	}
	got := readCSV(t, res.Batches[0].Path)
	want := [][]string{
		{"External_Id__c", "Name", "Price__c", "Last_Changed__c", "Description"},
		{"1", "Product 1", "1000.05", "2024-01-01T12:00:00.500Z", "#N/A"},
		{"2", "Product 2", "2000.05", "2024-01-02T12:00:00.500Z", "note 2\nline 2"},
		{"3", "Product 3", "3000.05", "2024-01-03T12:00:00.500Z", "#N/A"},
		{"4", "Product 4", "4000.05", "2024-01-04T12:00:00.500Z", "note 4\nline 2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	t.Run("offset", func(t *testing.T) {
		f.queries = nil
		f.answer = func(q string, _ []driver.NamedValue, rows [][]driver.Value) [][]driver.Value { return rows[4:] }
		defer func() { f.answer = nil }()
		res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 4, Start: Position{BatchIndex: 2, Row: 4}})
		if err != nil {
			t.Fatal(err)
		}
		if q := f.queries[len(f.queries)-1]; !strings.HasSuffix(q, `ORDER BY "PRODUCT_ID" OFFSET 4 ROWS`) {
			t.Errorf("query %s", q)
		}
		if res.Batches[0].Index != 2 || res.Batches[0].FirstRow != 4 {
			t.Errorf("batches %+v", res.Batches)
		}
	})

	t.Run("keyset on NUMBER and TIMESTAMP", func(t *testing.T) {
		f.queries, f.args = nil, nil
		f.answer = func(q string, _ []driver.NamedValue, rows [][]driver.Value) [][]driver.Value { return rows[4:] }
		defer func() { f.answer = nil }()
		tb2 := tb
		tb2.OrderBy = []string{"UPDATED_AT", "PRODUCT_ID"}
		after := []string{"2024-01-04 12:00:00.500000000", "4"}
		_, err := src.Extract(t.Context(), tb2, Options{Dir: t.TempDir(), BatchSize: 4, Start: Position{BatchIndex: 2, Row: 4, AfterKey: after}})
		if err != nil {
			t.Fatal(err)
		}
		q := f.queries[len(f.queries)-1]
		wantWhere := `WHERE ("UPDATED_AT" > TO_TIMESTAMP(:1, 'YYYY-MM-DD HH24:MI:SS.FF9') OR ("UPDATED_AT" = TO_TIMESTAMP(:2, 'YYYY-MM-DD HH24:MI:SS.FF9') AND "PRODUCT_ID" > :3)) ORDER BY "UPDATED_AT", "PRODUCT_ID"`
		if !strings.Contains(q, wantWhere) || strings.Contains(q, "OFFSET") {
			t.Errorf("query %s\nwant %s", q, wantWhere)
		}
		var args []any
		for _, a := range f.args[len(f.args)-1] {
			args = append(args, a.Value)
		}
		if diff := cmp.Diff([]any{after[0], after[0], "4"}, args); diff != "" {
			t.Errorf("args (-want +got):\n%s", diff)
		}
	})

	t.Run("binary column", func(t *testing.T) {
		f.rows[2][5] = []byte{0xff}
		defer func() { f.rows[2][5] = nil }()
		tb2 := tb
		tb2.Fields = append(append([]Field(nil), tb.Fields...), Field{Column: "PHOTO", Name: "Photo__c"})
		_, err := src.Extract(t.Context(), tb2, Options{Dir: t.TempDir(), BatchSize: 4})
		wantAll(t, err, "row 2 (PRODUCT_ID=3)", "PHOTO (BLOB)", "Photo__c", "binary", "fix:")
	})
}

var oraTableSeq atomic.Int64

// oracleHarness runs the shared suite against a real Oracle database.
func oracleHarness(t *testing.T) *engineHarness {
	t.Helper()
	conn, err := airflow.LookupConnection(os.Getenv, "oracle_test")
	if err != nil {
		t.Skipf("Oracle suite skipped: %v (no Oracle server can run on this machine; to run it, point "+
			"AIRFLOW_CONN_ORACLE_TEST at a scratch schema, e.g. oracle://scott:tiger@db.example.com:1521/?service_name=FREEPDB1)", err)
	}
	st, err := oracleURL(conn)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("oracle", st.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	setup, err := db.Conn(t.Context())
	if err != nil {
		t.Fatalf("connect to %s: %v", conn, err)
	}
	t.Cleanup(func() { setup.Close() })
	for _, s := range []string{
		"ALTER SESSION SET NLS_DATE_FORMAT = 'YYYY-MM-DD HH24:MI:SS'",
		"ALTER SESSION SET NLS_TIMESTAMP_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF'",
		"ALTER SESSION SET NLS_TIMESTAMP_TZ_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF TZH:TZM'",
		"ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'",
	} {
		if _, err := setup.ExecContext(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return &engineHarness{
		name: "oracle",
		conn: conn,
		exec: func(t *testing.T, stmts ...string) {
			t.Helper()
			for _, s := range stmts {
				if _, err := setup.ExecContext(t.Context(), oracleBigLiterals(s)); err != nil {
					t.Fatalf("%.200s: %v", s, err)
				}
			}
		},
		types: map[string]string{
			"int": "NUMBER(19)", "text": "VARCHAR2(4000)", "bigtext": "CLOB", "float": "BINARY_DOUBLE", "bool": "NUMBER(1)",
			"date": "DATE", "timestamp": "TIMESTAMP(6)", "timestamptz": "TIMESTAMP WITH TIME ZONE", "binary": "RAW(16)",
			"decimal": "NUMBER(18,4)",
		},
		boolLit: func(b bool) string { return map[bool]string{true: "1", false: "0"}[b] },
		decimalOut: func(lit string) string { // NUMBER keeps no trailing zeros
			if strings.Contains(lit, ".") {
				lit = strings.TrimRight(strings.TrimRight(lit, "0"), ".")
			}
			return lit
		},
		binLit: func() string { return "HEXTORAW('DEADBEEF')" },
		table: func(t *testing.T) string {
			name := fmt.Sprintf("SFM_T%d_%d", os.Getpid(), oraTableSeq.Add(1))
			t.Cleanup(func() {
				_, _ = setup.ExecContext(context.Background(), "DROP TABLE "+name+" PURGE") // best effort
			})
			return name
		},
	}
}

// oracleBigLiterals rewrites string literals longer than Oracle's 4000-byte
// limit into TO_CLOB concatenations.
func oracleBigLiterals(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "'")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + 1
		for j < len(s) {
			if s[j] == '\'' && (j+1 >= len(s) || s[j+1] != '\'') {
				break
			}
			if s[j] == '\'' {
				j++
			}
			j++
		}
		lit := s[i : j+1]
		b.WriteString(s[:i])
		if len(lit) > 3000 {
			body := lit[1 : len(lit)-1]
			var parts []string
			for len(body) > 0 {
				n := min(2000, len(body))
				for n < len(body) && body[n-1] == '\'' { // never split a doubled quote
					n++
				}
				parts = append(parts, "TO_CLOB('"+body[:n]+"')")
				body = body[n:]
			}
			lit = strings.Join(parts, " || ")
		}
		b.WriteString(lit)
		s = s[j+1:]
	}
}

func TestOracle(t *testing.T) {
	runSuite(t, oracleHarness(t))
}

// TestOracleQueryError: Oracle's parse errors (go-ora's *network.OracleError
// with the server's message) become a *QueryError without go-ora's parse
// position, which counts from the start of the SQL around the query;
// connection and cancel errors do not.
func TestOracleQueryError(t *testing.T) {
	parse := &network.OracleError{ErrCode: 942, ErrMsg: "ORA-00942: table or view does not exist\n"}
	f := &fakeOracle{cols: []string{"ID"}, types: []string{"NUMBER"}, describeErr: parse}
	src := newFakeOracleSource(t, f, "")
	_, err := src.Extract(t.Context(), Table{Name: "P", Query: "SELECT ID FROM ERP.PRODUKT", OrderBy: []string{"ID"},
		Fields: []Field{{Column: "ID", Name: "External_Id__c"}}}, Options{Dir: t.TempDir(), BatchSize: 10})
	var qe *QueryError
	if !errors.As(err, &qe) || qe.Engine != "oracle" || qe.Message != "ORA-00942: table or view does not exist" || !qe.ConfigError() {
		t.Fatalf("err = %v, want a *QueryError with Oracle's message", err)
	}
	wantAll(t, err, "tables.P.query", "SELECT ID FROM ERP.PRODUKT")
	if strings.Contains(err.Error(), "position") || strings.Contains(err.Error(), "1 = 0") {
		t.Errorf("message shows SQL internals: %v", err)
	}

	e := &oracleEngine{}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&network.OracleError{ErrCode: 904, ErrMsg: `ORA-00904: "NMAE": invalid identifier`}, true},
		{&network.OracleError{ErrCode: 923}, true}, // no server text: go-ora's own, or the code
		{&network.OracleError{ErrCode: 1031, ErrMsg: "ORA-01031: insufficient privileges"}, true},
		{fmt.Errorf("wrapped: %w", &network.OracleError{ErrCode: 918, ErrMsg: "ORA-00918: column ambiguously defined"}), true},
		{&network.OracleError{ErrCode: 3113, ErrMsg: "ORA-03113: end-of-file on communication channel"}, false},
		{&network.OracleError{ErrCode: 1013}, false}, // cancelled
		{&network.OracleError{ErrCode: 12514}, false},
		{errors.New("connection reset by peer"), false},
	} {
		msg, ok := e.refused(c.err)
		if ok != c.want || ok && (msg == "" || strings.Contains(msg, "position")) {
			t.Errorf("refused(%v) = %q, %v; want %v", c.err, msg, ok, c.want)
		}
	}
}
