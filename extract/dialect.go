package extract

import (
	"fmt"
	"strconv"
	"strings"
)

// dialect holds every SQL text difference between the engines, in one place.
//
// The generated query is
//
//	SELECT <columns> FROM (<query>) sfm_q [WHERE <keyset>] ORDER BY <order_by> [<offset>]
//
// (FROM <table> for Table.From). Where to start:
//
//   - With Position.AfterKey (the last key of the previous file) the query
//     starts right after that key: keyset pagination. With an index on the
//     order_by columns the engine seeks there directly, reading nothing
//     before it. All three engines use it.
//   - Without a key it skips Position.Row rows with the engine's own offset:
//     PostgreSQL "OFFSET n" and Oracle (12c+) "OFFSET n ROWS" skip rows
//     inside the server, so nothing before the start crosses the network;
//     SQLite "LIMIT -1 OFFSET n" steps over them inside the library, which
//     is in-process and cheap. Either way the engine still walks the rows
//     it skips, so keyset is preferred whenever the key is known.
//
// Keyset comparison: PostgreSQL and SQLite (3.15+) compare row values,
// (k1, k2) > (v1, v2); Oracle has no row-value ordering, so it gets the
// expanded form k1 > v1 OR (k1 = v1 AND k2 > v2).
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
	dialectOracle
)

func (d dialect) String() string {
	switch d {
	case dialectPostgres:
		return "postgres"
	case dialectOracle:
		return "oracle"
	}
	return "sqlite"
}

// quote makes name a quoted identifier; all three engines use "..." with
// doubled inner quotes. Result column names are used exactly as the
// database reported them, so quoting never changes their case.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// from is the FROM item: the table name as configured (validated by
// Table.validate), or the query as a derived table. Oracle rejects AS before
// a table alias and PostgreSQL before 16 requires an alias, hence " sfm_q".
func (d dialect) from(t *Table) string {
	if t.From != "" {
		return t.From
	}
	// The newline ends a trailing "-- comment" in the query.
	return "(" + trimStatementEnd(t.Query) + "\n) sfm_q"
}

// trimStatementEnd removes a final ';' (and the whitespace and comments
// around it), which would break the derived table. Quotes and comments are
// skipped so that a ';' inside them is left alone.
func trimStatementEnd(q string) string {
	lastSemi, lastCode := -1, -1
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'' || c == '"':
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				return strings.TrimSpace(q) // unbalanced: let the database report it
			}
			lastCode = i + 1 + j
			i = lastCode
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j
			}
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				i = len(q)
			} else {
				i += 2 + j + 1
			}
		case c == ';':
			lastSemi, lastCode = i, i
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			lastCode = i
		}
	}
	if lastSemi >= 0 && lastSemi == lastCode {
		return trimStatementEnd(q[:lastSemi])
	}
	return strings.TrimSpace(q)
}

// param is the placeholder of the i-th (1-based) parameter.
func (d dialect) param(i int) string {
	switch d {
	case dialectPostgres:
		return "$" + strconv.Itoa(i)
	case dialectOracle:
		return ":" + strconv.Itoa(i)
	}
	return "?" + strconv.Itoa(i)
}

// keyArg turns a resume key value (text written by appendKey) back into a
// parameter and the SQL that compares with it.
func (d dialect) keyArg(c *column, text string, n int) (string, any) {
	switch d {
	case dialectPostgres:
		// Text parameters of unknown type: the server infers the column's
		// type and parses the text exactly as it printed it.
		return d.param(n), text
	case dialectOracle:
		switch c.src {
		case srcTimestamp:
			return "TO_TIMESTAMP(" + d.param(n) + ", 'YYYY-MM-DD HH24:MI:SS.FF9')", text
		case srcTimestampTZ:
			return "TO_TIMESTAMP_TZ(" + d.param(n) + ", 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM')", text
		}
		// NUMBER keys compare with the exact decimal text (Oracle converts
		// it to NUMBER); character keys compare as text.
		return d.param(n), text
	}
	// SQLite compares values of different storage classes by class
	// (numbers < text < blobs) unless a column affinity converts the
	// parameter first. A column with TEXT affinity converts anything bound
	// to text, so its keys bind as text; binding a number there would go
	// through SQLite's 15-digit number-to-text conversion. Elsewhere —
	// numeric affinity, or none (expressions, untyped columns), where
	// nothing converts the parameter — a key that looks like a number binds
	// as one (exactly: integers as int64, floats from their shortest
	// round-trip text) and anything else as text. appendKey never reports
	// a text value that looks like a number as an exact key for such
	// columns, so a number-looking key is always a number.
	if c.textAffinity {
		return d.param(n), text
	}
	if arg, ok := sqliteNumberArg(text); ok {
		return d.param(n), arg
	}
	return d.param(n), text
}

