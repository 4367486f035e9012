package extract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unsafe"

	go_ora "github.com/sijms/go-ora/v2"
	"github.com/sijms/go-ora/v2/network"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// Oracle is read with github.com/sijms/go-ora/v2, a pure-Go implementation
// of Oracle's network protocol (no Oracle client libraries), through
// database/sql on one pinned session. What the driver hands over, per
// column type (see oracleValue and its tests):
//
//	NUMBER, FLOAT                      string, exact decimal without exponent
//	VARCHAR2, CHAR, NCHAR, LONG, CLOB  string (CLOBs whole, inline or streamed)
//	DATE, TIMESTAMP                    time.Time: the wall clock, zone-less
//	TIMESTAMP WITH (LOCAL) TIME ZONE   time.Time: an instant with its zone
//	BINARY_DOUBLE                      float64
//	BINARY_FLOAT                       float64, wrongly rounded: selected as BINARY_DOUBLE instead (dialect.selectCol)
//	INTERVAL, ROWID, UROWID            string (go-ora's text: +01-02, +01 02:03:04.000000)
//	RAW, LONG RAW, BLOB                []byte (refused)
//	BOOLEAN (23ai)                     bool
//
// (parameter.go decodePrimValue and command.go decodePrim in go-ora
// v2.8.24; oracle_types_test.go decodes wire bytes with those functions.)
// One driver limit remains: a NUMBER whose exponent byte is 0x80 (values
// from 1e-130 up to 1e-128) is decoded as 0.
//
// TIMESTAMP WITH TIME ZONE values with a region name cost the driver ~13 µs
// each (a zone database lookup per value); with many rows convert in SQL,
// e.g. SYS_EXTRACT_UTC(col), which arrives as a plain TIMESTAMP in UTC.

// defaultPrefetchRows is go-ora's PREFETCH_ROWS unless the connection says
// otherwise (extra prefetch_rows). The driver's own default of 25 rows makes
// a network round trip per 25 rows, the biggest speed lever
// (dependencies.md); but go-ora holds a whole fetch in memory, inline CLOBs
// included, so the default stays at 1000 rows (a few MB for ordinary rows)
// rather than higher.
const defaultPrefetchRows = 1000

type oracleEngine struct {
	db     *sql.DB
	conn   *sql.Conn // one session: current_schema and the query share it; nil after a cancelled query
	schema string    // current schema to set on each new session
}

// oracleSettings is an Airflow oracle connection turned into a go-ora URL.
type oracleSettings struct {
	url           string
	currentSchema string // ALTER SESSION SET CURRENT_SCHEMA, "" for none
}

var oracleIdentRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_$#]*$`)

// oracleURL reads the connection the way Airflow's Oracle provider
// (OracleHook.get_conn) does:
//
//   - host with extra sid (and no service_name): host:port (default 1521) with that SID;
//   - host with extra service_name (and no sid): host:port/service_name;
//   - otherwise extra dsn, or host[:port][/service_name], as a TNS descriptor
//     "(DESCRIPTION=...)" or an Easy Connect string [//]host[:port][/service];
//     without service_name, the schema is the service name there, so the URI
//     oracle://user:pass@erp-db:1521/ERP reaches service ERP (the provider
//     still does this, with a deprecation warning).
//
// Like the provider, schema switches the session's current schema when
// service_name is set. Extra mode sysdba/sysoper logs in with that
// privilege.
func oracleURL(conn airflow.Connection) (oracleSettings, error) {
	var st oracleSettings
	sid, _ := extraString(conn, "sid")
	service, _ := extraString(conn, "service_name")
	port := conn.Port
	if port == 0 {
		port = 1521
	}
	if conn.Login == "" {
		return st, errors.New("no login: set the connection's login (and password)")
	}
	opts := map[string]string{"PREFETCH_ROWS": strconv.Itoa(defaultPrefetchRows)}
	if v, ok := extraString(conn, "prefetch_rows"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return st, fmt.Errorf("extra prefetch_rows=%q: must be a positive number of rows", v)
		}
		opts["PREFETCH_ROWS"] = strconv.Itoa(n)
	}
	if v, ok := extraString(conn, "lob_fetch"); ok {
		switch strings.ToLower(v) {
		case "inline", "pre":
			opts["LOB FETCH"] = "INLINE"
		case "stream", "post":
			opts["LOB FETCH"] = "STREAM"
		default:
			return st, fmt.Errorf("extra lob_fetch=%q: use inline (default) or stream", v)
		}
	}
	if v, ok := extraString(conn, "mode"); ok {
		switch strings.ToLower(v) {
		case "sysdba":
			opts["DBA PRIVILEGE"] = "SYSDBA"
		case "sysoper":
			opts["DBA PRIVILEGE"] = "SYSOPER"
		case "", "default":
		default:
			return st, fmt.Errorf("extra mode=%q is not supported by the pure-Go driver: use sysdba, sysoper or leave it out", v)
		}
	}
	switch {
	case conn.Host != "" && sid != "" && service == "":
		opts["SID"] = sid
		st.url = go_ora.BuildUrl(conn.Host, port, "", conn.Login, conn.Password, opts)
	case conn.Host != "" && service != "" && sid == "":
		st.url = go_ora.BuildUrl(conn.Host, port, service, conn.Login, conn.Password, opts)
	default:
		dsn, _ := extraString(conn, "dsn")
		if dsn == "" {
			dsn = conn.Host
			if conn.Port != 0 {
				dsn += ":" + strconv.Itoa(conn.Port)
			}
			switch {
			case service != "":
				dsn += "/" + service
			case conn.Schema != "" && conn.Host != "" && !strings.ContainsAny(conn.Host, "/("):
				// Airflow's provider: "Using conn.schema to pass the Oracle
				// Service Name is deprecated", but done.
				dsn += "/" + conn.Schema
			}
		}
		dsn = strings.TrimSpace(dsn)
		switch {
		case dsn == "":
			return st, errors.New("no database address: set host with extra service_name or sid, or extra dsn")
		case strings.HasPrefix(dsn, "("):
			st.url = go_ora.BuildJDBC(conn.Login, conn.Password, dsn, opts)
		default:
			host, p, svc, err := parseEasyConnect(dsn)
			if err != nil {
				return st, err
			}
			st.url = go_ora.BuildUrl(host, p, svc, conn.Login, conn.Password, opts)
		}
	}
	if conn.Schema != "" && service != "" {
		if !oracleIdentRE.MatchString(conn.Schema) {
			return st, fmt.Errorf("schema %q is not an Oracle schema name", conn.Schema)
		}
		st.currentSchema = conn.Schema
	}
	return st, nil
}

