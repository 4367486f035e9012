package extract

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file turns one source value into the text the Bulk API accepts
// (salesforce-api.md §4.2) and CSV-quotes it (§4.1). It knows nothing about
// engines: every engine delivers a value (text, integer, float, time, bool or
// bytes) plus a column description saying how its text is to be read.

// valueKind is how an engine delivered a value.
type valueKind uint8

const (
	vNull   valueKind = iota
	vText             // b: the source's text (interpreted through column.src)
	vInt              // i
	vFloat            // f
	vTime             // t (zone-less or an instant, per column.src)
	vBool             // i: 1 true, 0 false
	vBinary           // b: raw bytes (always refused)
)

// value is one source value. b may point into engine-owned memory that is
// only valid until the next row is read.
type value struct {
	kind valueKind
	b    []byte
	i    int64
	f    float64
	t    time.Time
}

// srcKind is what the source column holds, decided once per column from the
// engine's type (PostgreSQL OID, SQLite declared type, Oracle type name).
type srcKind uint8

const (
	srcAuto        srcKind = iota // decide per value from valueKind (SQLite without a telling declared type)
	srcText                       // character data, passed through
	srcInt                        // integer text from the server, passed through
	srcDecimal                    // exact decimal text (numeric, NUMBER): never via float64
	srcFloat                      // binary floating point
	srcBool                       // boolean
	srcDate                       // calendar date, no time of day, no zone
	srcTimestamp                  // date and time without zone: read in Table.SourceTimeZone
	srcTimestampTZ                // an instant (with zone or offset)
	srcBinary                     // bytes: refused
	srcMoney                      // PostgreSQL money: locale-formatted text, refused
)

func (k srcKind) String() string {
	switch k {
	case srcText:
		return "text"
	case srcInt:
		return "integer"
	case srcDecimal:
		return "decimal"
	case srcFloat:
		return "float"
	case srcBool:
		return "boolean"
	case srcDate:
		return "date"
	case srcTimestamp:
		return "timestamp"
	case srcTimestampTZ:
		return "timestamp with time zone"
	case srcBinary:
		return "binary"
	case srcMoney:
		return "money"
	}
	return "any"
}

// outKind is the Bulk API value form written for a column.
type outKind uint8

const (
	outNatural  outKind = iota // the natural form of the source kind
	outNumber                  // plain decimal, '.' point, no exponent
	outBool                    // true / false
	outDate                    // yyyy-MM-dd
	outDateTime                // yyyy-MM-ddTHH:mm:ss.SSSZ in UTC
)

// outFor maps a Salesforce describe field type (Field.Type) to the value form
// it needs. Text-like and unknown types keep the natural form of the source.
func outFor(sfType string) outKind {
	switch strings.ToLower(sfType) {
	case "date":
		return outDate
	case "datetime":
		return outDateTime
	case "boolean":
		return outBool
	case "double", "currency", "percent", "int", "long", "integer":
		return outNumber
	}
	return outNatural
}

// column is one selected result column and how its values are written.
type column struct {
	name      string  // result column name as the database reports it
	dbType    string  // engine type name, for messages
	src       srcKind // what the source holds
	floatBits int     // 32 or 64 for srcFloat
	// numericText is set for SQLite columns without TEXT affinity: their
	// resume keys bind back as numbers when the text looks like one
	// (sqliteNumberArg), so text that does is not an exact key.
	numericText bool
	// textAffinity is set for SQLite columns with TEXT affinity: a resume
	// key always binds back as text.
	textAffinity bool
	typeOID      uint32 // PostgreSQL type OID (the base type for a domain)
	// Set for columns that are written (Fields); key-only columns leave them zero.
	field    string  // Salesforce field API name
	out      outKind // forced value form (Field.Type), outNatural = from src
	maxChars int     // field length limit in characters
	truncate bool    // cut longer text to maxChars (Field.Truncate)
}

