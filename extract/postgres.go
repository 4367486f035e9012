package extract

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// PostgreSQL is read with pgx's low-level pgconn in the text result format:
// each value arrives as the server's own text, which for every type we write
// is already (or is cheaply turned into) the Bulk API form — numeric exact,
// dates ISO — so nothing is decoded into Go types and re-encoded. Measured
// against typed database/sql scanning this path is more than 2x faster
// (bench/extract/README.md).
//
// The session is pinned so that text is unambiguous: TimeZone=UTC (every
// timestamptz prints with +00), DateStyle=ISO, IntervalStyle=iso_8601 and
// extra_float_digits=3 (shortest exact float text from PostgreSQL 12 on,
// 17 significant digits before).

type pgEngine struct {
	cfg  *pgconn.Config
	conn *pgconn.PgConn // nil once closed; reconnected when a cancelled query closed it
	tm   *pgtype.Map    // OID -> type name, for messages
}

// pgExtraKeys are the connection extras passed on to the driver, as libpq
// (and Airflow's PostgresHook through psycopg2) reads them.
var pgExtraKeys = []string{
	"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslsni",
	"connect_timeout", "application_name", "options", "target_session_attrs",
	"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
	"service", "passfile",
}

// pgConnString renders an Airflow postgres connection as a libpq keyword/value
// string (values single-quoted, so any character is safe).
func pgConnString(conn airflow.Connection) (string, error) {
	if v, _ := extraString(conn, "iam"); strings.EqualFold(v, "true") {
		return "", errors.New("extra iam=true (AWS IAM authentication) is not supported: set login and password")
	}
	var parts []string
	add := func(k, v string) {
		if v == "" {
			return
		}
		v = strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`)
		parts = append(parts, k+"='"+v+"'")
	}
	add("host", conn.Host)
	if conn.Port != 0 {
		add("port", strconv.Itoa(conn.Port))
	}
	add("user", conn.Login)
	add("password", conn.Password)
	add("dbname", conn.Schema)
	for _, k := range pgExtraKeys {
		if v, ok := extraString(conn, k); ok {
			add(k, v)
		}
	}
	if _, ok := conn.Extra["application_name"]; !ok {
		add("application_name", "sfmigrate")
	}
	return strings.Join(parts, " "), nil
}

func openPostgres(ctx context.Context, conn airflow.Connection) (engine, error) {
	cs, err := pgConnString(conn)
	if err != nil {
		return nil, &SettingsError{Err: err}
	}
	cfg, err := pgconn.ParseConfig(cs)
	if err != nil {
		// pgconn's parse errors can quote the string, password included.
		return nil, errors.New("invalid PostgreSQL connection settings (check host, port and the extras)")
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["DateStyle"] = "ISO, YMD"
	cfg.RuntimeParams["IntervalStyle"] = "iso_8601"
	cfg.RuntimeParams["extra_float_digits"] = "3"
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &pgEngine{cfg: cfg, conn: c, tm: pgtype.NewMap()}, nil
}

// ready returns the session, reconnecting when a cancelled context has
// closed it (pgconn closes the connection when a context ends mid-query).
func (e *pgEngine) ready(ctx context.Context) (*pgconn.PgConn, error) {
	if e.conn == nil {
		return nil, errors.New("source is closed")
	}
	if e.conn.IsClosed() {
		c, err := pgconn.ConnectConfig(ctx, e.cfg)
		if err != nil {
			return nil, fmt.Errorf("reconnect: %w", err)
		}
		e.conn = c
	}
	return e.conn, nil
}

func (e *pgEngine) dialect() dialect { return dialectPostgres }

func (e *pgEngine) close() error {
	if e.conn == nil {
		return nil
	}
	err := e.conn.Close(context.Background()) // terminates the session; nothing to wait for
	e.conn = nil
	return err
}

// pgKind maps a result column's type OID.
func pgKind(oid uint32) (srcKind, int) {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		return srcInt, 0
	case pgtype.NumericOID:
		return srcDecimal, 0
	case pgtype.Float4OID:
		return srcFloat, 32
	case pgtype.Float8OID:
		return srcFloat, 64
	case pgtype.BoolOID:
		return srcBool, 0
	case pgtype.DateOID:
		return srcDate, 0
	case pgtype.TimestampOID:
		return srcTimestamp, 0
	case pgtype.TimestamptzOID:
		return srcTimestampTZ, 0
	case pgtype.ByteaOID:
		return srcBinary, 0
	case 790: // money
		return srcMoney, 0
	}
	return srcText, 0 // text, varchar, bpchar, uuid, json, enums, arrays, ...: their text as is
}

func (e *pgEngine) typeName(oid uint32) string {
	if t, ok := e.tm.TypeForOID(oid); ok {
		return t.Name
	}
	if oid == 790 {
		return "money"
	}
	return "oid " + strconv.FormatUint(uint64(oid), 10)
}

func (e *pgEngine) describe(ctx context.Context, from string) ([]column, error) {
	conn, err := e.ready(ctx)
	if err != nil {
		return nil, err
	}
	// Prepare parses and plans without running the query.
	sd, err := conn.Prepare(ctx, "", "SELECT * FROM "+from, nil)
	if err != nil {
		return nil, err
	}
	cols := make([]column, len(sd.Fields))
	for i, f := range sd.Fields {
		cols[i].name = f.Name
		cols[i].dbType = e.typeName(f.DataTypeOID)
		cols[i].src, cols[i].floatBits = pgKind(f.DataTypeOID)
		cols[i].typeOID = f.DataTypeOID
	}
	return cols, nil
}

// refused: describe only prepares (parse, analyse, plan), so a PostgreSQL
// error there is about the SQL text when its SQLSTATE class says so: 42
// (syntax error or access rule violation: unknown table, column or
// function, insufficient privilege), 0A (feature not supported), 3F
// (invalid schema name) or 22 (a malformed literal, found while planning).
// Connection, resource and shutdown classes (08, 53, 57, ...) are not.
func (e *pgEngine) refused(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) != 5 {
		return "", false
	}
	switch pe.Code[:2] {
	case "42", "0A", "3F", "22":
	default:
		return "", false
	}
	msg := pe.Message + " (SQLSTATE " + pe.Code + ")"
	if pe.Detail != "" {
		msg += "; detail: " + pe.Detail
	}
	if pe.Hint != "" {
		msg += "; hint: " + pe.Hint
	}
	return msg, true
}

// checkKeys refuses order_by columns whose equality is not byte equality.
// The extraction checks that consecutive keys differ by comparing their
// text; PostgreSQL orders and compares by the column's type and collation.
// The two agree for every built-in type and deterministic collation (even
// linguistic ones such as en_US or ICU: PostgreSQL breaks their ties by
// bytes), but not for a nondeterministic collation (PostgreSQL 12+, e.g.
// case-insensitive ICU ones) or the citext type: there 'a' = 'A', so two
// rows that are one key to the database would have an arbitrary order, and
// a resume after 'a' would skip 'A'. Such keys fail here, naming the fix.
func (e *pgEngine) checkKeys(ctx context.Context, from string, keys []column) error {
	conn, err := e.ready(ctx)
	if err != nil {
		return err
	}
	oids := make([]string, len(keys))
	for i := range keys {
		oids[i] = strconv.FormatUint(uint64(keys[i].typeOID), 10)
	}
	res := conn.ExecParams(ctx, "SELECT oid::text, typname::text, (typcollation <> 0)::text FROM pg_type WHERE oid = ANY($1::oid[])",
		[][]byte{[]byte("{" + strings.Join(oids, ",") + "}")}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("read the types of the order_by columns: %w", res.Err)
	}
	typName := map[string]string{}
	collatable := map[string]bool{}
	for _, r := range res.Rows {
		typName[string(r[0])] = string(r[1])
		collatable[string(r[0])] = string(r[2]) == "true"
	}
	// regcollation (to read pg_collation_for's answer) exists from
	// PostgreSQL 13; nondeterministic collations from 12, which is past its
	// end of life.
	checkColl := pgServerMajor(conn) >= 13
	for i := range keys {
		k := &keys[i]
		oid := strconv.FormatUint(uint64(k.typeOID), 10)
		if typName[oid] == "interval" {
			return fmt.Errorf("order_by column %s has type interval, whose equal values can print differently ('1 day' = '24 hours'): "+
				"keys that are one to the database would look different to the uniqueness check; order by another unique column: %w",
				k.name, ErrOrderBy)
		}
		if typName[oid] == "citext" {
			return fmt.Errorf("order_by column %s has type citext, which compares case-insensitively ('a' = 'A'): keys that differ only in case "+
				"would have no stable order and a resume could skip rows; order by %s::text (as a column of the query) or another unique column: %w",
				k.name, quote(k.name), ErrOrderBy)
		}
		if !checkColl || !collatable[oid] {
			continue
		}
		q := "SELECT c.collname::text, c.collisdeterministic::text FROM (SELECT pg_collation_for(sfm_k." + quote(k.name) +
			") AS n FROM (SELECT 1) sfm_one LEFT JOIN (SELECT * FROM " + from + " LIMIT 0) sfm_k ON true) sfm_c JOIN pg_collation c ON c.oid = sfm_c.n::regcollation"
		res := conn.ExecParams(ctx, q, nil, nil, nil, nil).Read()
		if res.Err != nil {
			return fmt.Errorf("read the collation of order_by column %s: %w", k.name, res.Err)
		}
		if len(res.Rows) == 1 && string(res.Rows[0][1]) == "false" {
			return fmt.Errorf("order_by column %s uses the nondeterministic collation %q, under which different texts can compare equal "+
				"(e.g. 'a' = 'A'): such keys would have no stable order and a resume could skip rows; order by a deterministic copy, "+
				"e.g. %s COLLATE \"C\" AS %s in the query: %w",
				k.name, string(res.Rows[0][0]), quote(k.name), quote(k.name+"_key"), ErrOrderBy)
		}
	}
	return nil
}

// pgServerMajor is the server's major version (0 if unknown).
func pgServerMajor(conn *pgconn.PgConn) int {
	v := conn.ParameterStatus("server_version")
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func (e *pgEngine) query(ctx context.Context, sql string, args []any, cols []column) (rowStream, error) {
	conn, err := e.ready(ctx)
	if err != nil {
		return nil, err
	}
	params := make([][]byte, len(args))
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("internal: PostgreSQL key parameter %T", a)
		}
		params[i] = []byte(s)
	}
	// Text parameters of unknown type (OID 0). Results in text, except
	// dates and timestamps in binary: their text output is among the most
	// expensive in the server (the server is the bottleneck of an
	// extraction), and the binary form — days or microseconds since
	// 2000-01-01 — is cheaper to read than the text.
	formats := make([]int16, len(cols))
	binary := make([]bool, len(cols))
	for i := range cols {
		switch cols[i].src {
		case srcDate, srcTimestamp, srcTimestampTZ:
			formats[i], binary[i] = 1, true
		}
	}
	rr := conn.ExecParams(ctx, sql, params, nil, nil, formats)
	if fd := rr.FieldDescriptions(); fd != nil && len(fd) != len(cols) {
		_, _ = rr.Close() // the column count mismatch is the error to report
		return nil, fmt.Errorf("query returns %d columns, expected %d", len(fd), len(cols))
	}
	return &pgRows{conn: conn, ctx: ctx, rr: rr, cols: cols, binary: binary}, nil
}

type pgRows struct {
	cols   []column
	binary []bool // per column: binary result format (dates, timestamps)
	conn   *pgconn.PgConn
	ctx    context.Context
	rr     *pgconn.ResultReader
	done   bool
}

func (r *pgRows) next(dst []value) (bool, error) {
	if r.done {
		return false, nil
	}
	if !r.rr.NextRow() {
		r.done = true
		_, err := r.rr.Close()
		if err != nil && r.ctx.Err() != nil {
			return false, r.ctx.Err()
		}
		return false, err
	}
	vals := r.rr.Values()
	if len(vals) != len(dst) {
		return false, fmt.Errorf("row has %d values, expected %d", len(vals), len(dst))
	}
	for i, b := range vals {
		switch {
		case b == nil:
			dst[i].kind = vNull
		case r.binary[i]:
			if err := pgBinaryTime(b, r.cols[i].src, &dst[i]); err != nil {
				return false, fmt.Errorf("column %s: %w", r.cols[i].name, err)
			}
		default:
			dst[i].kind, dst[i].b = vText, b
		}
	}
	return true, nil
}

// PostgreSQL's epoch for dates and timestamps, 2000-01-01, in days and
// microseconds since the Unix epoch.
const (
	pgEpochDays   = 10957
	pgEpochMicros = pgEpochDays * 86400 * 1_000_000
)

// pgBinaryTime reads the binary form of date (int32 days since 2000-01-01)
// and timestamp / timestamptz (int64 microseconds since 2000-01-01, UTC for
// timestamptz). The infinities become their text, which the formatter
// refuses with its usual message.
func pgBinaryTime(b []byte, src srcKind, dst *value) error {
	switch src {
	case srcDate:
		if len(b) != 4 {
			return fmt.Errorf("binary date of %d bytes", len(b))
		}
		d := int32(binary.BigEndian.Uint32(b))
		switch d {
		case math.MaxInt32:
			dst.kind, dst.b = vText, []byte("infinity")
		case math.MinInt32:
			dst.kind, dst.b = vText, []byte("-infinity")
		default:
			dst.kind, dst.t = vTime, time.Unix((int64(d)+pgEpochDays)*86400, 0).UTC()
		}
	default:
		if len(b) != 8 {
			return fmt.Errorf("binary timestamp of %d bytes", len(b))
		}
		us := int64(binary.BigEndian.Uint64(b))
		switch us {
		case math.MaxInt64:
			dst.kind, dst.b = vText, []byte("infinity")
		case math.MinInt64:
			dst.kind, dst.b = vText, []byte("-infinity")
		default:
			dst.kind, dst.t = vTime, time.UnixMicro(us+pgEpochMicros).UTC()
		}
	}
	return nil
}

func (r *pgRows) close() error {
	if r.done {
		return nil
	}
	r.done = true
	// Closing a result reader mid-stream would read every remaining row;
	// ask the server to cancel the query first so it stops sending.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 10*time.Second)
	defer cancel()
	_ = r.conn.CancelRequest(cctx) // best effort: Close below ends the query either way
	_, _ = r.rr.Close()            // the cancel error ("canceling statement") is expected
	return nil
}

var (
	_ engine    = (*pgEngine)(nil)
	_ rowStream = (*pgRows)(nil)
)