// parseEasyConnect reads [//]host[:port][/service_name[:server][/instance]].
// A bare word without '.', ':' or '/' is likely a tnsnames.ora alias, which
// needs Oracle's client configuration: it is refused with the fix.
func parseEasyConnect(s string) (host string, port int, service string, err error) {
	s = strings.TrimPrefix(s, "//")
	whole := s
	if i := strings.Index(s, "/"); i >= 0 {
		s, service = s[:i], s[i+1:]
		if j := strings.IndexAny(service, ":/"); j >= 0 {
			service = service[:j]
		}
	}
	port = 1521
	host = s
	if h, p, e := net.SplitHostPort(s); e == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, "", fmt.Errorf("dsn port %q is not a number", p)
		}
	}
	if host == "" {
		return "", 0, "", errors.New("dsn has no host")
	}
	if service == "" {
		// Only a bare word (no port, no domain, no service) can be an
		// alias; erp-db:1521 is a host that lacks its service name.
		if !strings.ContainsAny(whole, ".:/") && host != "localhost" {
			return "", 0, "", fmt.Errorf("dsn %q looks like a tnsnames.ora alias, which the pure-Go driver cannot resolve: give host:port/service_name or the full (DESCRIPTION=...) descriptor", s)
		}
		return "", 0, "", fmt.Errorf("no service name or SID for %s: put the service name in the URI's path (oracle://user:pass@%s:%d/SERVICE) or the connection's schema, or set extra service_name or sid", whole, host, port)
	}
	return host, port, service, nil
}

func openOracle(ctx context.Context, conn airflow.Connection) (engine, error) {
	st, err := oracleURL(conn)
	if err != nil {
		return nil, &SettingsError{Err: err}
	}
	db, err := sql.Open("oracle", st.url)
	if err != nil {
		return nil, redactOracle(err, conn)
	}
	e, err := newOracleEngine(ctx, db, st.currentSchema)
	if err != nil {
		return nil, redactOracle(err, conn)
	}
	return e, nil
}

// newOracleEngine pins one session of db (closing db on failure).
func newOracleEngine(ctx context.Context, db *sql.DB, currentSchema string) (*oracleEngine, error) {
	e := &oracleEngine{db: db, schema: currentSchema}
	if _, err := e.session(ctx); err != nil {
		_ = db.Close() // the connect error is what matters
		return nil, err
	}
	return e, nil
}