// valueFault is a formatting failure without row context; Extract wraps it
// into a *ValueError naming the table, row key, column and value.
type valueFault struct {
	reason string
	fix    string
}

func (e *valueFault) Error() string { return e.reason }

func fault(fix, format string, args ...any) *valueFault {
	return &valueFault{reason: fmt.Sprintf(format, args...), fix: fix}
}

// formatter holds the per-table settings that shape values.
type formatter struct {
	loc *time.Location // zone of zone-less timestamps
	utc bool           // loc is UTC: zone-less timestamps need no conversion
	// truncated counts the values appendValue cut to their field's length
	// (column.truncate); the caller resets it.
	truncated int
}

func newFormatter(loc *time.Location) *formatter {
	if loc == nil {
		loc = time.UTC
	}
	return &formatter{loc: loc, utc: loc == time.UTC || loc.String() == "UTC"}
}

const fixBinary = "leave the column out of fields, or convert it to text in the query " +
	"(PostgreSQL encode(col, 'base64'), Oracle UTL_RAW / DBMS_LOB functions, SQLite hex(col))"

// appendValue appends v formatted and CSV-quoted for column c. v is not NULL.
func (f *formatter) appendValue(dst []byte, v *value, c *column) ([]byte, error) {
	out := c.out
	if out == outNatural {
		out = naturalOut(c.src, v.kind)
	}
	switch out {
	case outNumber:
		return f.appendNumber(dst, v, c)
	case outBool:
		return appendBool(dst, v, c)
	case outDate, outDateTime:
		return f.appendTime(dst, v, c, out == outDate)
	}
	// Natural text form.
	switch v.kind {
	case vText:
		switch c.src {
		case srcBinary:
			return dst, fault(fixBinary, "binary column (%s) cannot be sent through Bulk API CSV", c.dbType)
		case srcMoney:
			return dst, fault("cast it to numeric in the query: col::numeric",
				"PostgreSQL money is locale-formatted text, not a number the Bulk API accepts")
		}
		b := v.b
		if c.truncate {
			var cut bool
			if b, cut = cutText(b, c.maxChars); cut {
				f.truncated++
			}
		}
		return appendText(dst, b, c.maxChars)
	case vBinary:
		return dst, fault(fixBinary, "binary value (%s) cannot be sent through Bulk API CSV", c.dbType)
	}
	// Non-text values in a text-typed column: integers and floats print as
	// numbers, booleans as true/false.
	return f.appendNumber(dst, v, c)
}

// naturalOut is the value form of a source kind when Field.Type does not say.
func naturalOut(src srcKind, k valueKind) outKind {
	switch src {
	case srcInt, srcDecimal, srcFloat:
		return outNumber
	case srcBool:
		return outBool
	case srcDate:
		return outDate
	case srcTimestamp, srcTimestampTZ:
		return outDateTime
	}
	switch k {
	case vInt, vFloat:
		return outNumber
	case vBool:
		return outBool
	case vTime:
		return outDateTime
	}
	return outNatural
}

// csvClass marks bytes that need attention: 1 = forces quoting, 2 =
// non-ASCII, 4 = NUL.
var csvClass = func() (t [256]uint8) {
	t[','], t['"'], t['\n'], t['\r'] = 1, 1, 1, 1
	t[0] = 4
	for i := 0x80; i < 256; i++ {
		t[i] = 2
	}
	return t
}()

var naText = []byte("#N/A")

