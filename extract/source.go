package extract

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// Source is an open source database. Open one per connection; Extract calls
// on it run one at a time.
type Source struct {
	conn airflow.Connection // for messages; String() redacts the password
	mu   sync.Mutex         // serialises Extract calls; guards eng
	eng  engine
}

// engine is one database connection, as Extract needs it. Each engine file
// (sqlite.go, postgres.go, oracle.go) implements it; the SQL text differences
// live in dialect.go.
type engine interface {
	dialect() dialect
	// describe returns the result columns of SELECT * FROM <from> with
	// their types, without reading rows.
	describe(ctx context.Context, from string) ([]column, error)
	// query runs the extraction query; cols describe its select list.
	query(ctx context.Context, sql string, args []any, cols []column) (rowStream, error)
	// refused reports whether err, from describe, is the database refusing
	// the SQL text itself (syntax, unknown name, missing privilege) rather
	// than failing to run it (connection, lock, cancel), and returns the
	// database's own message, free of the SQL around the user's query.
	refused(err error) (msg string, ok bool)
	close() error
}

// keyChecker is implemented by engines that check the order_by columns
// beyond what the extraction loop sees (postgres.go): keys must compare
// equal in the database only when their text is equal.
type keyChecker interface {
	checkKeys(ctx context.Context, from string, keys []column) error
}

// rowStream is a running query.
type rowStream interface {
	// next fills dst (one value per selected column) with the next row and
	// reports false at the end. Text in dst may point into the engine's
	// memory and is only valid until the following call.
	next(dst []value) (bool, error)
	close() error
}

// Open connects to the source database of an Airflow connection.
// Supported conn.Type values:
//
//   - "sqlite": the database file is conn.Host (Airflow's form), or
//     conn.Schema when the host is empty (sqlite:////abs/path.db).
//     Opened read-only.
//   - "postgres", "postgresql": host, port, login, password, schema as the
//     database; extras sslmode, sslrootcert, sslcert, sslkey, sslpassword,
//     connect_timeout, application_name, options, target_session_attrs,
//     keepalives*, as libpq reads them.
//   - "oracle": read as Airflow's Oracle provider reads it — extra sid or
//     service_name with host and port (default 1521), else extra dsn (an
//     Easy Connect string or a TNS descriptor) or host[:port][/service_name];
//     schema (with service_name) sets the session's current schema, and
//     without service_name or sid it is the service name
//     (oracle://user:pass@erp-db:1521/ERP reaches service ERP). Extras
//     for the pure-Go driver: prefetch_rows (rows per round trip, default
//     1000; raise it for narrow rows over a slow link) and lob_fetch
//     ("inline", default, or "stream" when inline LOB fetching fails with
//     ORA-03120).
func Open(ctx context.Context, conn airflow.Connection) (*Source, error) {
	var (
		eng engine
		err error
	)
	switch strings.ToLower(conn.Type) {
	case "sqlite":
		eng, err = openSQLite(ctx, conn)
	case "postgres", "postgresql":
		eng, err = openPostgres(ctx, conn)
	case "oracle":
		eng, err = openOracle(ctx, conn)
	case "":
		return nil, fmt.Errorf("extract: connection %s has no type: set conn_type to sqlite, postgres or oracle", conn.ID)
	default:
		return nil, fmt.Errorf("extract: connection %s has type %q: supported source types are sqlite, postgres and oracle", conn.ID, conn.Type)
	}
	if err != nil {
		// SQLite's messages name the database file, which is all of a
		// sqlite connection; the network engines' need not name host,
		// port or database, so their connection is shown (password
		// redacted).
		what := conn.String()
		if strings.EqualFold(conn.Type, "sqlite") {
			what = conn.ID
		}
		return nil, fmt.Errorf("extract: open %s: %w", what, err)
	}
	return &Source{conn: conn, eng: eng}, nil
}

// Close closes the database connection.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return nil
	}
	err := s.eng.close()
	s.eng = nil
	if err != nil {
		return fmt.Errorf("extract: close %s: %w", s.conn, err)
	}
	return nil
}

// Dialect names the source's SQL dialect: "sqlite", "postgres" or "oracle".
func (s *Source) Dialect() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return ""
	}
	return s.eng.dialect().String()
}

// extraString reads a string extra (URI extras are strings, JSON extras may
// be numbers or booleans).
func extraString(conn airflow.Connection, key string) (string, bool) {
	v, ok := conn.Extra[key]
	if !ok || v == nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		if v == float64(int64(v)) {
			return fmt.Sprintf("%d", int64(v)), true
		}
		return fmt.Sprint(v), true
	default:
		return fmt.Sprint(v), true
	}
}