// oracleSessionSQL pins the session settings the extraction depends on,
// whatever the database, a logon trigger or the machine running sfmigrate
// set:
//
//   - NLS_SORT and NLS_COMP BINARY: ORDER BY and the keyset comparison
//     order by bytes. A linguistic NLS_SORT (e.g. GERMAN) with the default
//     NLS_COMP=BINARY makes ORDER BY and ">" disagree, so a resume after a
//     key would skip or repeat rows; with BINARY_CI keys that differ only
//     in case would tie.
//   - NLS_NUMERIC_CHARACTERS '.,': resume keys of NUMBER columns are bound
//     as decimal text with a '.' point.
//   - TIME_ZONE '+00:00': go-ora otherwise sets the session zone to the
//     machine's current UTC offset, so expressions such as
//     CAST(ts AS TIMESTAMP WITH TIME ZONE) or LOCALTIMESTAMP in a query
//     would give different instants on different machines (and around a
//     DST change).
const oracleSessionSQL = "ALTER SESSION SET NLS_SORT = 'BINARY' NLS_COMP = 'BINARY' NLS_NUMERIC_CHARACTERS = '.,' TIME_ZONE = '+00:00'"

// session returns the pinned session, opening a new one when a cancelled
// query has dropped it.
func (e *oracleEngine) session(ctx context.Context) (*sql.Conn, error) {
	if e.db == nil {
		return nil, errors.New("source is closed")
	}
	if e.conn != nil {
		return e.conn, nil
	}
	c, err := e.db.Conn(ctx)
	if err == nil {
		err = c.PingContext(ctx)
	}
	if err == nil {
		_, err = c.ExecContext(ctx, oracleSessionSQL)
		if err != nil {
			err = fmt.Errorf("set up the session (%s): %w", oracleSessionSQL, err)
		}
	}
	if err == nil && e.schema != "" {
		_, err = c.ExecContext(ctx, "ALTER SESSION SET CURRENT_SCHEMA = "+e.schema)
		if err != nil {
			err = fmt.Errorf("set current schema %s (connection schema): %w", e.schema, err)
		}
	}
	if err != nil {
		if c != nil {
			_ = c.Close() // the connect error is what matters
		}
		return nil, err
	}
	e.conn = c
	return c, nil
}

// redactOracle keeps the password out of a driver error that might quote the URL.
func redactOracle(err error, conn airflow.Connection) error {
	if conn.Password == "" || !strings.Contains(err.Error(), conn.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), conn.Password, "***"))
}

func (e *oracleEngine) dialect() dialect { return dialectOracle }

func (e *oracleEngine) close() error {
	if e.db == nil {
		return nil
	}
	var err error
	if e.conn != nil {
		err = e.conn.Close()
	}
	if cerr := e.db.Close(); err == nil {
		err = cerr
	}
	e.db, e.conn = nil, nil
	return err
}

// oracleKind maps go-ora's column type names (its TNSType.String values).
func oracleKind(typeName string) (srcKind, int) {
	switch typeName {
	case "NUMBER", "FLOAT", "VarNum", "UINT", "SB1":
		return srcDecimal, 0
	case "IBFloat", "BFloat":
		return srcFloat, 32
	case "IBDouble", "BDouble":
		return srcFloat, 64
	case "DATE", "TIMESTAMP", "TimeStampDTY", "OCIDate":
		return srcTimestamp, 0
	case "TimeStampTZ", "TimeStampTZ_DTY", "TimeStampLTZ_DTY", "TimeStampeLTZ", "TimeTZ":
		return srcTimestampTZ, 0
	case "RAW", "LongRaw", "VarRaw", "LongVarRaw", "OCIBlobLocator", "OCIFileLocator":
		return srcBinary, 0
	case "TNSType(252)": // BOOLEAN (Oracle 23ai), which go-ora's names table lacks
		return srcBool, 0
	}
	// NCHAR (go-ora's name for VARCHAR2/NVARCHAR2), VARCHAR, CHAR, LONG,
	// OCIClobLocator, ROWID, UROWID, intervals: text.
	return srcText, 0
}

// oracleTypeName renders go-ora's internal type names the way Oracle users
// know them, for messages.
func oracleTypeName(t string) string {
	switch t {
	case "NCHAR":
		return "VARCHAR2"
	case "IBFloat", "BFloat":
		return "BINARY_FLOAT"
	case "IBDouble", "BDouble":
		return "BINARY_DOUBLE"
	case "TimeStampDTY":
		return "TIMESTAMP"
	case "TimeStampTZ", "TimeStampTZ_DTY":
		return "TIMESTAMP WITH TIME ZONE"
	case "TimeStampLTZ_DTY", "TimeStampeLTZ":
		return "TIMESTAMP WITH LOCAL TIME ZONE"
	case "LongRaw":
		return "BLOB or LONG RAW" // go-ora redefines inline BLOBs as LONG RAW
	case "LongVarChar":
		return "CLOB or LONG" // and inline CLOBs as LONG
	case "OCIBlobLocator":
		return "BLOB"
	case "OCIClobLocator":
		return "CLOB"
	case "OCIFileLocator":
		return "BFILE"
	case "TNSType(252)":
		return "BOOLEAN"
	}
	return t
}