// appendText appends text as one CSV field: checked for UTF-8 and length,
// quoted when it holds a delimiter, quote, CR or LF (quotes doubled), and with
// CR LF and lone CR turned into LF so that a value never carries a CR into an
// LF job (salesforce-api.md §4.1: a CR inside an LF job trips the line-ending
// check).
//
// Two texts are refused rather than written: a NUL byte (Salesforce cannot
// store it, and it usually means binary data in a text column), and the
// exact text "#N/A" (any case), which Salesforce reads as "set this field to
// null" — the record would lose the value instead of storing it.
func appendText(dst, b []byte, maxChars int) ([]byte, error) {
	class := scanText(b)
	if class&2 != 0 && !utf8.Valid(b) {
		return dst, fault("fix the data or convert it in the query (PostgreSQL convert_from, Oracle CONVERT)",
			"invalid UTF-8 at byte %d", invalidAt(b))
	}
	if class&4 != 0 {
		return dst, fault("remove it in the query (PostgreSQL and SQLite replace(col, char(0), ''), Oracle REPLACE(col, CHR(0)))",
			"NUL byte at byte %d: Salesforce text cannot hold it", bytes.IndexByte(b, 0))
	}
	if len(b) == 4 && b[0] == '#' && bytes.EqualFold(b, naText) {
		return dst, fault("map it to NULL in the query (NULLIF(col, '#N/A')) and set null_as to clear if the field is to be emptied, or change the text",
			"the text #N/A would clear the Salesforce field (Bulk API reads #N/A as null) instead of storing it")
	}
	if maxChars > 0 && len(b) > maxChars {
		n := utf8.RuneCount(b) - strings.Count(string(b), "\r\n")
		if n > maxChars {
			return dst, fault("shorten it in the query (e.g. SUBSTR) or map it to a longer field",
				"value has %d characters, more than the field limit of %d", n, maxChars)
		}
	}
	if class&1 == 0 {
		return append(dst, b...), nil
	}
	dst = append(dst, '"')
	if bytes.IndexByte(b, '\r') < 0 {
		// No CR (most text): copy the runs between quotes whole, each
		// quote doubled.
		for {
			i := bytes.IndexByte(b, '"')
			if i < 0 {
				break
			}
			dst = append(append(dst, b[:i+1]...), '"')
			b = b[i+1:]
		}
		return append(append(dst, b...), '"'), nil
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			dst = append(dst, '"', '"')
		case '\r':
			dst = append(dst, '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), nil
}

// cutText returns b cut to at most maxChars characters, counted as
// appendText counts them (code points, CR LF as one), and whether it cut.
func cutText(b []byte, maxChars int) ([]byte, bool) {
	if maxChars <= 0 || len(b) <= maxChars {
		return b, false // a character takes at least one byte
	}
	n := 0
	for i := 0; i < len(b); n++ {
		if n == maxChars {
			return b[:i], true
		}
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i += 2
			continue
		}
		_, size := utf8.DecodeRune(b[i:])
		i += size
	}
	return b, false
}

// scanText returns the OR of csvClass over b. Most text is plain ASCII
// without delimiters, so it first checks 8 bytes at a time (SWAR: a byte
// equal to c makes (x^c)-0x01.. borrow into its top bit) and only looks at
// single bytes from the first word that may hold something.
func scanText(b []byte) uint8 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	has := func(x, c uint64) uint64 {
		y := x ^ (lo * c)
		return (y - lo) &^ y & hi
	}
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if x&hi != 0 || has(x, ',')|has(x, '"')|has(x, '\n')|has(x, '\r')|has(x, 0) != 0 {
			break
		}
	}
	var class uint8
	for _, c := range b[i:] {
		class |= csvClass[c]
	}
	return class
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// appendNumber writes a plain decimal: integers as they are, floats in their
// shortest exact form, decimal text exactly as the source gave it (an
// exponent is shifted into the digits, never rounded).
func (f *formatter) appendNumber(dst []byte, v *value, c *column) ([]byte, error) {
	switch v.kind {
	case vInt:
		return strconv.AppendInt(dst, v.i, 10), nil
	case vBool:
		if v.i != 0 {
			return append(dst, '1'), nil
		}
		return append(dst, '0'), nil
	case vFloat:
		return appendFloat(dst, v.f, c.floatBits)
	case vText:
		switch c.src {
		case srcInt:
			return append(dst, v.b...), nil // the server's integer text
		case srcBinary:
			return dst, fault(fixBinary, "binary column (%s) cannot be sent through Bulk API CSV", c.dbType)
		case srcBool:
			b, ok := parseBool(v.b)
			if !ok {
				return dst, fault("", "not a boolean")
			}
			if b {
				return append(dst, '1'), nil
			}
			return append(dst, '0'), nil
		}
		return appendDecimal(dst, v.b)
	case vTime:
		return dst, fault("map the column to a date or datetime field", "a date/time value cannot be written as a number")
	case vBinary:
		return dst, fault(fixBinary, "binary value (%s) cannot be sent through Bulk API CSV", c.dbType)
	}
	return dst, fault("", "unsupported value")
}

