package extract

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ColumnError reports a mapped column or an order_by column that the
// table's query (or table) does not return. Only a change to the tables
// config or the query helps, so it is a configuration problem.
type ColumnError struct {
	Table   string   // Table.Name
	What    string   // "column" or "order_by column"
	Name    string   // the name as configured
	Columns []string // the result columns the source has
}

func (e *ColumnError) Error() string {
	return fmt.Sprintf("extract %s: %s %q is not a column of the source (columns: %s): fix the tables config or the query",
		e.Table, e.What, e.Name, oneLine(strings.Join(e.Columns, ", "), 400))
}

// ConfigError reports true: the tables config must change (exit code 2).
func (e *ColumnError) ConfigError() bool { return true }

// SettingsError reports a connection whose fields cannot describe a
// database (no service name, a bad extra): found before any network call,
// so only a change to the connection helps (exit code 2).
type SettingsError struct{ Err error }

func (e *SettingsError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *SettingsError) Unwrap() error { return e.Err }

// ConfigError reports true: the connection must change.
func (e *SettingsError) ConfigError() bool { return true }

// ColumnInfo describes the source column behind one mapped field.
type ColumnInfo struct {
	Column string `json:"column"`  // the source column as configured
	Field  string `json:"field"`   // the Salesforce field it is written to
	DBType string `json:"db_type"` // the database's type name ("" when the engine gives none)
	Kind   string `json:"kind"`    // what the column holds: text, integer, decimal, date, ...
	// Problem is set when no value of this column can go into a field of
	// the Field.Type given (a date into a number field, binary anywhere).
	Problem string `json:"problem,omitempty"`
}

// Check validates t against the source without reading a row: the query
// (or table) compiles, every mapped column and every order_by column is
// one of its result columns, the keys pass the engine's checks and each
// column's type can be written into its field's type (Field.Type).
// Problems of the configuration are errors that report ConfigError() true
// (*QueryError, *ColumnError); the type findings are in the ColumnInfo.
func (s *Source) Check(ctx context.Context, t Table) ([]ColumnInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return nil, fmt.Errorf("extract %s: the source %s is closed", t.Name, s.conn.ID)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	_, p, err := s.plan(ctx, &t)
	if err != nil {
		return nil, err
	}
	out := make([]ColumnInfo, len(t.Fields))
	for i, f := range t.Fields {
		c := &p.fields[i]
		out[i] = ColumnInfo{Column: f.Column, Field: f.Name, DBType: c.dbType, Kind: c.src.String()}
		// A SQLite declared type does not bind what a column holds: there
		// only the values can tell (Sample).
		if s.eng.dialect() != dialectSQLite {
			out[i].Problem = typeProblem(c.src, f.Type)
		}
	}
	return out, nil
}

// typeProblem says why no value of a src column can be written into a
// Salesforce field of type sfType ("" when some can). Text and untyped
// columns may hold anything, so only their values can tell (Sample).
func typeProblem(src srcKind, sfType string) string {
	switch src {
	case srcBinary:
		return "binary columns cannot be sent through Bulk API CSV; " + fixBinary
	case srcMoney:
		return "PostgreSQL money is locale-formatted text: cast it to numeric in the query (col::numeric)"
	}
	temporal := src == srcDate || src == srcTimestamp || src == srcTimestampTZ
	numeric := src == srcInt || src == srcDecimal || src == srcFloat
	switch outFor(sfType) {
	case outNumber:
		if temporal {
			return fmt.Sprintf("a %s column cannot go into a %s field", src, sfType)
		}
	case outBool:
		if temporal {
			return fmt.Sprintf("a %s column cannot go into a %s field", src, sfType)
		}
	case outDate, outDateTime:
		if numeric || src == srcBool {
			return fmt.Sprintf("a %s column cannot go into a %s field: convert it to a date in the query", src, sfType)
		}
	}
	return ""
}