// sqliteNumberArg reads text written by appendKey for an SQLite number: an
// int64 in decimal or a float in shortest round-trip form.
func sqliteNumberArg(text string) (any, bool) {
	if i, err := strconv.ParseInt(text, 10, 64); err == nil && strconv.FormatInt(i, 10) == text {
		return i, true
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil && strconv.FormatFloat(f, 'g', -1, 64) == text {
		return f, true
	}
	return nil, false
}

// selectCol is a column of the extraction query's select list.
//
// Oracle BINARY_FLOAT columns are selected as BINARY_DOUBLE: go-ora decodes
// BINARY_FLOAT by printing the float32 and truncating its float64 to that
// many decimals, which turns 0.7 into 0.6 and 1.5e-7 into 0
// (converters.ConvertBinaryFloat, v2.8.24; see TestGoOraBinaryFloat). The
// widening is exact, and the value is still written as the shortest
// decimal of the float32 (column.floatBits stays 32).
func (d dialect) selectCol(c *column) string {
	if d == dialectOracle && c.src == srcFloat && c.floatBits == 32 {
		return "CAST(" + quote(c.name) + " AS BINARY_DOUBLE) " + quote(c.name)
	}
	return quote(c.name)
}

// keyCol is an order_by column as the ORDER BY and keyset comparisons use
// it. SQLite compares it with the BINARY collation whatever the column
// declares: under NOCASE or RTRIM two keys that differ in bytes ('a', 'A')
// can compare equal, so their order would be arbitrary and a resume after
// one would skip the other, while the uniqueness check (which compares
// bytes) would not notice. For BINARY columns, the default, an index on the
// key still serves the ORDER BY. PostgreSQL keys are checked for
// nondeterministic collations instead (postgres.go), and Oracle sessions
// compare with NLS_SORT and NLS_COMP set to BINARY (oracle.go).
func (d dialect) keyCol(c *column) string {
	if d == dialectSQLite {
		return quote(c.name) + " COLLATE BINARY"
	}
	return quote(c.name)
}

// offset is the clause that skips n rows.
func (d dialect) offset(n int64) string {
	switch d {
	case dialectPostgres:
		return " OFFSET " + strconv.FormatInt(n, 10)
	case dialectOracle:
		return " OFFSET " + strconv.FormatInt(n, 10) + " ROWS"
	}
	return " LIMIT -1 OFFSET " + strconv.FormatInt(n, 10)
}

// selectSQL builds the extraction query and its parameters.
func (d dialect) selectSQL(from string, p *plan, st Position) (string, []any, error) {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i := range p.sel {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.selectCol(&p.sel[i]))
	}
	b.WriteString(" FROM ")
	b.WriteString(from)
	var args []any
	if len(st.AfterKey) > 0 {
		if len(st.AfterKey) != len(p.keys) {
			return "", nil, fmt.Errorf("resume key has %d values for %d order_by columns", len(st.AfterKey), len(p.keys))
		}
		b.WriteString(" WHERE ")
		if d == dialectOracle || len(p.keys) == 1 {
			// k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...
			n := 0
			if len(p.keys) > 1 {
				b.WriteString("(")
			}
			for i := range p.keys {
				if i > 0 {
					b.WriteString(" OR ")
				}
				if i > 0 {
					b.WriteString("(")
				}
				for j := 0; j <= i; j++ {
					c := &p.sel[p.keys[j]]
					n++
					expr, arg := d.keyArg(c, st.AfterKey[j], n)
					args = append(args, arg)
					if j > 0 {
						b.WriteString(" AND ")
					}
					op := " = "
					if j == i {
						op = " > "
					}
					b.WriteString(d.keyCol(c) + op + expr)
				}
				if i > 0 {
					b.WriteString(")")
				}
			}
			if len(p.keys) > 1 {
				b.WriteString(")")
			}
		} else {
			var lhs, rhs []string
			for j, ki := range p.keys {
				c := &p.sel[ki]
				expr, arg := d.keyArg(c, st.AfterKey[j], j+1)
				lhs = append(lhs, d.keyCol(c))
				rhs = append(rhs, expr)
				args = append(args, arg)
			}
			b.WriteString("(" + strings.Join(lhs, ", ") + ") > (" + strings.Join(rhs, ", ") + ")")
		}
	}
	b.WriteString(" ORDER BY ")
	for i, ki := range p.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.keyCol(&p.sel[ki]))
	}
	if len(st.AfterKey) == 0 && st.Row > 0 {
		b.WriteString(d.offset(st.Row))
	}
	return b.String(), args, nil
}