func appendFloat(dst []byte, x float64, bits int) ([]byte, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return dst, fault("filter it out or replace it in the query (e.g. NULLIF / CASE)",
			"%v is not a number Salesforce accepts", x)
	}
	if x == 0 {
		return append(dst, '0'), nil // also -0
	}
	if bits != 32 {
		bits = 64
	}
	return strconv.AppendFloat(dst, x, 'f', -1, bits), nil
}

// appendDecimal validates decimal text ([+-]digits[.digits][e[+-]digits])
// and appends it without exponent and without a leading '+'. Digits are moved,
// never recomputed, so no precision is lost.
func appendDecimal(dst, s []byte) ([]byte, error) {
	bad := func() ([]byte, error) {
		return dst, fault("convert it to a number in the query, or map it to a text field", "not a decimal number")
	}
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	var frac []byte
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fs:i]
	}
	if len(intPart) == 0 && len(frac) == 0 {
		low := strings.ToLower(string(s))
		if strings.Contains(low, "nan") || strings.Contains(low, "inf") {
			return dst, fault("filter it out or replace it in the query (e.g. NULLIF / CASE)",
				"%s is not a number Salesforce accepts", s)
		}
		return bad()
	}
	if i == len(s) { // no exponent: the common case, copied as is
		if s[0] == '+' || (neg && allZero(intPart) && allZero(frac)) { // "+1" -> "1", "-0.0" -> "0.0"
			s = s[1:]
			neg = false
		}
		if len(frac) == 0 && s[len(s)-1] == '.' { // "5." -> "5"
			s = s[:len(s)-1]
		}
		if len(intPart) == 0 { // ".5" -> "0.5"
			if neg {
				dst = append(dst, '-')
			}
			dst = append(dst, '0')
			return append(dst, s[len(s)-len(frac)-1:]...), nil
		}
		return append(dst, s...), nil
	}
	if s[i] != 'e' && s[i] != 'E' {
		return bad()
	}
	i++
	expNeg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		expNeg = s[i] == '-'
		i++
	}
	if i == len(s) {
		return bad()
	}
	exp := 0
	for ; i < len(s); i++ {
		if !isDigit(s[i]) || exp > 100000 {
			return bad()
		}
		exp = exp*10 + int(s[i]-'0')
	}
	if expNeg {
		exp = -exp
	}
	// digits = intPart+frac with the point after len(intPart)+exp digits.
	digits := make([]byte, 0, len(intPart)+len(frac))
	digits = append(append(digits, intPart...), frac...)
	point := len(intPart) + exp
	// Trim leading zeros (keeping the point position right).
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
		point--
	}
	if len(digits) == 0 {
		return append(dst, '0'), nil
	}
	if neg {
		dst = append(dst, '-')
	}
	switch {
	case point <= 0:
		dst = append(dst, '0', '.')
		for range -point {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	case point >= len(digits):
		dst = append(dst, digits...)
		for range point - len(digits) {
			dst = append(dst, '0')
		}
	default:
		dst = append(dst, digits[:point]...)
		dst = append(dst, '.')
		dst = append(dst, digits[point:]...)
	}
	return dst, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}