// Count returns the number of rows the table's query returns, with
// SELECT COUNT(*) around it (the database reads the rows, nothing is sent
// here).
func (s *Source) Count(ctx context.Context, t Table) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return 0, fmt.Errorf("extract %s: the source %s is closed", t.Name, s.conn.ID)
	}
	if err := t.validate(); err != nil {
		return 0, err
	}
	d := s.eng.dialect()
	rows, err := s.eng.query(ctx, "SELECT COUNT(*) FROM "+d.from(&t), nil, []column{{name: "n", src: srcText}})
	if err != nil {
		return 0, fmt.Errorf("extract %s: count the rows of %s: %w", t.Name, t.what(), err)
	}
	defer rows.close() //nolint:errcheck // read-only; the count already came or failed
	v := make([]value, 1)
	ok, err := rows.next(v)
	if err != nil || !ok {
		return 0, fmt.Errorf("extract %s: count the rows of %s: no answer (%v)", t.Name, t.what(), err)
	}
	switch v[0].kind {
	case vInt:
		return v[0].i, nil
	case vFloat:
		return int64(v[0].f), nil
	case vText:
		n, err := strconv.ParseInt(strings.TrimSpace(string(v[0].b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("extract %s: count of rows %q is not a number", t.Name, v[0].b)
		}
		return n, nil
	}
	return 0, fmt.Errorf("extract %s: count of rows came back as kind %d", t.Name, v[0].kind)
}

// SampleRow is one source row as it would be written.
type SampleRow struct {
	// Key is the row's order_by values.
	Key []string `json:"key"`
	// Values are the CSV cells in Table.Fields order ("" for NULL).
	Values []string `json:"values"`
	// Problems name each value that could not be written, with the fix.
	Problems []string `json:"problems,omitempty"`
}

// Sample converts the first n rows (in order_by order) the way Extract
// would write them, keeping going past values that fail: each failure is
// in the row's Problems. Nothing is written.
func (s *Source) Sample(ctx context.Context, t Table, n int) ([]SampleRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return nil, fmt.Errorf("extract %s: the source %s is closed", t.Name, s.conn.ID)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	d := s.eng.dialect()
	from, p, err := s.plan(ctx, &t)
	if err != nil {
		return nil, err
	}
	q, args, err := d.selectSQL(from, p, Position{})
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", t.Name, err)
	}
	if d == dialectOracle {
		q += " FETCH FIRST " + strconv.Itoa(n) + " ROWS ONLY"
	} else {
		q += " LIMIT " + strconv.Itoa(n)
	}
	rows, err := s.eng.query(ctx, q, args, p.sel)
	if err != nil {
		return nil, fmt.Errorf("extract %s: read the first rows of %s: %w", t.Name, t.what(), err)
	}
	defer rows.close() //nolint:errcheck // read-only sample
	f := newFormatter(t.SourceTimeZone)
	vals := make([]value, len(p.sel))
	var out []SampleRow
	for len(out) < n {
		ok, err := rows.next(vals)
		if err != nil {
			return out, fmt.Errorf("extract %s: read row %d: %w", t.Name, len(out)+1, err)
		}
		if !ok {
			break
		}
		var row SampleRow
		for _, ki := range p.keys {
			k, _ := appendKey(nil, &vals[ki], &p.sel[ki])
			row.Key = append(row.Key, string(k))
		}
		for i := range p.fields {
			c := &p.fields[i]
			v := &vals[p.fieldSrc[i]]
			if v.kind == vNull {
				row.Values = append(row.Values, "")
				continue
			}
			b, err := f.appendValue(nil, v, c)
			if err != nil {
				msg := fmt.Sprintf("column %s -> %s: %s %s", t.Fields[i].Column, c.field, showValue(rawValue(v)), err)
				if vf, ok := err.(*valueFault); ok && vf.fix != "" { //nolint:errorlint // appendValue returns it unwrapped
					msg += ": " + vf.fix
				}
				row.Problems = append(row.Problems, msg)
				row.Values = append(row.Values, "")
				continue
			}
			row.Values = append(row.Values, string(b))
		}
		out = append(out, row)
	}
	return out, nil
}

// rawValue is a value's source form, for a message.
func rawValue(v *value) []byte {
	switch v.kind {
	case vText, vBinary:
		return v.b
	case vInt, vBool:
		return strconv.AppendInt(nil, v.i, 10)
	case vFloat:
		return strconv.AppendFloat(nil, v.f, 'g', -1, 64)
	case vTime:
		return []byte(v.t.String())
	}
	return nil
}