// refused: Oracle reports what is wrong with a statement's text while
// parsing it, with codes of the ORA-00900 to ORA-00999 block (invalid
// identifier, missing keyword, table or view does not exist, column
// ambiguously defined, ...), ORA-01031 (insufficient privileges), and a
// few more parse errors: malformed identifiers and strings (ORA-01740,
// 01747, 01756) and set operations whose branches do not match (ORA-01789,
// 01790). Connection and session errors (ORA-03113, ORA-12xxx, ...) are
// not among them. go-ora's message ends with the parse position, which
// counts from the start of the SQL around the user's query: it is left out.
func (e *oracleEngine) refused(err error) (string, bool) {
	var oe *network.OracleError
	if !errors.As(err, &oe) {
		return "", false
	}
	switch c := oe.ErrCode; {
	case c >= 900 && c <= 999, c == 1031, c == 1740, c == 1747, c == 1756, c == 1789, c == 1790:
	default:
		return "", false
	}
	_ = oe.Error() // fills ErrMsg from go-ora's table when the server sent none
	msg := strings.TrimSpace(oe.ErrMsg)
	if msg == "" {
		msg = fmt.Sprintf("ORA-%05d", oe.ErrCode)
	}
	return msg, true
}

func (e *oracleEngine) describe(ctx context.Context, from string) ([]column, error) {
	conn, err := e.session(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, "SELECT * FROM "+from+" WHERE 1 = 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	cols := make([]column, len(cts))
	for i, ct := range cts {
		cols[i].name = ct.Name()
		tn := ct.DatabaseTypeName()
		cols[i].dbType = oracleTypeName(tn)
		cols[i].src, cols[i].floatBits = oracleKind(tn)
	}
	return cols, rows.Err()
}

func (e *oracleEngine) query(ctx context.Context, q string, args []any, cols []column) (rowStream, error) {
	conn, err := e.session(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	names, err := rows.Columns()
	if err == nil && len(names) != len(cols) {
		err = fmt.Errorf("query returns %d columns, expected %d", len(names), len(cols))
	}
	if err != nil {
		_ = rows.Close() // reporting err
		return nil, err
	}
	r := &sqlRows{e: e, ctx: ctx, rows: rows, cols: cols, raw: make([]any, len(cols)), ptrs: make([]any, len(cols))}
	for i := range r.raw {
		r.ptrs[i] = &r.raw[i]
	}
	return r, nil
}

// sqlRows reads a database/sql result (Oracle).
type sqlRows struct {
	e    *oracleEngine
	ctx  context.Context
	rows *sql.Rows
	cols []column
	raw  []any
	ptrs []any
}

func (r *sqlRows) next(dst []value) (bool, error) {
	if !r.rows.Next() {
		return false, r.rows.Err()
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		return false, err
	}
	for i, v := range r.raw {
		if err := oracleValue(v, &dst[i]); err != nil {
			return false, fmt.Errorf("column %s: %w", r.cols[i].name, err)
		}
	}
	return true, nil
}

func (r *sqlRows) close() error {
	err := r.rows.Close()
	if r.ctx.Err() != nil && r.e.conn != nil {
		// A cancelled query can leave the session mid-protocol: drop it,
		// the next extraction opens a fresh one.
		_ = r.e.conn.Close() // the session is being discarded
		r.e.conn = nil
	}
	return err
}

// oracleValue converts one value as go-ora hands it to database/sql.
func oracleValue(v any, dst *value) error {
	switch v := v.(type) {
	case nil:
		dst.kind = vNull
	case string:
		// Viewed, not copied: the formatter only reads it, before the next row.
		dst.kind, dst.b = vText, unsafe.Slice(unsafe.StringData(v), len(v))
	case []byte:
		dst.kind, dst.b = vBinary, v
	case time.Time:
		dst.kind, dst.t = vTime, v
	case float64:
		dst.kind, dst.f = vFloat, v
	case float32:
		dst.kind, dst.f = vFloat, float64(v)
	case int64:
		dst.kind, dst.i = vInt, v
	case int:
		dst.kind, dst.i = vInt, int64(v)
	case bool:
		dst.kind, dst.i = vBool, 0
		if v {
			dst.i = 1
		}
	case uint64:
		if v > math.MaxInt64 {
			dst.kind, dst.b = vText, []byte(strconv.FormatUint(v, 10))
		} else {
			dst.kind, dst.i = vInt, int64(v)
		}
	default:
		return fmt.Errorf("unsupported value type %T from the Oracle driver: convert the column in the query (TO_CHAR)", v)
	}
	return nil
}

var (
	_ engine    = (*oracleEngine)(nil)
	_ rowStream = (*sqlRows)(nil)
)