// parseBool reads the spellings databases use for booleans.
func parseBool(b []byte) (val, ok bool) {
	switch strings.ToLower(strings.TrimSpace(string(b))) {
	case "t", "true", "1", "y", "yes", "on":
		return true, true
	case "f", "false", "0", "n", "no", "off":
		return false, true
	}
	return false, false
}

func appendBool(dst []byte, v *value, c *column) ([]byte, error) {
	var b bool
	switch v.kind {
	case vBool:
		b = v.i != 0
	case vInt:
		switch v.i {
		case 0:
		case 1:
			b = true
		default:
			return dst, fault("map 0/1 only, or convert in the query (CASE WHEN ... THEN 1 ELSE 0 END)",
				"integer %d is not a boolean (expected 0 or 1)", v.i)
		}
	case vText:
		var ok bool
		if b, ok = parseBool(v.b); !ok {
			return dst, fault("use true/false, t/f, 1/0, y/n or yes/no, or convert it in the query",
				"not a boolean")
		}
	case vFloat:
		switch v.f {
		case 0:
		case 1:
			b = true
		default:
			return dst, fault("map 0/1 only", "number is not a boolean (expected 0 or 1)")
		}
	default:
		return dst, fault("map the column to a field of matching type", "%s value is not a boolean", c.dbType)
	}
	if b {
		return append(dst, "true"...), nil
	}
	return append(dst, "false"...), nil
}

// civil is a calendar date and wall-clock time, with an optional UTC offset.
type civil struct {
	year, month, day int
	hour, min, sec   int
	nsec             int
	hasTime, hasZone bool
	offset           int // seconds east of UTC, when hasZone
}

var errTimeSyntax = errors.New("not a date/time")

// parseCivil reads the date/time text PostgreSQL (DateStyle ISO) and SQLite
// produce: yyyy-mm-dd, optionally followed by [T or space]hh:mm[:ss[.fff...]]
// and a zone Z, ±hh, ±hhmm, ±hh:mm or ±hh:mm:ss.
func parseCivil(s []byte) (civil, error) {
	var c civil
	num := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for _, ch := range s[i : i+n] {
			if !isDigit(ch) {
				return 0, false
			}
			v = v*10 + int(ch-'0')
		}
		return v, true
	}
	var ok1, ok2, ok3 bool
	c.year, ok1 = num(0, 4)
	c.month, ok2 = num(5, 2)
	c.day, ok3 = num(8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return c, errTimeSyntax
	}
	i := 10
	if i < len(s) && (s[i] == 'T' || s[i] == ' ') && i+1 < len(s) && isDigit(s[i+1]) {
		i++
		c.hasTime = true
		c.hour, ok1 = num(i, 2)
		c.min, ok2 = num(i+3, 2)
		if !ok1 || !ok2 || s[i+2] != ':' {
			return c, errTimeSyntax
		}
		i += 5
		if i < len(s) && s[i] == ':' {
			if c.sec, ok1 = num(i+1, 2); !ok1 {
				return c, errTimeSyntax
			}
			i += 3
			if i < len(s) && s[i] == '.' {
				i++
				start := i
				scale := 100000000
				for i < len(s) && isDigit(s[i]) {
					if scale > 0 { // digits past nanoseconds are dropped (truncation)
						c.nsec += int(s[i]-'0') * scale
						scale /= 10
					}
					i++
				}
				if i == start {
					return c, errTimeSyntax
				}
			}
		}
	}
	// Zone.
	if i < len(s) && s[i] == ' ' && i+1 < len(s) && (s[i+1] == '+' || s[i+1] == '-' || s[i+1] == 'Z') {
		i++ // "2024-01-02 10:00:00 +02:00"
	}
	if i < len(s) {
		switch s[i] {
		case 'Z', 'z':
			c.hasZone = true
			i++
		case '+', '-':
			sign := 1
			if s[i] == '-' {
				sign = -1
			}
			i++
			h, ok := num(i, 2)
			if !ok {
				return c, errTimeSyntax
			}
			i += 2
			off := h * 3600
			for _, mult := range []int{60, 1} {
				if i < len(s) && s[i] == ':' {
					i++
				}
				if v, ok := num(i, 2); ok {
					off += v * mult
					i += 2
				} else {
					break
				}
			}
			c.hasZone = true
			c.offset = sign * off
		}
	}
	if i != len(s) {
		return c, errTimeSyntax
	}
	if c.month < 1 || c.month > 12 || c.day < 1 || c.day > daysIn(c.year, c.month) ||
		c.hour > 23 || c.min > 59 || c.sec > 59 {
		return c, errTimeSyntax
	}
	return c, nil
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

const fixTime = "store dates as ISO text (yyyy-mm-dd[ hh:mm:ss[.fff]][+hh:mm]) or convert in the query " +
	"(SQLite datetime(col, 'unixepoch'), PostgreSQL to_timestamp(col))"

// appendTime writes a date (dateOnly) or a UTC datetime.
//
// Zone-less values (DATE, TIMESTAMP WITHOUT TIME ZONE, zone-less text) are
// wall-clock readings: a date keeps its calendar day (no zone shift ever), a
// datetime is read in Table.SourceTimeZone and converted to UTC. Values with
// a zone are instants: a datetime is converted to UTC, a date is the calendar
// day of that instant in SourceTimeZone. Fractions below a millisecond are
// truncated (Salesforce keeps milliseconds).
func (f *formatter) appendTime(dst []byte, v *value, c *column, dateOnly bool) ([]byte, error) {
	var cv civil
	switch v.kind {
	case vText:
		if c.src == srcBinary {
			return dst, fault(fixBinary, "binary column (%s) cannot be sent through Bulk API CSV", c.dbType)
		}
		var err error
		if cv, err = parseCivil(v.b); err != nil {
			low := strings.ToLower(string(v.b))
			switch {
			case strings.Contains(low, "infinity"):
				return dst, fault("filter it out or replace it in the query", "infinite date/time has no Salesforce value")
			case strings.HasSuffix(low, " bc"):
				return dst, fault("filter it out or replace it in the query", "dates before the Common Era have no Salesforce value")
			case yearTooLong(v.b):
				return dst, fault("filter it out or replace it in the query", "year is outside 0000-9999")
			}
			return dst, fault(fixTime, "not a date/time (expected yyyy-mm-dd[ hh:mm:ss[.fff]][zone])")
		}
		if c.src == srcTimestampTZ && !cv.hasZone && cv.hasTime {
			cv.hasZone, cv.offset = true, 0 // e.g. a server that omits +00
		}
	case vTime:
		t := v.t
		zoned := c.src == srcTimestampTZ || (c.src != srcDate && c.src != srcTimestamp && t.Location() != time.UTC)
		if zoned {
			_, off := t.Zone()
			cv.hasZone, cv.offset = true, off
		}
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		cv.year, cv.month, cv.day, cv.hour, cv.min, cv.sec, cv.nsec = y, int(mo), d, h, mi, s, t.Nanosecond()
		cv.hasTime = true
	case vInt, vFloat:
		return dst, fault("convert it in the query to what it is: SQLite datetime(col, 'unixepoch') for Unix seconds, "+
			"datetime(col / 1000, 'unixepoch') for milliseconds, datetime(col) for a Julian day number; PostgreSQL to_timestamp(col)",
			"a number is not a date/time (Unix seconds or milliseconds, a Julian day number? the number alone does not say)")
	case vBinary:
		return dst, fault(fixBinary, "binary value (%s) cannot be sent through Bulk API CSV", c.dbType)
	default:
		return dst, fault("map the column to a field of matching type", "value is not a date/time")
	}

	if dateOnly {
		if cv.hasZone && cv.hasTime {
			t := time.Date(cv.year, time.Month(cv.month), cv.day, cv.hour, cv.min, cv.sec, cv.nsec, time.UTC).
				Add(-time.Duration(cv.offset) * time.Second).In(f.loc)
			y, mo, d := t.Date()
			cv.year, cv.month, cv.day = y, int(mo), d
		}
		if cv.year < 0 || cv.year > 9999 {
			return dst, fault("filter it out or replace it in the query", "year %d is outside 0000-9999", cv.year)
		}
		return appendDateDigits(dst, cv.year, cv.month, cv.day), nil
	}

	switch {
	case cv.hasZone:
		if cv.offset != 0 {
			cv = fromTime(time.Date(cv.year, time.Month(cv.month), cv.day, cv.hour, cv.min, cv.sec, cv.nsec, time.UTC).
				Add(-time.Duration(cv.offset) * time.Second))
		}
	case !f.utc:
		cv = fromTime(wallToUTC(cv, f.loc))
	}
	if cv.year < 0 || cv.year > 9999 {
		return dst, fault("filter it out or replace it in the query", "year %d is outside 0000-9999", cv.year)
	}
	dst = appendDateDigits(dst, cv.year, cv.month, cv.day)
	ms := cv.nsec / 1e6
	return append(dst, 'T',
		byte('0'+cv.hour/10), byte('0'+cv.hour%10), ':',
		byte('0'+cv.min/10), byte('0'+cv.min%10), ':',
		byte('0'+cv.sec/10), byte('0'+cv.sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z'), nil
}

// wallToUTC reads a wall-clock time in loc, the way PostgreSQL reads
// timestamp text in its TimeZone: a time that falls in a daylight-saving gap
// (it never happened) gets the UTC offset from before the change, and a time
// in an overlap (it happened twice) the offset from after the change —
// standard time. time.Date leaves both cases unspecified and in practice
// picks differently for zones east and west of UTC (02:30 in New York's
// spring gap comes out as 06:30Z, PostgreSQL says 07:30Z).
func wallToUTC(cv civil, loc *time.Location) time.Time {
	wall := time.Date(cv.year, time.Month(cv.month), cv.day, cv.hour, cv.min, cv.sec, cv.nsec, time.UTC)
	// Offsets in effect well before and well after: no zone changes twice
	// within four days.
	_, before := wall.Add(-48 * time.Hour).In(loc).Zone()
	_, after := wall.Add(48 * time.Hour).In(loc).Zone()
	if before == after {
		return wall.Add(-time.Duration(before) * time.Second)
	}
	cBefore := wall.Add(-time.Duration(before) * time.Second)
	cAfter := wall.Add(-time.Duration(after) * time.Second)
	okBefore := sameWall(cBefore.In(loc), wall)
	okAfter := sameWall(cAfter.In(loc), wall)
	switch {
	case okAfter: // the only reading, or the overlap: standard time
		return cAfter
	case okBefore:
		return cBefore
	}
	return cBefore // the gap
}

// sameWall reports whether t shows the wall clock of w (a UTC-labelled
// wall-clock time).
func sameWall(t, w time.Time) bool {
	y1, m1, d1 := t.Date()
	y2, m2, d2 := w.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && t.Hour() == w.Hour() && t.Minute() == w.Minute() && t.Second() == w.Second()
}

// yearTooLong reports text like PostgreSQL's "12345-01-01": a year of five
// or more digits.
func yearTooLong(b []byte) bool {
	n := 0
	for n < len(b) && isDigit(b[n]) {
		n++
	}
	return n > 4 && n < len(b) && b[n] == '-'
}

func fromTime(t time.Time) civil {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return civil{year: y, month: int(mo), day: d, hour: h, min: mi, sec: s, nsec: t.Nanosecond(), hasTime: true}
}

func appendDateDigits(dst []byte, y, m, d int) []byte {
	return append(dst,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-',
		byte('0'+d/10), byte('0'+d%10))
}

// appendKey appends the text of an order_by value as the source reads it
// back (Batch.LastKey, Position.AfterKey): integers and decimal text as the
// source wrote them, floats in shortest round-trip form, times with
// nanoseconds (time zones as UTC offsets). Numbers that compare equal in the
// database get equal text (1.50 and 1.5, -0 and 0), so the uniqueness check
// on consecutive keys sees them as the duplicates they are.
//
// The result reports whether the text is exact: bound back into the keyset
// query (dialect.keyArg) it means this very value. A key that is not exact —
// bytes or invalid UTF-8 (a JSON manifest cannot carry them), a time outside
// years 1-9999, NaN, or in SQLite text that looks like a number in a column
// without TEXT affinity (it would bind back as a number) — still serves the
// uniqueness check, but no batch reports it as its LastKey: a resume from
// that batch skips rows with OFFSET instead.
func appendKey(dst []byte, v *value, c *column) ([]byte, bool) {
	switch v.kind {
	case vText:
		switch c.src {
		case srcInt:
			return append(dst, v.b...), true // the server's integer text: ASCII digits
		case srcDecimal, srcFloat:
			return appendCanonicalNumber(dst, v.b), true
		}
		start := len(dst)
		dst = append(dst, v.b...)
		text := dst[start:]
		exact := utf8.Valid(text) && bytes.IndexByte(text, 0) < 0
		if exact && c.numericText {
			if _, isNum := sqliteNumberArg(string(text)); isNum {
				exact = false
			}
		}
		return dst, exact
	case vBinary:
		return append(dst, v.b...), false
	case vInt:
		return strconv.AppendInt(dst, v.i, 10), true
	case vFloat:
		switch {
		case math.IsNaN(v.f) || math.IsInf(v.f, 0):
			return strconv.AppendFloat(dst, v.f, 'g', -1, 64), false
		case v.f == 0:
			return append(dst, '0'), true // -0 = 0
		case c.floatBits == 32:
			return strconv.AppendFloat(dst, v.f, 'g', -1, 32), true // Oracle BINARY_FLOAT: "0.7", not 0.699999988079071
		}
		return strconv.AppendFloat(dst, v.f, 'g', -1, 64), true
	case vBool:
		if v.i != 0 {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case vTime:
		exact := v.t.Year() >= 1 && v.t.Year() <= 9999
		switch {
		case c.src == srcDate:
			return v.t.AppendFormat(dst, "2006-01-02"), exact
		case c.src == srcTimestampTZ || (c.src != srcTimestamp && v.t.Location() != time.UTC):
			// An instant: written in UTC, so that the offset is always one
			// the database accepts (go-ora labels zones it cannot name
			// with made-up offsets).
			t := v.t.UTC()
			exact = exact && t.Year() >= 1 && t.Year() <= 9999
			return t.AppendFormat(dst, keyTimeTZLayout), exact
		}
		return v.t.AppendFormat(dst, keyTimeLayout), exact
	}
	return dst, false
}

// appendCanonicalNumber appends decimal or float text with trailing zeros
// of the fraction removed and a zero without sign: the same number always
// has the same text. Text that is not a plain number (NaN, Infinity) is
// copied.
func appendCanonicalNumber(dst, s []byte) []byte {
	mant, exp := s, []byte(nil)
	if i := bytes.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i:]
	}
	if dot := bytes.IndexByte(mant, '.'); dot >= 0 {
		mant = bytes.TrimRight(mant, "0")
		if len(mant) == dot+1 {
			mant = mant[:dot]
		}
	}
	digits := bytes.TrimLeft(mant, "+-")
	if len(digits) > 0 && strings.Trim(string(digits), "0.") == "" {
		return append(dst, '0')
	}
	dst = append(dst, mant...)
	return append(dst, exp...)
}

// Layouts of time keys; oracle.go binds them back with matching TO_TIMESTAMP formats.
const (
	keyTimeLayout   = "2006-01-02 15:04:05.000000000"
	keyTimeTZLayout = "2006-01-02 15:04:05.000000000 -07:00"
)
